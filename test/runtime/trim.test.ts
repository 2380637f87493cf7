/**
 * Real programs of this machine, traced inside a sandboxed RootLayout (the
 * host's / plus a temp layer at /opt/t), trimmed, assembled and run again
 * inside the trimmed root: the output must be identical.
 */
import { rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RootLayout } from '../../src/runtime/layout.js';
import { verifyRoot } from '../../src/runtime/verify.js';
import { cc, cleanTemps, put, roundTrip, sh, temp, type RoundTrip } from './helpers.js';

const USR_LIB_BYTES = Number(sh('du', ['-sb', '/usr/lib']).split('\t')[0]);

let layer: string;
let layout: RootLayout;

beforeAll(() => {
  layer = temp('rocmflow-layer-');
  layout = { base: '/', layers: [{ mount: '/opt/t', source: layer }] };
  // a data file: 4000 pseudo-random words from a fixed LCG
  let x = 12345;
  const words: string[] = [];
  for (let i = 0; i < 4000; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    words.push(x.toString(36));
  }
  put(join(layer, 'share/words.txt'), words.join('\n') + '\n');
  put(join(layer, 'share/real.txt'), 'reached through a chain of links\n');
  // lib/data-1 -> data-2 -> ../lib/data-3 -> /opt/t/share/real.txt (absolute, in-root)
  put(join(layer, 'lib/.keep'), '');
  symlinkSync('data-2', join(layer, 'lib/data-1'));
  symlinkSync('../lib/data-3', join(layer, 'lib/data-2'));
  symlinkSync('/opt/t/share/real.txt', join(layer, 'lib/data-3'));
  put(join(layer, 'bin/words.sh'), '#!/bin/sh\necho "lines: $(wc -l < /opt/t/share/words.txt)"\nsort /opt/t/share/words.txt | head -n 5\n', 0o755);
  // dlopen()s zlib by soname, runs two threads, reads through the link chain
  cc(
    `#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
static void *work(void *arg) { long n = (long)arg, s = 0; for (long i = 0; i < n; i++) s += i % 7; return (void *)s; }
int main(void) {
  void *z = dlopen("libz.so.1", RTLD_NOW);
  if (!z) { fprintf(stderr, "%s\\n", dlerror()); return 1; }
  const char *(*ver)(void) = (const char *(*)(void))dlsym(z, "zlibVersion");
  pthread_t t[2]; void *r[2];
  for (long i = 0; i < 2; i++) pthread_create(&t[i], 0, work, (void *)(100000 * (i + 1)));
  for (int i = 0; i < 2; i++) pthread_join(t[i], &r[i]);
  char line[128] = {0};
  FILE *f = fopen("../lib/data-1", "r");
  if (!f || !fgets(line, sizeof line, f)) { perror("data-1"); return 1; }
  printf("zlib %s, sums %ld %ld, data: %s", ver(), (long)r[0], (long)r[1], line);
  return 0;
}`,
    join(layer, 'bin/dlz'),
    ['-pthread', '-ldl'],
  );
});

afterAll(cleanTemps);

function expectVerified(rt: RoundTrip) {
  expect(rt.verify.exitCodes).toEqual({ full: 0, trimmed: 0 });
  expect(rt.verify.fullStdout.length).toBeGreaterThan(0);
  expect(rt.verify.trimmedStdout).toBe(rt.verify.fullStdout);
  expect(rt.verify.ok).toBe(true);
  expect(rt.verify.method).toBe('bwrap');
  // far below what the base offers
  expect(rt.manifest.bytes).toBeLessThan(USR_LIB_BYTES * 0.1);
}

const paths = (rt: RoundTrip, reason?: string) => rt.closure.entries.filter((e) => !reason || e.reason === reason).map((e) => e.path);

