/**
 * Committed strace logs of edge shapes (see each .cmd file for the command
 * that captured it, after setup.sh). They name /tmp/rocmflow-fixture, the
 * directory they were captured in.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isRocmflowError } from '../../src/errors.js';
import { parseTrace, parseTraceFiles, TraceParser } from '../../src/trace/parse.js';
import { resolvedOf } from './helpers.js';

const FIX = join(import.meta.dirname, '../fixtures/trace');
const D = '/tmp/rocmflow-fixture';
const fixture = (name: string) => join(FIX, name);

describe('captured fixtures', () => {
  it('joins <unfinished ...> / <... resumed> halves across pids', async () => {
    const p = await parseTraceFiles([fixture('unfinished.log')]);
    const text = readFileSync(fixture('unfinished.log'), 'utf8');
    // the capture really splits the calls we check
    expect(text).toMatch(/"link\.txt", O_RDONLY <unfinished \.\.\.>/);
    expect(text).toMatch(/execve\("\/usr\/bin\/cat", \["cat", "missing\.txt"\].*<unfinished \.\.\.>/);
    expect(p.warnings).toEqual([]);
    expect(p.access.executables).toEqual(['/usr/bin/cat', '/usr/bin/sh']);
    expect(resolvedOf(p, `${D}/link.txt`)).toBe(`${D}/data.txt`);
    expect(resolvedOf(p, `${D}/data.txt`)).toBe(`${D}/data.txt`);
    expect(p.access.missing).toContain(`${D}/missing.txt`);
    expect(p.access.files.map((f) => f.path)).not.toContain(`${D}/missing.txt`);
    expect(p.access.devices).toEqual(['/dev/null']);
    // the shell and its three children
    const pids = new Set([...text.matchAll(/^(\d+) /gm)].map((m) => Number(m[1])));
    expect(p.pids).toEqual([...pids].sort());
    expect(pids.size).toBe(4);
    // /dev/null opened with O_CREAT by the shell is a device, not a created file
    expect(p.created).toEqual([]);
  });

  it('decodes quotes, octal UTF-8 bytes, newlines and escaped > < in paths and annotations', async () => {
    const p = await parseTraceFiles([fixture('escapes.log')]);
    for (const name of ['quo"te dir/uni\u2014x.txt', 'new\nline', 'gt>lt<']) {
      expect(resolvedOf(p, `${D}/${name}`)).toBe(`${D}/${name}`);
    }
    expect(p.warnings).toEqual([]);
  });

  it('reads a single-process log without pid prefixes, with -tt timestamps', async () => {
    const p = await parseTraceFiles([fixture('noprefix.log')]);
    expect(readFileSync(fixture('noprefix.log'), 'utf8')).toMatch(/^\d\d:\d\d:\d\d\.\d+ execve/);
    expect(p.access.executables).toEqual(['/usr/bin/cat']);
    expect(resolvedOf(p, `${D}/data.txt`)).toBe(`${D}/data.txt`);
    expect(p.pids).toEqual([0]);
  });

  it('reads stderr output where the first process is unprefixed until a second one appears', async () => {
    const text = readFileSync(fixture('stderr-style.log'), 'utf8');
    expect(text).toMatch(/^\[pid +\d+\] /m);
    expect(text).toMatch(/^<\.\.\. wait4 resumed>/m);
    const p = parseTrace(text, { file: 'stderr-style.log' });
    expect(p.warnings).toEqual([]); // every resumed half found its start
    expect(p.access.executables).toEqual(['/usr/bin/cat', '/usr/bin/sh']);
    expect(resolvedOf(p, `${D}/data.txt`)).toBe(`${D}/data.txt`);
  });

  it('does not count a path strace cut short, and says so with its line', async () => {
    const text = readFileSync(fixture('longpath.log'), 'utf8');
    const line = text.split('\n').findIndex((l) => /statx\(AT_FDCWD<[^>]*>, "\/a{100,}"\.\.\./.test(l)) + 1;
    expect(line).toBeGreaterThan(0);
    const p = await parseTraceFiles([fixture('longpath.log')]);
    expect(p.warnings.some((w) => w.includes(`longpath.log:${line}:`) && w.includes('cut short'))).toBe(true);
    const all = [...p.access.files.map((f) => f.path), ...p.access.missing, ...p.failed.map((f) => f.path)];
    expect(all.filter((x) => x.includes('aaaa'))).toEqual([]);
  });

  it('treats a cut-off last line as a warning and keeps everything before it', async () => {
    const full = await parseTraceFiles([fixture('unfinished.log')]);
    const cut = await parseTraceFiles([fixture('cutoff.log')]);
    const lines = readFileSync(fixture('cutoff.log'), 'utf8').split('\n').length;
    expect(cut.warnings).toHaveLength(1);
    expect(cut.warnings[0]).toContain(`cutoff.log:${lines}: last line cut off`);
    expect(cut.access).toEqual(full.access);
  });

  it('rejects a garbage line in the middle with its line number', async () => {
    const err = await parseTraceFiles([fixture('garbage.log')]).catch((e: unknown) => e);
    expect(isRocmflowError(err)).toBe(true);
    expect((err as { code: string }).code).toBe('E_TRACE_PARSE');
    expect((err as Error).message).toMatch(/garbage\.log:5: not an strace line: "Segmentation fault/);
  });

  it('gives the same result line by line (streaming) as from the whole text', () => {
    const text = readFileSync(fixture('unfinished.log'), 'utf8');
    const stream = new TraceParser({ file: 'unfinished.log' });
    for (const line of text.split('\n')) stream.push(line);
    expect(stream.finish()).toEqual(parseTrace(text, { file: 'unfinished.log' }));
  });
});

describe('captured fixtures: timing and socket annotations', () => {
  it('reads -r timestamps, -T durations and -yy "TCP:[a->b]" fd annotations', async () => {
    const text = readFileSync(fixture('timing.log'), 'utf8');
    expect(text).toMatch(/<TCP:\[127\.0\.0\.1:\d+->127\.0\.0\.1:\d+\]>/);
    expect(text).toMatch(/ <0\.\d+>$/m);
    const p = await parseTraceFiles([fixture('timing.log')]);
    expect(p.warnings).toEqual([]);
    expect(p.access.executables).toEqual(['/usr/bin/python3']);
    expect(resolvedOf(p, `${D}/data.txt`)).toBe(`${D}/data.txt`);
    expect(p.access.files.every((f) => f.path.startsWith('/') && f.resolved.startsWith('/'))).toBe(true);
    expect(JSON.stringify(p)).not.toMatch(/<char|TCP:/);
  });
});
