/**
 * `trace parse` streams its log: a log far larger than the heap it is given
 * parses, with the same result as a small one; a directory is one line.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { BIN, REPO, rocmflow } from '../helpers/cli.js';

/** The CLI with pretty JSON on stdout (the event-stream helper expects one JSON per line). */
const cli = (cwd: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });

describe('trace parse', () => {
  it('parses a 40 MB log within a 24 MB heap, as it parses the small one', () => {
    const d = mkdtempSync(join(tmpdir(), 'rocmflow-trace-big-'));
    const small = readFileSync(join(REPO, 'test/fixtures/trace/noprefix.log'));
    const lines = small.toString().split('\n').filter(Boolean);
    // the execve once, then the rest again and again
    const body = Buffer.from(`${lines.slice(1).join('\n')}\n`);
    const big = join(d, 'big.log');
    const fd = openSync(big, 'w');
    writeSync(fd, `${lines[0]}\n`);
    const block = Buffer.concat(Array(64).fill(body));
    for (let n = 0; n < 40 << 20; n += block.length) writeSync(fd, block);
    closeSync(fd);
    const want = cli(d, ['trace', 'parse', join(REPO, 'test/fixtures/trace/noprefix.log'), '--json']);
    expect(want.status, want.stderr).toBe(0);
    const got = cli(d, ['trace', 'parse', big, '--json'], { NODE_OPTIONS: '--max-old-space-size=24' });
    expect(got.status, got.stderr.slice(0, 500)).toBe(0);
    expect(JSON.parse(got.stdout)).toEqual(JSON.parse(want.stdout));
  }, 120_000);

  it('a directory is one line naming it', () => {
    const d = mkdtempSync(join(tmpdir(), 'rocmflow-trace-dir-'));
    const r = rocmflow(d, ['trace', 'parse', d]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([`rocmflow: ${d} is a directory; give an strace log file, or the PREFIX of strace -ff -o PREFIX`]);
  });
});
