import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostPath, readlinkInRoot, resolveInRoot, type RootLayout } from '../../src/runtime/layout.js';
import { cleanTemps, put, temp } from './helpers.js';

afterAll(cleanTemps);

describe('hostPath', () => {
  it('takes the longest layer mount prefix, else the base', () => {
    const layout: RootLayout = { base: '/srv/root', layers: [{ mount: '/opt/rocm', source: '/x/rocm' }, { mount: '/opt/rocm/lib/llvm', source: '/y/llvm' }] };
    expect(hostPath(layout, '/opt/rocm/bin/hipcc')).toBe('/x/rocm/bin/hipcc');
    expect(hostPath(layout, '/opt/rocm/lib/llvm/bin/clang')).toBe('/y/llvm/bin/clang');
    expect(hostPath(layout, '/opt/rocmx/a')).toBe('/srv/root/opt/rocmx/a');
    expect(hostPath(layout, '/opt/rocm')).toBe('/x/rocm');
    expect(hostPath({ base: '/', layers: [] }, '/usr/lib/../bin')).toBe('/usr/bin');
  });
});

describe('resolveInRoot', () => {
  it('follows the host\'s /lib64 -> usr/lib64 and the absolute link to the loader', async () => {
    const r = await resolveInRoot({ base: '/', layers: [] }, '/lib64/ld-linux-x86-64.so.2');
    expect(r.links[0]).toEqual({ path: '/lib64', target: 'usr/lib64' });
    expect(r.links.length).toBeGreaterThan(1);
    expect(r.stat?.isFile()).toBe(true);
    expect(r.path).not.toContain('/lib64/');
  });

  it('records a chain of relative and absolute links inside a layer, in order', async () => {
    const dir = temp();
    put(join(dir, 'share/real.txt'), 'real\n');
    mkdirSync(join(dir, 'lib'));
    symlinkSync('data-2', join(dir, 'lib/data-1'));
    symlinkSync('../lib/data-3', join(dir, 'lib/data-2'));
    symlinkSync('/opt/t/share/real.txt', join(dir, 'lib/data-3'));
    symlinkSync('lib', join(dir, 'libdir'));
    const layout = { base: '/', layers: [{ mount: '/opt/t', source: dir }] };
    const r = await resolveInRoot(layout, '/opt/t/libdir/data-1');
    expect(r.path).toBe('/opt/t/share/real.txt');
    expect(r.links.map((l) => l.path)).toEqual(['/opt/t/libdir', '/opt/t/lib/data-1', '/opt/t/lib/data-2', '/opt/t/lib/data-3']);
    expect(await readlinkInRoot(layout, '/opt/t/lib/data-3')).toBe('/opt/t/share/real.txt');
    expect(await readlinkInRoot(layout, '/opt/t/share/real.txt')).toBeNull();
    const last = await resolveInRoot(layout, '/opt/t/lib/data-1', { followLast: false });
    expect(last.path).toBe('/opt/t/lib/data-1');
    expect(last.stat?.isSymbolicLink()).toBe(true);
  });

  it('reports a missing component without throwing', async () => {
    const r = await resolveInRoot({ base: '/', layers: [] }, '/usr/no-such-dir/file');
    expect(r.stat).toBeNull();
    expect(r.path).toBe('/usr/no-such-dir/file');
  });

  it('flags a path that reaches a missing directory through a link and climbs back with "..": its lexical form lies below another link', async () => {
    // p/q/r/x leads out of the root; a library directory's link reaches it only by way of a missing directory and ".."
    const root = temp();
    mkdirSync(join(root, 'p/q/r'), { recursive: true });
    mkdirSync(join(root, 'usr/lib'), { recursive: true });
    symlinkSync('../../..', join(root, 'p/q/r/a'));
    symlinkSync('a/../../..', join(root, 'p/q/r/x'));
    symlinkSync('nothere/../../../p/q/r/x/etc/cron.d', join(root, 'usr/lib/x86_64-linux-gnu'));
    const r = await resolveInRoot({ base: root, layers: [] }, '/usr/lib/x86_64-linux-gnu/libcuda.so.1');
    expect(r.stat).toBeNull();
    expect(r.path).toBe('/p/q/r/x/etc/cron.d/libcuda.so.1');
    expect(r.climbsPastMissing).toBe(true);
    // a plain missing path is not flagged
    expect((await resolveInRoot({ base: root, layers: [] }, '/usr/lib/none/libcuda.so.1')).climbsPastMissing).toBeUndefined();
  });

  it('refuses a relative link that climbs out of the root with E_ESCAPE', async () => {
    const dir = temp();
    mkdirSync(join(dir, 'lib'));
    symlinkSync('../../../../../etc/passwd', join(dir, 'lib/escape'));
    const layout = { base: '/', layers: [{ mount: '/opt/t', source: dir }] };
    await expect(resolveInRoot(layout, '/opt/t/lib/escape')).rejects.toMatchObject({
      code: 'E_ESCAPE',
      message: expect.stringContaining('/opt/t/lib/escape'),
    });
  });

  it('refuses, in a sysroot, an absolute link that names a host path outside it', async () => {
    const outside = temp();
    put(join(outside, 'secret.so'), 'x');
    const sysroot = temp();
    mkdirSync(join(sysroot, 'usr/lib'), { recursive: true });
    symlinkSync(join(outside, 'secret.so'), join(sysroot, 'usr/lib/libsecret.so'));
    // the same link target existing inside the root is fine: absolute targets are root-relative
    put(join(sysroot, 'etc/real.conf'), 'x');
    symlinkSync('/etc/real.conf', join(sysroot, 'usr/lib/ok.conf'));
    const layout = { base: sysroot, layers: [] };
    expect((await resolveInRoot(layout, '/usr/lib/ok.conf')).path).toBe('/etc/real.conf');
    await expect(resolveInRoot(layout, '/usr/lib/libsecret.so')).rejects.toMatchObject({ code: 'E_ESCAPE', message: expect.stringContaining('outside the root') });
  });

  it('stops a symlink loop with E_LOOP', async () => {
    const dir = temp();
    symlinkSync('b', join(dir, 'a'));
    symlinkSync('a', join(dir, 'b'));
    await expect(resolveInRoot({ base: dir, layers: [] }, '/a')).rejects.toMatchObject({ code: 'E_LOOP' });
  });
});