describe('trim and verify real programs', () => {
  it('python3 importing json and sqlite3, with threads', async () => {
    const rt = await roundTrip(layout, ['/usr/bin/python3', '-c',
      'import json, sqlite3, threading\n' +
      'out = []\n' +
      'ts = [threading.Thread(target=lambda i=i: out.append(i * i)) for i in range(4)]\n' +
      '[t.start() for t in ts]; [t.join() for t in ts]\n' +
      'db = sqlite3.connect(":memory:"); db.execute("create table t(x)"); db.executemany("insert into t values (?)", [(v,) for v in out])\n' +
      'print(json.dumps({"sum": db.execute("select sum(x) from t").fetchone()[0], "n": len(out)}))']);
    expectVerified(rt);
    expect(rt.verify.fullStdout).toBe('{"sum": 14, "n": 4}\n');
    // the interpreter strace never shows, and the links on the way to it
    expect(paths(rt, 'interpreter').some((p) => p.endsWith('/ld-linux-x86-64.so.2'))).toBe(true);
    expect(rt.closure.entries).toContainEqual({ path: '/usr/bin/python3', type: 'symlink', reason: 'symlink', linkTarget: 'python3.11' });
    expect(paths(rt).some((p) => /_sqlite3\.cpython.*\.so$/.test(p))).toBe(true);
  });

  it('perl -MPOSIX, verified through chroot as well', async () => {
    const cmd = ['perl', '-MPOSIX=floor,strftime', '-e', 'print floor(7.9), " ", strftime("%Y-%m-%d", gmtime(86400 * 365)), "\\n"'];
    const rt = await roundTrip(layout, cmd);
    expectVerified(rt);
    expect(rt.verify.fullStdout).toBe('7 1971-01-01\n');
    const viaChroot = await verifyRoot({ trimmed: rt.root, full: layout, command: cmd, method: 'chroot' });
    expect(viaChroot.method).toBe('chroot');
    expect(viaChroot.trimmedStdout).toBe(rt.verify.fullStdout);
    expect(viaChroot.ok).toBe(true);
  });

  it('coreutils: ls and sort --parallel=2 over a data file in the layer', async () => {
    const rt = await roundTrip(layout, ['sh', '-c', 'ls -ln /opt/t/share && sort --parallel=2 -S 1M /opt/t/share/words.txt | tail -n 3']);
    expectVerified(rt);
    expect(paths(rt, 'traced')).toContain('/opt/t/share/words.txt');
    expect(rt.verify.fullStdout).toContain('words.txt');
  });

  it('a #! script, traced with per-pid logs (-ff)', async () => {
    const rt = await roundTrip(layout, ['/opt/t/bin/words.sh'], { perPid: true });
    expectVerified(rt);
    expect(rt.verify.fullStdout).toMatch(/^lines: 4000\n/);
    expect(rt.traced.trace.pids.length).toBeGreaterThan(2);
    expect(paths(rt)).toContain('/opt/t/bin/words.sh');
    // /bin/sh -> dash through /bin -> usr/bin
    expect(rt.closure.entries).toContainEqual(expect.objectContaining({ path: '/bin', type: 'symlink', linkTarget: 'usr/bin' }));
  });

  it('a program started by a relative path after cd, that dlopen()s libz by name, with threads and a link chain', async () => {
    const rt = await roundTrip(layout, ['sh', '-c', 'cd /opt/t/bin && ./dlz']);
    expectVerified(rt);
    expect(rt.verify.fullStdout).toMatch(/^zlib [\d.]+, sums \d+ \d+, data: reached through a chain of links\n$/);
    expect(rt.traced.trace.access.executables).toContain('/opt/t/bin/dlz');
    expect(paths(rt)).toContain('/opt/t/bin/dlz');
    expect(paths(rt).some((p) => /\/libz\.so\.1(\.|$)/.test(p))).toBe(true);
    const chain = rt.closure.entries.filter((e) => e.path.startsWith('/opt/t/lib/data-'));
    expect(chain.map((e) => [e.path, e.linkTarget])).toEqual([
      ['/opt/t/lib/data-1', 'data-2'],
      ['/opt/t/lib/data-2', '../lib/data-3'],
      ['/opt/t/lib/data-3', '/opt/t/share/real.txt'],
    ]);
    expect(paths(rt)).toContain('/opt/t/share/real.txt');
  });

  it('lists the paths a broken trimmed root could not find', async () => {
    const rt = await roundTrip(layout, ['sh', '-c', 'cd /opt/t/bin && ./dlz']);
    expectVerified(rt);
    const libz = rt.closure.entries.find((e) => e.type === 'file' && /\/libz\.so\.1\.[\d.]+$/.test(e.path))!;
    unlinkSync(join(rt.root, libz.path));
    rmSync(join(rt.root, 'opt/t/share/real.txt'));
    const broken = await verifyRoot({ trimmed: rt.root, full: layout, command: ['sh', '-c', 'cd /opt/t/bin && ./dlz'] });
    expect(broken.ok).toBe(false);
    expect(broken.exitCodes.trimmed).not.toBe(0);
    expect(broken.missing).toContain(libz.path);
  });
});
