import { lstatSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import gfx1100 from '../../plugins/gfx1100.js';
import gfx1151 from '../../plugins/gfx1151.js';
import cuda from '../../plugins/cuda.js';
import { KNOWN_AMD_ARCHES } from '../../src/gpu/amd-target.js';
import { applyTargetRules } from '../../src/gpu/target-rules.js';
import { rocblasListing, type ListedFile } from './debian-rocblas.js';

/** The arch a kernel file is for (`gfx90a-xnack+` counts as gfx90a), or null for arch-neutral files. */
const archOf = (path: string) => /(gfx[0-9]+[a-z]?)(?![0-9])/.exec(path.slice(path.lastIndexOf('/') + 1))?.[1] ?? null;
const sum = (files: ListedFile[]) => files.reduce((a, f) => a + f.size, 0);
const MB = (n: number) => `${(n / 1e6).toFixed(0)} MB`;

describe("keep/drop rules on Debian's real multi-arch rocBLAS (librocblas4 from sid)", () => {
  let files: ListedFile[];
  let library: ListedFile[];
  const loaded = ['/usr/lib/x86_64-linux-gnu/librocblas.so.4.4'];
  beforeAll(async () => {
    files = (await rocblasListing()).files.filter((f) => f.type !== 'dir');
    library = files.filter((f) => f.path.includes('/rocblas/4.4.1/library/'));
  }, 900_000);

  it('is the real layout: ten arches of Tensile files, gigabytes of them', () => {
    const arches = new Set(library.map((f) => archOf(f.path)).filter(Boolean));
    expect([...arches].sort()).toEqual(['gfx1010', 'gfx1030', 'gfx1100', 'gfx1101', 'gfx1102', 'gfx803', 'gfx900', 'gfx906', 'gfx908', 'gfx90a']);
    for (const a of arches) expect(KNOWN_AMD_ARCHES).toContain(a);
    expect(sum(library)).toBeGreaterThan(2e9);
  });

  for (const target of [gfx1100, gfx1151]) {
    it(`${target.name}: keeps exactly the target's kernel files (and arch-neutral ones), drops every other arch`, () => {
      const plan = applyTargetRules(files.map((f) => f.path), target, loaded);
      const kept = new Set(plan.kept);
      const dropped = new Set(plan.dropped);
      const mine = library.filter((f) => archOf(f.path) === target.arch);
      const others = library.filter((f) => archOf(f.path) !== null && archOf(f.path) !== target.arch);
      const neutral = library.filter((f) => archOf(f.path) === null);
      for (const f of mine) expect(kept.has(f.path), f.path).toBe(true);
      for (const f of others) expect(dropped.has(f.path), f.path).toBe(true);
      for (const f of neutral) expect(kept.has(f.path), f.path).toBe(true);
      // nothing outside the library dir is kept by these rules: the trace decides about the .so itself
      expect(plan.kept.every((p) => p.includes('/rocblas/4.4.1/library/'))).toBe(true);
      expect(plan.untouched).toContain('/usr/lib/x86_64-linux-gnu/librocblas.so.4.4');
      const keptBytes = sum(library.filter((f) => kept.has(f.path)));
      console.log(`${target.name}: rocBLAS library ${MB(sum(library))} in ${library.length} files; kept ${MB(keptBytes)} (${MB(sum(mine))} of ${target.arch} kernels in ${mine.length} files, ${MB(sum(neutral))} arch-neutral), dropped ${MB(sum(others))}`);
      if (target.arch === 'gfx1100') {
        expect(mine.length).toBeGreaterThan(50);
        expect(sum(mine) / sum(library)).toBeGreaterThan(0.05);
        expect(sum(mine) / sum(library)).toBeLessThan(0.2);
      } else {
        // Debian builds no gfx1151 kernels: only the arch-neutral files stay
        expect(mine).toEqual([]);
        expect(keptBytes).toBe(sum(neutral));
      }
    });
  }

  it('without librocblas in the trace, the library dir is not kept', () => {
    const plan = applyTargetRules(files.map((f) => f.path), gfx1100, []);
    expect(plan.kept).toEqual([]);
  });

  it('drops the docs', () => {
    const plan = applyTargetRules(files.map((f) => f.path), gfx1100, loaded);
    expect(plan.dropped).toContain('/usr/share/doc/librocblas4/copyright');
  });
});

describe('keep/drop rules on a TheRock-shaped layout', () => {
  let root: string;
  let paths: string[];
  beforeAll(() => {
    root = join(mkdtempSync(join(tmpdir(), 'rocmflow-therock-')), 'rocm');
    const files = [
      'lib/libamdhip64.so.7', 'lib/librocblas.so.5', 'lib/libhipblaslt.so.1', 'lib/libamd_comgr.so.3', 'lib/libhsa-runtime64.so.1',
      'lib/rocblas/library/TensileLibrary_lazy_gfx1151.dat', 'lib/rocblas/library/Kernels.so-000-gfx1151.hsaco',
      'lib/rocblas/library/TensileLibrary_Type_HH_Contraction_gfx1151.co', 'lib/rocblas/library/TensileLibrary_lazy_gfx1100.dat',
      'lib/rocblas/library/Kernels.so-000-gfx1100.hsaco', 'lib/rocblas/library/Kernels.so-000-gfx1150.hsaco',
      'lib/rocblas/library/gfx1151/TensileLibrary_x.co', 'lib/rocblas/library/gfx942/TensileLibrary_x.co',
      'lib/hipblaslt/library/TensileLibrary_gfx1151.dat', 'lib/hipblaslt/library/extop_gfx1151.co', 'lib/hipblaslt/library/extop_gfx1100.co',
      'lib/hipblaslt/library/hipblasltExtOpLibrary_gfx11-generic.dat', 'lib/hipblaslt/library/x_gfx12-generic.co',
      '.kpack/blas_lib_gfx1151.kpack', '.kpack/blas_lib_gfx1100.kpack', '.kpack/blas_lib_gfx1201.kpack',
      'lib/llvm/amdgcn/bitcode/ocml.bc', 'lib/llvm/bin/clang', 'share/libdrm/amdgpu.ids',
      'include/hip/hip_runtime.h', 'lib/libhipblas_static.a', 'clients/bin/rocblas-bench', 'share/doc/rocblas/LICENSE.md',
    ];
    for (const f of files) {
      mkdirSync(join(root, f, '..'), { recursive: true });
      writeFileSync(join(root, f), f);
    }
    symlinkSync('lib/llvm', join(root, 'llvm'));
    symlinkSync('lib/llvm/amdgcn', join(root, 'amdgcn'));
    const walk = (dir: string): string[] =>
      readdirSync(dir).flatMap((n) => {
        const p = join(dir, n);
        return lstatSync(p).isDirectory() ? walk(p) : [p];
      });
    paths = walk(root).sort();
  });
  const loaded = () => ['libamdhip64.so.7', 'librocblas.so.5', 'libhipblaslt.so.1'].map((l) => join(root, 'lib', l));
  const rel = (ps: string[]) => ps.map((p) => p.slice(root.length + 1)).sort();

  it('gfx1151 keeps its kernels, kpack, bitcode, comgr, amdgpu.ids and the links; drops the rest', () => {
    const plan = applyTargetRules(paths, gfx1151, loaded());
    expect(rel(plan.kept)).toEqual([
      '.kpack/blas_lib_gfx1151.kpack', 'amdgcn', 'lib/hipblaslt/library/TensileLibrary_gfx1151.dat', 'lib/hipblaslt/library/extop_gfx1151.co',
      'lib/hipblaslt/library/hipblasltExtOpLibrary_gfx11-generic.dat', 'lib/libamd_comgr.so.3', 'lib/llvm/amdgcn/bitcode/ocml.bc',
      'lib/rocblas/library/Kernels.so-000-gfx1151.hsaco', 'lib/rocblas/library/TensileLibrary_Type_HH_Contraction_gfx1151.co',
      'lib/rocblas/library/TensileLibrary_lazy_gfx1151.dat', 'lib/rocblas/library/gfx1151/TensileLibrary_x.co', 'llvm', 'share/libdrm/amdgpu.ids',
    ]);
    expect(rel(plan.dropped)).toEqual([
      '.kpack/blas_lib_gfx1100.kpack', '.kpack/blas_lib_gfx1201.kpack', 'clients/bin/rocblas-bench', 'include/hip/hip_runtime.h',
      'lib/hipblaslt/library/extop_gfx1100.co', 'lib/hipblaslt/library/x_gfx12-generic.co', 'lib/libhipblas_static.a',
      'lib/rocblas/library/Kernels.so-000-gfx1100.hsaco', 'lib/rocblas/library/Kernels.so-000-gfx1150.hsaco',
      'lib/rocblas/library/TensileLibrary_lazy_gfx1100.dat', 'lib/rocblas/library/gfx942/TensileLibrary_x.co', 'share/doc/rocblas/LICENSE.md',
    ]);
    expect(plan.hostProvided).toEqual([]);
  });

  it('gfx1100 on the same tree keeps gfx1100 and drops gfx1151', () => {
    const plan = applyTargetRules(paths, gfx1100, loaded());
    const kept = rel(plan.kept);
    expect(kept.filter((p) => /gfx\d/.test(p)).every((p) => p.includes('gfx1100') || p.includes('gfx11-generic'))).toBe(true);
    expect(kept).toContain('lib/rocblas/library/Kernels.so-000-gfx1100.hsaco');
    expect(rel(plan.dropped)).toContain('lib/rocblas/library/Kernels.so-000-gfx1151.hsaco');
    expect(rel(plan.dropped)).toContain('.kpack/blas_lib_gfx1151.kpack');
  });

  it("cuda never bundles the host driver's libraries", () => {
    const plan = applyTargetRules(['/usr/lib/x86_64-linux-gnu/libcuda.so.1', '/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550', '/usr/local/cuda/lib64/libcublas.so.12', '/usr/local/cuda/include/cuda.h'], cuda, []);
    expect(plan.hostProvided).toEqual(['/usr/lib/x86_64-linux-gnu/libcuda.so.1', '/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550']);
    expect(plan.dropped).toEqual(['/usr/local/cuda/include/cuda.h']);
    expect(plan.untouched).toEqual(['/usr/local/cuda/lib64/libcublas.so.12']);
  });
});
