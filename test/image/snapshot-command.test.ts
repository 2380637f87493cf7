import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { snapshotCommand } from '../../src/cli/commands/snapshot.js';
import type { CommandIO } from '../../src/cli/command.js';
import { describeTree, makeTree, tempDir } from './fixtures.js';

function io(cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CommandIO = { out: (l) => out.push(l), err: (l) => err.push(l), cwd, env: process.env, color: false, signal: new AbortController().signal };
  return { io, out, err };
}

describe('rocmflow snapshot', () => {
  it('create, info, restore and verify, with relative paths against the cwd', async () => {
    const d = tempDir();
    makeTree(join(d, 'tree'));
    const a = io(d);
    expect(await snapshotCommand.run(['create', 'tree', 'snap/rocm.tar.zst', '--version', '7.13.0', '--level', '5', '--mtime', '86400', '--json'], a.io)).toBe(0);
    const created = JSON.parse(a.out.join('\n'));
    expect(created).toMatchObject({ archive: join(d, 'snap/rocm.tar.zst'), manifest: join(d, 'snap/rocm.manifest.json'), version: '7.13.0' });

    const b = io(d);
    expect(await snapshotCommand.run(['info', 'snap/rocm.tar.zst'], b.io)).toBe(0);
    expect(b.out).toContain(`digest    ${created.digest}`);
    expect(b.out).toContain(`diff_id   ${created.diffId}`);
    expect(b.out).toContain('version   7.13.0');

    const c = io(d);
    expect(await snapshotCommand.run(['restore', 'snap/rocm.tar.zst', 'back'], c.io)).toBe(0);
    expect(c.out[0]).toMatch(/^restored \d+ files .* into .*\/back: verified against .*rocm\.manifest\.json$/);
    expect(describeTree(join(d, 'back'))).toBe(describeTree(join(d, 'tree')));

    expect(await snapshotCommand.run(['verify', 'snap/rocm.tar.zst', 'back'], io(d).io)).toBe(0);
    writeFileSync(join(d, 'back', 'bin', 'hipconfig'), 'edited');
    await expect(snapshotCommand.run(['verify', 'snap/rocm.tar.zst', 'back'], io(d).io)).rejects.toMatchObject({
      code: 'E_SNAPSHOT_MISMATCH',
      details: ['bin/hipconfig: 6 bytes, expected 20'],
    });
    // --manifest points elsewhere
    writeFileSync(join(d, 'other.json'), readFileSync(join(d, 'snap/rocm.manifest.json')));
    expect(await snapshotCommand.run(['info', 'snap/rocm.tar.zst', '--manifest', 'other.json', '--json'], io(d).io)).toBe(0);
  });

  it('usage errors exit 2 with a message that says what is wrong', async () => {
    const d = tempDir();
    const cases: [string[], RegExp][] = [
      [['create', 'only-one'], /snapshot create: expected DIR and OUT.tar.zst/],
      [['create', 'a', 'b', '--level', 'high'], /--level expects a non-negative integer/],
      [['frobnicate'], /unknown subcommand "frobnicate"/],
      [['info', 'x.tar.zst', '--jsn'], /unknown option --jsn \(did you mean --json\?\)/],
    ];
    for (const [argv, message] of cases) await expect(snapshotCommand.run(argv, io(d).io)).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(message) });
    await expect(snapshotCommand.run(['info', 'x.tar.zst'], io(d).io)).rejects.toMatchObject({ code: 'E_NO_MANIFEST', message: `snapshot manifest ${join(d, 'x.manifest.json')} not found` });
    await expect(snapshotCommand.run(['create', 'nope', 'x.tar.zst'], io(d).io)).rejects.toMatchObject({ code: 'E_NOT_FOUND', exitCode: 2 });
    const h = io(d);
    expect(await snapshotCommand.run([], h.io)).toBe(2);
    expect(h.out.join('\n')).toContain('rocmflow snapshot restore SNAPSHOT DIR');
  });
});
