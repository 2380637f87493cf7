/**
 * Parser tests on logs captured now, from real programs under real strace.
 * Every expectation is a fact checked independently (realpath, the files the
 * test made itself), not a stored result.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTraceFiles } from '../../src/trace/parse.js';
import { resolvedOf, shipped, tempDir, traced } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const PERL = '/usr/bin/perl';

describe('real programs under strace', () => {
  it('coreutils cat: a symlink chain keeps path and resolved; a failed lookup is missing, not a file', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'real'));
    writeFileSync(join(dir, 'real/data.txt'), 'data\n');
    symlinkSync(join(dir, 'real/data.txt'), join(dir, 'abs-link')); // absolute target
    symlinkSync('abs-link', join(dir, 'chain')); // relative link to a link
    const { parse, run } = await traced(['/bin/cat', 'chain', 'nonexistent.txt'], { cwd: dir });
    expect(run.exitCode).toBe(1); // cat fails on the missing file
    expect(run.stdout).toBe('data\n');
    expect(resolvedOf(parse, join(dir, 'chain'))).toBe(realpathSync(join(dir, 'chain')));
    expect(realpathSync(join(dir, 'chain'))).toBe(join(dir, 'real/data.txt'));
    expect(parse.access.missing).toContain(join(dir, 'nonexistent.txt'));
    expect(shipped(parse).has(join(dir, 'nonexistent.txt'))).toBe(false);
    expect(parse.access.executables).toEqual(['/bin/cat']);
    // every shared library cat loaded resolves to a real file
    const libs = parse.access.files.filter((f) => /\/lib[^/]*\.so/.test(f.path));
    expect(libs.length).toBeGreaterThan(0);
    for (const l of libs) expect(realpathSync(l.path)).toBe(l.resolved);
  });

  it('python3: imported modules by real path; its own temp files are created, not inputs', async () => {
    const dir = tempDir();
    const script = [
      'import json, os, tempfile',
      `d = ${JSON.stringify(dir)}`,
      'fd, tmp = tempfile.mkstemp(dir=d); os.write(fd, b"x"); os.close(fd); open(tmp).read(); os.unlink(tmp)',
      'open(os.path.join(d, "out.txt"), "w").write("y"); open(os.path.join(d, "out.txt")).read()',
      'print(json.__file__); print(tmp)',
    ].join('\n');
    const { parse, run } = await traced([PYTHON, '-c', script], { cwd: dir });
    expect(run.exitCode).toBe(0);
    const [jsonFile, tmp] = run.stdout!.trim().split('\n') as [string, string];
    expect(parse.access.executables).toContain(PYTHON);
    // python resolves its own symlink (readlink), so the real binary is listed too
    expect(shipped(parse).has(realpathSync(PYTHON))).toBe(true);
    expect(parse.access.files.some((f) => f.resolved === realpathSync(jsonFile))).toBe(true);
    expect(existsSync(tmp)).toBe(false);
    for (const own of [tmp, join(dir, 'out.txt')]) {
      expect(parse.created).toContain(own);
      expect(shipped(parse).has(own)).toBe(false);
    }
    expect(parse.virtual.every((v) => v.startsWith('/proc') || v.startsWith('/sys'))).toBe(true);
    expect(shipped(parse).has('/proc/self/exe') || [...shipped(parse)].some((p) => p.startsWith('/proc/'))).toBe(false);
  });

  it('perl: a module found through @INC and a data file', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'in.txt'), 'perl input\n');
    const { parse, run } = await traced([PERL, '-MPOSIX', '-e', 'open(my $f, "<", $ARGV[0]) or die; print <$f>; print $INC{"POSIX.pm"}, "\\n"', 'in.txt'], { cwd: dir });
    expect(run.exitCode).toBe(0);
    const posix = run.stdout!.trim().split('\n').pop()!;
    expect(parse.access.files.some((f) => f.resolved === realpathSync(posix))).toBe(true);
    expect(resolvedOf(parse, join(dir, 'in.txt'))).toBe(join(dir, 'in.txt'));
    expect(parse.access.executables).toEqual([PERL]);
  });

  it('sh: relative exec after cd, #! script, ".." in an exec path', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'sub'));
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'sub/data.txt'), 'sub data\n');
    writeFileSync(join(dir, 'sub/run.sh'), '#!/bin/sh\ncat ./data.txt\n');
    writeFileSync(join(dir, 'bin/tool'), '#!/bin/sh\necho tool\n');
    chmodSync(join(dir, 'sub/run.sh'), 0o755);
    chmodSync(join(dir, 'bin/tool'), 0o755);
    const { parse, run } = await traced(['/bin/sh', '-c', 'cd sub && ./run.sh && ../bin/tool'], { cwd: dir });
    expect(run.stdout).toBe('sub data\ntool\n');
    expect(parse.access.executables).toContain(join(dir, 'sub/run.sh'));
    expect(parse.access.executables).toContain(join(dir, 'bin/tool'));
    expect(resolvedOf(parse, join(dir, 'sub/data.txt'))).toBe(join(dir, 'sub/data.txt'));
    expect(parse.directories).toContain(join(dir, 'sub'));
  });

  it('a multi-threaded C program that dlopen()s a library by name; threads share the cwd', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'sub'));
    for (const f of ['a.txt', 'b.txt', 'c.txt', 'sub/rel.txt']) writeFileSync(join(dir, f), f);
    writeFileSync(join(dir, 'probe.c'), `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static void *opener(void *path) { int fd = open((const char *)path, O_RDONLY); if (fd >= 0) close(fd); return 0; }
static void *mover(void *dir) { return (void *)(long)chdir((const char *)dir); }
int main(int argc, char **argv) {
  pthread_t t[3];
  for (int i = 0; i < 3; i++) pthread_create(&t[i], 0, opener, argv[i + 1]);
  for (int i = 0; i < 3; i++) pthread_join(t[i], 0);
  pthread_t m; pthread_create(&m, 0, mover, "sub"); pthread_join(m, 0);
  if (access("rel.txt", R_OK) != 0) return 3; /* relative to the cwd the other thread set */
  void *h = dlopen("libz.so.1", RTLD_NOW);
  if (!h) { fprintf(stderr, "%s\\n", dlerror()); return 2; }
  Dl_info info; dladdr(dlsym(h, "zlibVersion"), &info);
  printf("%s\\n", info.dli_fname);
  return 0;
}`);
    execFileSync('cc', ['-O0', '-pthread', '-o', join(dir, 'probe'), join(dir, 'probe.c'), '-ldl']);
    const { parse, run } = await traced([join(dir, 'probe'), 'a.txt', 'b.txt', 'c.txt'], { cwd: dir });
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    const libz = run.stdout!.trim();
    for (const f of ['a.txt', 'b.txt', 'c.txt']) expect(resolvedOf(parse, join(dir, f))).toBe(join(dir, f));
    expect(shipped(parse).has(join(dir, 'sub/rel.txt'))).toBe(true);
    expect(parse.access.files.some((f) => f.resolved === realpathSync(libz) && f.path.endsWith('/libz.so.1'))).toBe(true);
    expect(parse.pids.length).toBeGreaterThanOrEqual(5); // main + 4 threads
  });

  it('strace -ff -o: per-pid files merge to the same access set as one -f log', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'data.txt'), 'x\n');
    const cmd = ['/bin/sh', '-c', 'cat data.txt >/dev/null; cd sub && ls .. >/dev/null; cat ../data.txt'];
    const ff = await traced(cmd, { cwd: dir, perPid: true });
    expect(ff.run.logFiles.length).toBeGreaterThanOrEqual(4); // sh, cat, ls, cat
    for (const f of ff.run.logFiles) expect(f).toMatch(/\/trace\.log\.\d+$/);
    const byPrefix = await parseTraceFiles([ff.run.logFiles[0]!.replace(/\.\d+$/, '')]);
    expect(byPrefix.access).toEqual(ff.parse.access);
    const single = await traced(cmd, { cwd: dir });
    const local = (p: typeof ff.parse) => ({
      files: p.access.files.filter((f) => f.path.startsWith(dir)),
      executables: p.access.executables,
      missing: p.access.missing.filter((m) => m.startsWith(dir)),
    });
    expect(local(ff.parse)).toEqual(local(single.parse));
    expect(resolvedOf(ff.parse, join(dir, 'data.txt'))).toBe(join(dir, 'data.txt'));
  });

  it('files the program creates, moves or deletes are not inputs; files it only reads are', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'pre.txt'), 'pre');
    writeFileSync(join(dir, 'keep.txt'), 'keep');
    const { parse, run } = await traced(['/bin/sh', '-c',
      'echo hi > out.txt; cat out.txt; mkdir d; touch d/x; mv d/x d/y; cat d/y; rm d/y; rm pre.txt; cat keep.txt; ln -s keep.txt new-link'], { cwd: dir });
    expect(run.exitCode).toBe(0);
    expect(resolvedOf(parse, join(dir, 'keep.txt'))).toBe(join(dir, 'keep.txt'));
    for (const own of ['out.txt', 'd', 'd/x', 'd/y', 'pre.txt', 'new-link']) expect(shipped(parse).has(join(dir, own))).toBe(false);
    for (const own of ['out.txt', 'd', 'd/x', 'd/y', 'new-link']) expect(parse.created).toContain(join(dir, own));
    expect(parse.removed).toEqual([join(dir, 'pre.txt')]);
  });
});
