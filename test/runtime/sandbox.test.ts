import { readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runSandboxed, sandboxArgv } from '../../src/runtime/sandbox.js';
import { cleanTemps, put, roundTrip, sh, temp } from './helpers.js';

afterAll(cleanTemps);

describe('sandbox', () => {
  it('gives the command only the environment it is given', async () => {
    const r = await runSandboxed({ layout: { base: '/', layers: [] }, env: { ONLY: 'this' }, command: ['env'] });
    expect(r.exitCode).toBe(0);
    // bwrap itself adds PWD for --chdir
    expect(r.stdout.trim().split('\n').sort()).toEqual(['ONLY=this', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'PWD=/']);
  });

  it('mounts a layer where the base has no mount point, keeping the siblings visible', async () => {
    const layer = temp();
    put(join(layer, 'x.txt'), 'x\n');
    const r = await runSandboxed({ layout: { base: '/', layers: [{ mount: '/opt/nowhere-yet/deep', source: layer }] }, command: ['sh', '-c', 'cat /opt/nowhere-yet/deep/x.txt; ls /opt'] });
    expect(r.exitCode).toBe(0);
    const opt = readdirSync('/opt');
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['x', 'nowhere-yet', ...opt].sort());
  });

  it('writes nothing into a plain root entered with bwrap', async () => {
    const rt = await roundTrip({ base: '/', layers: [] }, ['/bin/ls', '-ln', '/usr/bin/ls']);
    expect(rt.verify.ok).toBe(true);
    // only the closure's top-level names: no /dev, /proc, /sys, /tmp or strace mount points left behind
    const top = [...new Set(rt.manifest.entries.map((e) => e.path.split('/')[1]!))].sort();
    expect(readdirSync(rt.root).sort()).toEqual(top);
    expect(top).not.toContain('proc');
  });

  it('kills the whole process group when aborted', async () => {
    const dir = temp();
    const started = Date.now();
    // a sleep no other process has: the grandchild is found on the host by its arguments
    const marker = `${30 + Math.random()}`.slice(0, 12);
    const run = runSandboxed({ layout: { base: '/', layers: [] }, binds: [{ source: dir, dest: dir, rw: true }], command: ['sh', '-c', `sleep ${marker} & echo started > ${dir}/pid; wait`], signal: AbortSignal.timeout(500) });
    await expect(run).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(sh('cat', [join(dir, 'pid')]).trim()).toBe('started');
    await new Promise((r) => setTimeout(r, 200));
    // the grandchild is gone, or a zombie awaiting its reaper
    const states = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).flatMap((p) => {
      try {
        if (readFileSync(`/proc/${p}/cmdline`, 'latin1') !== `sleep\0${marker}\0`) return [];
        return [readFileSync(`/proc/${p}/stat`, 'latin1').split(') ')[1]![0]!];
      } catch {
        return []; // gone meanwhile
      }
    });
    expect(states.filter((st) => st !== 'Z')).toEqual([]);
  });

  it('gives the command no capabilities and a /proc of its own, so /proc/1/root is not the host', async () => {
    const outside = temp();
    const r = await runSandboxed({
      layout: { base: '/', layers: [] },
      command: ['sh', '-c', `grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status; ls /proc | grep -c '^[0-9]'; echo x > /proc/1/root${outside}/planted && echo wrote`],
    });
    expect(r.stdout).toContain('CapEff:\t0000000000000000');
    expect(r.stdout).toContain('CapPrm:\t0000000000000000');
    expect(r.stdout).toContain('NoNewPrivs:\t1');
    expect(Number(r.stdout.trim().split('\n')[3])).toBeLessThan(10);
    expect(r.stdout).not.toContain('wrote');
    expect(readdirSync(outside)).toEqual([]);
  });

  it('the chroot fallback: its own pid namespace, and no mount point through a link in the root', async () => {
    const r = await runSandboxed({ layout: { base: '/', layers: [] }, method: 'chroot', command: ['sh', '-c', "ls /proc | grep -c '^[0-9]'"] });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(Number(r.stdout.trim())).toBeLessThan(10);
    // a root whose /models is a link to a host directory: mount (and mkdir -p) would follow it onto the host
    const root = temp();
    const hostDir = temp();
    const models = temp();
    symlinkSync(hostDir, join(root, 'models'));
    await expect(runSandboxed({ root, method: 'chroot', binds: [{ source: models, dest: '/models/x' }], command: ['true'] })).rejects.toMatchObject({
      code: 'E_SANDBOX', message: expect.stringContaining('/models/x goes through a link'),
    });
    expect(readdirSync(hostDir)).toEqual([]);
  });

  it('traces and trims inside a sysroot base (not the host /)', async () => {
    // a sysroot: the trimmed root of sh + ls, then used as the base of a new layout
    const first = await roundTrip({ base: '/', layers: [] }, ['sh', '-c', 'ls -d /usr/bin/ls /usr/bin/cat']);
    expect(first.verify.ok).toBe(true);
    const layer = temp();
    put(join(layer, 'hello.txt'), 'hello\n');
    const second = await roundTrip({ base: first.root, layers: [{ mount: '/srv/data', source: layer }] }, ['sh', '-c', 'ls -d /usr/bin/ls && cat /srv/data/hello.txt']);
    expect(second.verify.ok).toBe(true);
    expect(second.verify.fullStdout).toContain('hello\n');
    expect(second.verify.fullStdout).toContain('/usr/bin/ls\n');
    expect(second.closure.entries.map((e) => e.path)).toContain('/usr/bin/ls');
    expect(sandboxArgv({ root: first.root, command: ['ls'] }).argv).not.toContain('/usr/lib/python3');
  });
});
