import { copyFileSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readElf } from '../../src/runtime/elf.js';
import { parseLdCache } from '../../src/runtime/ld-cache.js';
import { DynamicLoader } from '../../src/runtime/ldso.js';
import { cc, cleanTemps, sh, temp } from './helpers.js';

afterAll(cleanTemps);

/** binutils' view of a file: interpreter, NEEDED, RUNPATH/RPATH, SONAME. */
function readelf(file: string) {
  const text = sh('readelf', ['-W', '-l', '-d', file]);
  const all = (re: RegExp) => [...text.matchAll(re)].map((m) => m[1]!);
  return {
    interp: /Requesting program interpreter: ([^\]]+)\]/.exec(text)?.[1] ?? null,
    needed: all(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g),
    runpath: all(/\(RUNPATH\)\s+Library runpath: \[([^\]]+)\]/g).flatMap((s) => s.split(':')).filter(Boolean),
    rpath: all(/\(RPATH\)\s+Library rpath: \[([^\]]+)\]/g).flatMap((s) => s.split(':')).filter(Boolean),
    soname: /\(SONAME\)\s+Library soname: \[([^\]]+)\]/.exec(text)?.[1] ?? null,
  };
}

/** glibc's own answer: ldd's "name => path" lines, as canonical paths. */
function ldd(file: string): Map<string, string | null> {
  const out = new Map<string, string | null>();
  for (const line of sh('ldd', [file]).split('\n')) {
    const m = /^\s*(\S+) => (not found|(\S+) \(0x)/.exec(line);
    if (m) out.set(m[1]!, m[3] ? realpathSync(m[3]) : null);
  }
  return out;
}

describe('readElf', () => {
  it.each(['/bin/ls', '/usr/bin/python3', '/usr/bin/perl', '/usr/lib/x86_64-linux-gnu/libc.so.6'])('agrees with readelf on %s', async (file) => {
    const info = await readElf(file);
    const ref = readelf(file);
    expect(info).not.toBeNull();
    expect(info!.class).toBe(64);
    expect(info!.machine).toBe(62);
    expect(info!.interp).toBe(ref.interp);
    expect(info!.needed).toEqual(ref.needed);
    expect(info!.runpath).toEqual(ref.runpath);
    expect(info!.rpath).toEqual(ref.rpath);
    expect(info!.soname).toBe(ref.soname);
  });

  it('reads /bin/ls: libc.so.6 through /lib64/ld-linux-x86-64.so.2', async () => {
    const info = (await readElf('/bin/ls'))!;
    expect(info.needed).toContain('libc.so.6');
    expect(info.interp).toBe('/lib64/ld-linux-x86-64.so.2');
  });

  it('reads a 32-bit shared object built with cc -m32', async () => {
    const dir = temp();
    const lib = cc('int foo(void) { return 32; }', join(dir, 'libfoo32.so'), ['-m32', '-shared', '-nostdlib', '-fPIC', '-Wl,-soname,libfoo.so.1']);
    const info = (await readElf(lib))!;
    expect(info.class).toBe(32);
    expect(info.machine).toBe(3);
    expect(info.soname).toBe(readelf(lib).soname);
  });

  it('returns null for files that are not ELF', async () => {
    expect(await readElf('/etc/passwd')).toBeNull();
  });

  it('names the file of a truncated ELF', async () => {
    const dir = temp();
    const bad = join(dir, 'cut.so');
    writeFileSync(bad, readFileSync('/usr/lib/x86_64-linux-gnu/libc.so.6').subarray(0, 200));
    await expect(readElf(bad)).rejects.toMatchObject({ code: 'E_ELF', message: expect.stringContaining(bad) });
  });
});

describe('ld.so.cache', () => {
  it('lists what ldconfig -p lists, in the same order', () => {
    const entries = parseLdCache(readFileSync('/etc/ld.so.cache'), '/etc/ld.so.cache');
    const ref = sh('ldconfig', ['-p']).split('\n').slice(1).map((l) => /^\s*(\S+) \(.*\) => (\S+)$/.exec(l)).filter((m) => m).map((m) => `${m![1]} ${m![2]}`);
    expect(entries.map((e) => `${e.name} ${e.path}`)).toEqual(ref);
  });

  it('rejects a file that is not a cache, naming it', () => {
    expect(() => parseLdCache(Buffer.from('hello world, not a cache at all........................'), '/x/ld.so.cache')).toThrow(/\/x\/ld\.so\.cache/);
  });
});

describe('DynamicLoader', () => {
  const host = new DynamicLoader({ base: '/', layers: [] });

  it.each(['/bin/ls', '/usr/bin/python3', '/usr/bin/perl', '/usr/bin/sort'])('finds what ldd finds for %s', async (file) => {
    const root = (await host.load(file))!;
    const ours = new Map((await host.closure(root)).filter((r) => r.found && r.via !== 'loaded').map((r) => [r.name, r.found!.resolution.path]));
    for (const [name, path] of ldd(file)) expect(ours.get(name), name).toBe(path);
  });

  function buildChain(tags: 'runpath' | 'rpath') {
    // bin/prog needs libb (lib/), which needs liba (deps/): prog's path entry names both dirs
    const dir = temp();
    cc('int a(void) { return 1; }', join(dir, 'deps/liba.so'), ['-shared', '-fPIC', '-Wl,-soname,liba.so']);
    cc('int a(void); int b(void) { return a() + 1; }', join(dir, 'lib/libb.so'), ['-shared', '-fPIC', '-Wl,-soname,libb.so', `-L${dir}/deps`, '-la']);
    const dtags = tags === 'rpath' ? '-Wl,--disable-new-dtags' : '-Wl,--enable-new-dtags';
    cc('int b(void); int main(void) { return b() == 2 ? 0 : 1; }', join(dir, 'bin/prog'), [`-L${dir}/lib`, '-lb', dtags, "-Wl,-rpath,$ORIGIN/../lib:$ORIGIN/../deps"]);
    return dir;
  }

  it('expands $ORIGIN in DT_RUNPATH, for the object\'s own needs only (like ld.so)', async () => {
    const dir = buildChain('runpath');
    expect(readelf(join(dir, 'bin/prog')).runpath).toEqual(['$ORIGIN/../lib', '$ORIGIN/../deps']);
    const loader = new DynamicLoader({ base: '/', layers: [{ mount: '/opt/t', source: dir }] });
    const res = await loader.closure((await loader.load('/opt/t/bin/prog'))!);
    const b = res.find((r) => r.name === 'libb.so')!;
    expect(b.via).toBe('runpath');
    expect(b.found!.resolution.path).toBe('/opt/t/lib/libb.so');
    // RUNPATH is not inherited: libb's need of liba is not found, and glibc agrees
    expect(res.find((r) => r.name === 'liba.so')!.found).toBeNull();
    expect(ldd(join(dir, 'bin/prog')).get('liba.so')).toBeNull();
  });

  it('inherits DT_RPATH along the loading chain (like ld.so)', async () => {
    const dir = buildChain('rpath');
    expect(readelf(join(dir, 'bin/prog')).rpath).toEqual(['$ORIGIN/../lib', '$ORIGIN/../deps']);
    const loader = new DynamicLoader({ base: '/', layers: [{ mount: '/opt/t', source: dir }] });
    const res = await loader.closure((await loader.load('/opt/t/bin/prog'))!);
    const a = res.find((r) => r.name === 'liba.so')!;
    expect(a.via).toBe('rpath');
    expect(a.found!.resolution.path).toBe('/opt/t/deps/liba.so');
    expect(ldd(join(dir, 'bin/prog')).get('liba.so')).toBe(realpathSync(join(dir, 'deps/liba.so')));
  });

  it('uses LD_LIBRARY_PATH before DT_RUNPATH and skips wrong-class candidates', async () => {
    const dir = buildChain('runpath');
    // a 32-bit libb.so first on LD_LIBRARY_PATH: ld.so skips it as incompatible
    cc('int b(void) { return 2; }', join(dir, 'lib32/libb.so'), ['-m32', '-shared', '-nostdlib', '-fPIC', '-Wl,-soname,libb.so']);
    copyFileSync(join(dir, 'lib/libb.so'), join(dir, 'deps/libb.so'));
    const loader = new DynamicLoader({ base: '/', layers: [{ mount: '/opt/t', source: dir }] }, { libraryPath: ['/opt/t/lib32', '/opt/t/deps'] });
    const res = await loader.closure((await loader.load('/opt/t/bin/prog'))!);
    const b = res.find((r) => r.name === 'libb.so')!;
    expect(b.via).toBe('LD_LIBRARY_PATH');
    expect(b.found!.resolution.path).toBe('/opt/t/deps/libb.so');
    expect(res.find((r) => r.name === 'liba.so')!.found!.resolution.path).toBe('/opt/t/deps/liba.so');
  });
});
