/** `rocmflow trace` through its Command.run(argv, io). */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { traceCommand } from '../../src/cli/commands/trace.js';
import type { CommandIO } from '../../src/cli/command.js';
import { RocmflowError } from '../../src/errors.js';
import { parseTraceFiles } from '../../src/trace/parse.js';
import { tempDir } from './helpers.js';

const FIX = join(import.meta.dirname, '../fixtures/trace');

function io(cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CommandIO = {
    out: (l) => out.push(l), err: (l) => err.push(l), cwd, env: process.env, color: false, signal: new AbortController().signal,
  };
  return { io: value, out, err };
}

async function failure(p: Promise<unknown>): Promise<RocmflowError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(RocmflowError);
  return e as RocmflowError;
}

describe('rocmflow trace parse', () => {
  it('--json prints exactly the access set shape', async () => {
    const t = io(FIX);
    expect(await traceCommand.run(['parse', 'unfinished.log', '--json'], t.io)).toBe(0);
    const json = JSON.parse(t.out.join('\n'));
    expect(Object.keys(json)).toEqual(['files', 'executables', 'missing', 'devices']);
    for (const f of json.files) expect(Object.keys(f)).toEqual(['path', 'resolved']);
    expect(json).toEqual((await parseTraceFiles([join(FIX, 'unfinished.log')])).access);
  });

  it('--json --full adds the extras; warnings go to stderr', async () => {
    const t = io(FIX);
    expect(await traceCommand.run(['parse', '--json', '--full', 'cutoff.log'], t.io)).toBe(0);
    const json = JSON.parse(t.out.join('\n'));
    expect(Object.keys(json)).toEqual(expect.arrayContaining(['access', 'created', 'removed', 'virtual', 'directories', 'failed', 'pids', 'warnings']));
    expect(t.err.some((l) => l.startsWith('warning: ') && l.includes('last line cut off'))).toBe(true);
  });

  it('without --json prints counts and the first paths', async () => {
    const t = io(FIX);
    await traceCommand.run(['parse', 'unfinished.log'], t.io);
    const p = await parseTraceFiles([join(FIX, 'unfinished.log')]);
    expect(t.out[0]).toBe(`${p.access.files.length} files, 2 executables, ${p.access.missing.length} missing, 1 devices, 0 created by the program (4 processes)`);
    expect(t.out).toContain('  /tmp/rocmflow-fixture/link.txt -> /tmp/rocmflow-fixture/data.txt');
    expect(t.out).toContain('  /usr/bin/cat');
  });

  it('bad input: garbage names file and line; a missing file and an unknown subcommand are usage errors', async () => {
    const garbage = await failure(traceCommand.run(['parse', 'garbage.log'], io(FIX).io));
    expect(garbage.code).toBe('E_TRACE_PARSE');
    expect(garbage.exitCode).toBe(1);
    expect(garbage.message).toContain('garbage.log:5:');
    const missing = await failure(traceCommand.run(['parse', 'nope.log'], io(FIX).io));
    expect(missing).toMatchObject({ code: 'E_TRACE_FILE', exitCode: 2 });
    expect(missing.message).toContain('nope.log');
    expect(await failure(traceCommand.run(['frobnicate'], io(FIX).io))).toMatchObject({ exitCode: 2 });
    expect(await failure(traceCommand.run(['parse', '--bogus', 'x'], io(FIX).io))).toMatchObject({ exitCode: 2 });
    expect(await failure(traceCommand.run(['run', '--json'], io(FIX).io))).toMatchObject({ exitCode: 2 });
  });
});

describe('rocmflow trace run', () => {
  it('traces a command and prints its access set; the command output goes to stderr', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'in.txt'), 'content\n');
    const t = io(dir);
    expect(await traceCommand.run(['run', '--json', '--', 'cat', 'in.txt'], t.io)).toBe(0);
    const json = JSON.parse(t.out.join('\n'));
    expect(json.files).toContainEqual({ path: join(dir, 'in.txt'), resolved: join(dir, 'in.txt') });
    expect(t.err).toContain('content');
  });

  it('exits with the command exit code and keeps the per-pid logs with --out', async () => {
    const dir = tempDir();
    const t = io(dir);
    expect(await traceCommand.run(['run', '--out', 'log', '--per-pid', '--', 'sh', '-c', 'cat /dev/null; exit 3'], t.io)).toBe(3);
    const logs = readdirSync(dir).filter((n) => /^log\.\d+$/.test(n));
    expect(logs.length).toBe(2);
    expect(t.out.at(-1)).toMatch(/^command exited with 3; log: /);
    expect(existsSync(join(dir, logs[0]!))).toBe(true);
  });
});
