/**
 * Exclusions, host-provided files, keep and drop rules, and what assembly
 * writes (modes, links, hard links, manifest digests), on a real traced
 * program reading real files of a temp layer.
 */
import { linkSync, lstatSync, readFileSync, readlinkSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleRoot } from '../../src/runtime/assemble.js';
import { computeClosure } from '../../src/runtime/closure.js';
import type { RootLayout } from '../../src/runtime/layout.js';
import { layoutFiles, trimReport } from '../../src/runtime/report.js';
import { traceInRoot } from '../../src/runtime/trace-in-root.js';
import type { AccessSet } from '../../src/trace/access-set.js';
import { cleanTemps, put, sh, temp } from './helpers.js';

let layer: string;
let models: string;
let layout: RootLayout;
let access: AccessSet;
const CMD = ['sh', '-c', 'cat /opt/r/lib/librocblas.so.4 /opt/r/lib/libhw.so /opt/r/share/a.txt /opt/r/share/b.txt /opt/r/share/run.log /models/m.gguf; ls /opt/r/lib/rocblas > /dev/null; head -c 4 /proc/self/status'];

beforeAll(async () => {
  layer = temp('rocmflow-rules-');
  models = temp('rocmflow-models-');
  put(join(models, 'm.gguf'), 'GGUF model bytes\n');
  put(join(layer, 'lib/librocblas.so.4.4'), 'rocblas\n', 0o755);
  symlinkSync('librocblas.so.4.4', join(layer, 'lib/librocblas.so.4'));
  put(join(layer, 'lib/libhw.so'), 'a host-provided driver library\n');
  for (const arch of ['gfx1151', 'gfx1100', 'gfx90a']) put(join(layer, `lib/rocblas/library/Kernels-${arch}.hsaco`), `${arch} kernels\n`);
  put(join(layer, 'lib/rocblas/library/TensileLibrary.h'), 'header\n');
  put(join(layer, 'share/a.txt'), 'one inode, two names\n', 0o640);
  put(join(layer, 'share/run.log'), 'a log\n');
  linkSync(join(layer, 'share/a.txt'), join(layer, 'share/b.txt'));
  put(join(layer, 'bin/tool'), '#!/bin/sh\nexit 0\n', 0o4755);
  layout = { base: '/', layers: [{ mount: '/opt/r', source: layer }] };
  const t = await traceInRoot({ layout, command: CMD, binds: [{ source: models, dest: '/models' }] });
  expect(t.run.exitCode).toBe(0);
  access = t.trace.access;
});

afterAll(cleanTemps);

describe('closure rules', () => {
  it('applies exclusions, host-provided, keep (plain and ifLoaded) and drop in that order', async () => {
    const closure = await computeClosure({
      layout,
      access,
      mounted: ['/models/**'],
      exclude: ['**/*.log'],
      hostProvided: ['libhw.so*'],
      keep: [
        { ifLoaded: '**/librocblas.so*', paths: ['/opt/r/lib/rocblas/library/*gfx1151*', '/opt/r/lib/rocblas/library/*.h'] },
        { ifLoaded: '**/libnot-loaded.so*', paths: ['/opt/r/lib/rocblas/library/*gfx90a*'] },
        '/opt/r/bin/tool',
      ],
      drop: ['**/*.h', '/opt/r/lib/librocblas.so.4', '**/ld-linux-x86-64.so.2'],
    });
    const byPath = new Map(closure.entries.map((e) => [e.path, e]));
    expect(closure.excluded).toContainEqual({ path: '/models/m.gguf', why: 'mounted at run time (/models/**)' });
    expect(closure.excluded).toContainEqual({ path: '/opt/r/share/run.log', why: 'excluded by **/*.log' });
    expect([...byPath.keys()].some((p) => p.startsWith('/proc') || p.startsWith('/dev') || p.startsWith('/models'))).toBe(false);
    expect(closure.hostProvided).toEqual(['/opt/r/lib/libhw.so']);
    expect(byPath.get('/opt/r/lib/rocblas/library/Kernels-gfx1151.hsaco')?.reason).toBe('rule');
    expect(byPath.has('/opt/r/lib/rocblas/library/Kernels-gfx1100.hsaco')).toBe(false);
    expect(byPath.has('/opt/r/lib/rocblas/library/Kernels-gfx90a.hsaco')).toBe(false);
    expect(byPath.get('/opt/r/bin/tool')?.reason).toBe('rule');
    // drop beats keep
    expect(byPath.has('/opt/r/lib/rocblas/library/TensileLibrary.h')).toBe(false);
    expect(closure.excluded).toContainEqual({ path: '/opt/r/lib/rocblas/library/TensileLibrary.h', why: 'dropped by **/*.h' });
    // a dropped link leaves its (traced) target in place
    expect(byPath.has('/opt/r/lib/librocblas.so.4')).toBe(false);
    expect(byPath.get('/opt/r/lib/librocblas.so.4.4')?.reason).toBe('traced');
    // drop never removes an ELF interpreter, nor the links to it
    const interp = closure.entries.find((e) => e.reason === 'interpreter')!;
    expect(interp.path).toMatch(/ld-linux-x86-64\.so\.2$/);
    expect(byPath.get('/lib64')?.type).toBe('symlink');
    // the directory only listed is there (created empty apart from kept files)
    expect(byPath.get('/opt/r/lib/rocblas')).toEqual({ path: '/opt/r/lib/rocblas', type: 'dir', reason: 'lookup-dir' });
    expect(byPath.get('/opt/r/share/b.txt')?.hardlinkOf).toBe('/opt/r/share/a.txt');
  });
});

