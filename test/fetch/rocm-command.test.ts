import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rocmCommand } from '../../src/cli/commands/rocm.js';
import type { CommandIO } from '../../src/cli/command.js';
import { startServer, type TestServer } from './helpers/server.js';

let server: TestServer;
const FILES = [
  ['therock-dist-linux-gfx1151-7.12.0.tar.gz', 1776500000, 2345678901],
  ['therock-dist-linux-gfx1151-7.13.0a20260430.tar.gz', 1777507200, 2400000000],
  ['therock-dist-linux-gfx1151-7.13.0rc1.tar.gz', 1777600000, 2410000000],
  ['therock-dist-linux-gfx110X-all-7.13.0a20260430.tar.gz', 1777507200, 3000000000],
] as const;

beforeAll(async () => {
  const page = `<script>const files = [${FILES.map(([n, m, s]) => `{name: '${n}', mtime: ${m}, size: ${s}}`).join(', ')}];</script>`;
  server = await startServer({ '/tarball/': { body: page, contentType: 'text/html' } });
});
afterAll(() => server.close());

async function run(argv: string[]): Promise<{ code: number; out: string[] }> {
  const out: string[] = [];
  const io: CommandIO = { out: (l) => out.push(l), err: (l) => out.push(l), cwd: process.cwd(), env: process.env, color: false, signal: new AbortController().signal };
  return { code: await rocmCommand.run(argv, io), out };
}

describe('rocmflow rocm list', () => {
  it('lists a family newest first as JSON, limited', async () => {
    const r = await run(['list', '--family', 'gfx1151', '--index', `${server.url}/tarball/`, '--limit', '2', '--json']);
    expect(r.code).toBe(0);
    const builds = JSON.parse(r.out.join('\n'));
    expect(builds.map((b: { version: string }) => b.version)).toEqual(['7.13.0rc1', '7.13.0a20260430']);
    expect(builds[0]).toMatchObject({ family: 'gfx1151', size: 2410000000, url: `${server.url}/tarball/therock-dist-linux-gfx1151-7.13.0rc1.tar.gz` });
  });

  it('prints a table with version, date and size; --target maps to the TheRock family', async () => {
    const r = await run(['list', '--target', 'gfx1100', '--index', `${server.url}/tarball/`]);
    expect(r.out[0]).toMatch(/^NAME\s+VERSION\s+DATE \(UTC\)\s+SIZE$/);
    expect(r.out).toHaveLength(2);
    expect(r.out[1]).toMatch(/^therock-dist-linux-gfx110X-all-7\.13\.0a20260430\.tar\.gz\s+7\.13\.0a20260430\s+2026-04-30 00:00\s+3\.0 GB$/);
    const def = await run(['list', '--index', `${server.url}/tarball/`]);
    expect(def.out.slice(1).map((l) => l.split(/\s+/)[1])).toEqual(['7.13.0rc1', '7.13.0a20260430', '7.12.0']);
  });

  it('rejects bad usage with exit code 2 errors', async () => {
    await expect(run(['list', '--target', 'cpu'])).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('does not use TheRock') });
    await expect(run(['list', '--target', 'gfx9999'])).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('unknown target "gfx9999"') });
    await expect(run(['list', '--limit', '0'])).rejects.toMatchObject({ exitCode: 2 });
    await expect(run(['lsit'])).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('unknown subcommand') });
    await expect(run(['list', '--family', 'gfx1201', '--index', `${server.url}/tarball/`])).rejects.toMatchObject({
      code: 'E_NO_BUILDS', message: expect.stringContaining('families there: gfx110X-all, gfx1151'),
    });
  });
});
