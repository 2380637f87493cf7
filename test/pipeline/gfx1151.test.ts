/**
 * gfx1151 up to the GPU boundary: a ROCm tree in TheRock's layout (links
 * `llvm -> lib/llvm` and `amdgcn -> lib/llvm/amdgcn`, `.kpack/` packs,
 * per-arch rocBLAS and hipBLASLt kernel files), trimmed through the
 * pipeline's code path with the gfx1151 target's rules; and strace-trace on
 * a machine without the GPU failing first, before anything is built.
 */
import { mkdirSync, mkdtempSync, readlinkSync, lstatSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import gfx1151 from '../../plugins/gfx1151.js';
import { computeClosure } from '../../src/runtime/closure.js';
import { assembleRoot } from '../../src/runtime/assemble.js';
import { trimReport, layoutFiles } from '../../src/runtime/report.js';
import { pipelineCategory } from '../../src/pipeline/full-runtime.js';
import type { RootLayout } from '../../src/runtime/layout.js';
import { rocmflowAsync } from '../helpers/cli.js';
import { vocabFile } from '../helpers/llama.js';

const ARCHES = ['gfx1151', 'gfx1100', 'gfx942', 'gfx1201'];
const temps: string[] = [];
let tree: string;

function file(rel: string, bytes = 64): void {
  mkdirSync(join(tree, rel, '..'), { recursive: true });
  writeFileSync(join(tree, rel), Buffer.alloc(bytes, rel.length));
}

beforeAll(() => {
  tree = mkdtempSync(join(tmpdir(), 'rocmflow-therock-'));
  temps.push(tree);
  for (const lib of ['libamdhip64.so.7.1.0', 'librocblas.so.5.1', 'libhipblaslt.so.1.1', 'libamd_comgr.so.3.0', 'libhsa-runtime64.so.1.15']) file(`lib/${lib}`, 4096);
  symlinkSync('libamdhip64.so.7.1.0', join(tree, 'lib/libamdhip64.so.7'));
  symlinkSync('librocblas.so.5.1', join(tree, 'lib/librocblas.so.5'));
  symlinkSync('libhipblaslt.so.1.1', join(tree, 'lib/libhipblaslt.so.1'));
  symlinkSync('libamd_comgr.so.3.0', join(tree, 'lib/libamd_comgr.so.3'));
  file('lib/llvm/bin/clang', 1024);
  file('lib/llvm/amdgcn/bitcode/ockl.bc', 512);
  file('lib/llvm/amdgcn/bitcode/ocml.bc', 512);
  symlinkSync('lib/llvm', join(tree, 'llvm'));
  symlinkSync('lib/llvm/amdgcn', join(tree, 'amdgcn'));
  file('include/rocblas/rocblas.h');
  file('lib/librocblas.a', 2048);
  file('share/doc/rocblas/LICENSE');
  for (const a of ARCHES) {
    file(`.kpack/blas_lib_${a}.kpack`, 8192);
    file(`lib/rocblas/library/TensileLibrary_lazy_${a}.dat`, 1024);
    file(`lib/rocblas/library/Kernels.so-000-${a}.hsaco`, 8192);
    file(`lib/rocblas/library/TensileLibrary_Type_HH_Contraction_${a}.co`, 8192);
    file(`lib/hipblaslt/library/extop_${a}.co`, 4096);
    file(`lib/hipblaslt/library/TensileLibrary_${a}.dat`, 1024);
  }
  file('share/libdrm/amdgpu.ids', 128);
});

afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

describe('gfx1151 rules through the trim code path', () => {
  it('keep exactly the gfx1151 kernel files and both links, and drop every other arch', async () => {
    const layout: RootLayout = { base: '/', layers: [{ mount: '/opt/rocm', source: tree }] };
    // what a trace of llama.cpp loading the HIP backend without a device shows
    const access = {
      files: ['libamdhip64.so.7', 'librocblas.so.5', 'libhipblaslt.so.1'].map((l) => ({ path: `/opt/rocm/lib/${l}`, resolved: `/opt/rocm/lib/${l}` })),
      executables: [], missing: [], devices: [],
    };
    const closure = await computeClosure({
      layout, access, mounted: ['/models/**'], keep: gfx1151.keep, drop: gfx1151.drop, hostProvided: gfx1151.hostProvided,
    });
    const dest = mkdtempSync(join(tmpdir(), 'rocmflow-trim-gfx1151-'));
    temps.push(dest);
    rmSync(dest, { recursive: true });
    const manifest = await assembleRoot(closure, { layout, dest: join(dest, 'rootfs'), manifestPath: join(dest, 'rootfs.manifest.json') });
    const paths = manifest.entries.map((e) => e.path);

    const kernels = (p: string) => /\/(library|\.kpack)\//.test(p) && manifest.entries.find((e) => e.path === p)?.type === 'file';
    const kept = paths.filter(kernels).sort();
    const expected = [
      '/opt/rocm/.kpack/blas_lib_gfx1151.kpack',
      '/opt/rocm/lib/hipblaslt/library/TensileLibrary_gfx1151.dat',
      '/opt/rocm/lib/hipblaslt/library/extop_gfx1151.co',
      '/opt/rocm/lib/rocblas/library/Kernels.so-000-gfx1151.hsaco',
      '/opt/rocm/lib/rocblas/library/TensileLibrary_Type_HH_Contraction_gfx1151.co',
      '/opt/rocm/lib/rocblas/library/TensileLibrary_lazy_gfx1151.dat',
    ];
    expect(kept).toEqual(expected);
    for (const a of ARCHES.filter((x) => x !== 'gfx1151')) expect(paths.filter((p) => p.includes(a))).toEqual([]);

    // both links, as links, with their relative targets, in the assembled root too
    for (const [link, target] of [['llvm', 'lib/llvm'], ['amdgcn', 'lib/llvm/amdgcn']] as const) {
      const e = manifest.entries.find((x) => x.path === `/opt/rocm/${link}`);
      expect(e?.type).toBe('symlink');
      expect(e?.linkTarget).toBe(target);
      expect(lstatSync(join(dest, 'rootfs/opt/rocm', link)).isSymbolicLink()).toBe(true);
      expect(readlinkSync(join(dest, 'rootfs/opt/rocm', link))).toBe(target);
    }
    // what a device needs but a device-less trace never loads
    expect(paths).toContain('/opt/rocm/lib/libamd_comgr.so.3.0');
    expect(paths).toContain('/opt/rocm/lib/llvm/amdgcn/bitcode/ockl.bc');
    expect(paths).toContain('/opt/rocm/share/libdrm/amdgpu.ids');
    // headers, static libs and docs go
    expect(paths.some((p) => p.includes('/include/') || p.endsWith('.a') || p.includes('/share/doc/'))).toBe(false);

    // the report counts kernels per arch: all of gfx1151 kept, none of the others
    const full = layoutFiles({ base: tree, layers: [] }).map((f) => ({ ...f, path: '/opt/rocm' + f.path }));
    const rows = trimReport({ full, manifest, categorize: pipelineCategory }).json.byCategory;
    const row = (k: string) => rows.find((r) => r.key === k)!;
    expect(row('GPU kernels (gfx1151)').trimmed).toEqual(row('GPU kernels (gfx1151)').full);
    for (const a of ARCHES.filter((x) => x !== 'gfx1151')) {
      expect(row(`GPU kernels (${a})`).full.files).toBe(6);
      expect(row(`GPU kernels (${a})`).trimmed.files).toBe(0);
    }
  });
});

describe('strace-trace without the GPU', () => {
  it('fails first, naming the missing device and the --target to use instead', async () => {
    if (existsSync('/dev/kfd')) return; // a machine with an AMD GPU: nothing to prove here
    const ws = mkdtempSync(join(tmpdir(), 'rocmflow-ws-gfx1151-'));
    temps.push(ws);
    const config = {
      target: 'gfx1151',
      stateDir: join(ws, 'state'),
      cacheDir: join(ws, 'cache'),
      tasks: { 'fetch-rocm': { source: { kind: 'dir', path: tree } }, model: { vocab: await vocabFile() } },
    };
    writeFileSync(join(ws, 'rocmflow.config.ts'), `export default ${JSON.stringify(config, null, 2)};\n`);
    const t0 = Date.now();
    // the compiled mirror of bin/rocmflow.js cannot hash the model task's code paths yet: run the sources
    const r = await rocmflowAsync(ws, ['run', 'strace-trace', '--target', 'gfx1151', '--json']).done;
    expect(r.code).toBe(1);
    const tasks = Object.fromEntries(r.events.filter((e) => e.type === 'task').map((e) => [e.task, e]));
    expect(tasks['detect-target']?.state).toBe('failed');
    expect(tasks['detect-target']?.error).toMatch(/^no gfx1151 GPU found for target gfx1151 \(.+\): use --target cpu, or --target auto; or --no-device to build, trace \(CPU fallback\), trim and package for gfx1151 without it$/);
    // nothing was built, nothing was traced
    expect(tasks['build-llama']?.state).not.toBe('ran');
    expect(tasks['strace-trace']?.state).toBe('skipped');
    expect(Date.now() - t0).toBeLessThan(60_000);
  });
});