describe('assembleRoot and trimReport', () => {
  it('writes modes, links, hard links and a manifest whose digests sha256sum confirms', async () => {
    const closure = await computeClosure({ layout, access, mounted: ['/models/**'], keep: ['/opt/r/bin/tool'] });
    const out = temp('rocmflow-asm-');
    const dest = join(out, 'root');
    const progress: number[] = [];
    const manifest = await assembleRoot(closure, { layout, dest, onProgress: (d) => progress.push(d) });
    expect(JSON.parse(readFileSync(join(out, 'root.manifest.json'), 'utf8'))).toEqual(manifest);
    expect(progress.at(-1)).toBe(manifest.files);

    expect(readlinkSync(join(dest, 'opt/r/lib/librocblas.so.4'))).toBe('librocblas.so.4.4');
    expect(readlinkSync(join(dest, 'lib64'))).toBe(readlinkSync('/lib64'));
    const a = statSync(join(dest, 'opt/r/share/a.txt'));
    expect(statSync(join(dest, 'opt/r/share/b.txt')).ino).toBe(a.ino);
    expect(a.mode & 0o7777).toBe(0o640);
    expect(statSync(join(dest, 'opt/r/bin/tool')).mode & 0o7777).toBe(statSync(join(layer, 'bin/tool')).mode & 0o7777);
    expect(statSync(join(dest, 'usr/bin')).mode & 0o7777).toBe(statSync('/usr/bin').mode & 0o7777);
    expect(Math.abs(statSync(join(dest, 'opt/r/share/a.txt')).mtimeMs - statSync(join(layer, 'share/a.txt')).mtimeMs)).toBeLessThan(0.01);
    expect(lstatSync(join(dest, 'opt/r/lib/rocblas')).isDirectory()).toBe(true);

    const files = manifest.entries.filter((e) => e.type === 'file' && e.sha256);
    const sums = sh('sha256sum', files.map((e) => join(dest, e.path))).trim().split('\n').map((l) => l.split(/\s+/)[0]);
    expect(files.map((e) => e.sha256)).toEqual(sums);
    expect(manifest.bytes).toBe(files.reduce((n, e) => n + e.size, 0));
    expect(manifest.entries.find((e) => e.path === '/opt/r/share/b.txt')).toMatchObject({ hardlinkOf: '/opt/r/share/a.txt' });

    const report = trimReport({ full: layoutFiles({ base: layer, layers: [] }).map((f) => ({ ...f, path: '/opt/r' + f.path })).concat([{ path: '/usr/lib/x', size: 1 << 30 }]), manifest });
    expect(report.json.trimmed).toEqual({ files: manifest.files, bytes: manifest.bytes });
    expect(report.json.byReason.reduce((n, r) => n + r.files, 0)).toBe(manifest.files);
    expect(report.json.largest[0]!.bytes).toBe(Math.max(...files.map((f) => f.size)));
    expect(report.json.byTopDir.find((r) => r.key === '/opt/r')!.full.files).toBe(layoutFiles({ base: layer, layers: [] }).length);
    expect(report.markdown).toContain('## Largest files kept');
    expect(report.markdown).toContain(`\`${report.json.largest[0]!.path}\``);
  });

  it('refuses a destination that is not empty, naming it', async () => {
    const closure = await computeClosure({ layout, access, mounted: ['/models/**'] });
    const dest = temp('rocmflow-asm-');
    put(join(dest, 'old'), 'x');
    await expect(assembleRoot(closure, { layout, dest })).rejects.toMatchObject({ code: 'E_DEST_NOT_EMPTY', message: expect.stringContaining(dest) });
  });
});
