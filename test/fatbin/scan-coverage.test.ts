/**
 * The coverage check on synthetic runtimes in Debian's layout
 * (/usr/lib/x86_64-linux-gnu, rocblas/<ver>/library) and TheRock's (/opt/rocm
 * with lib/rocblas/library, lib/hipblaslt/library/<arch>/, .kpack/), made of
 * the real fat-binary fixtures and rocBLAS's real kernel-file names.
 */
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync, linkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archesInName, scanCoverage, type CoverageFinding } from '../../src/fatbin/scan-coverage.js';
import { pruneFile } from '../../src/fatbin/prune-file.js';
import { coverageFacts, coverageRoots, judgeCoverage } from '../../src/pipeline/coverage.js';
import { isRocmflowError } from '../../src/errors.js';
import { cleanTemps, fixture, temp } from './helpers.js';

const LIB = 'usr/lib/x86_64-linux-gnu';
/** rocBLAS's kernel-file names, per arch: the lazy-loading index, the per-shape code objects and the fallback kernels. */
const rocblasFiles = (arch: string) => [
  `TensileLibrary_lazy_${arch}.dat`,
  `Kernels.so-000-${arch}.hsaco`,
  `TensileLibrary_Type_HH_Contraction_l_Ailk_Bljk_Cijk_Dijk_${arch}.co`,
  `TensileLibrary_Type_HH_Contraction_l_Ailk_Bljk_Cijk_Dijk_fallback_${arch}.hsaco`,
];
/** The arch-neutral fallback indexes rocBLAS reads for every arch. */
const NEUTRAL = ['TensileLibrary_Type_HH_Contraction_l_Ailk_Bljk_Cijk_Dijk_fallback.dat', 'TensileLibrary_Type_SS_Contraction_l_Alik_Bljk_Cijk_Dijk_fallback.dat'];

function put(root: string, rel: string, text = rel): void {
  mkdirSync(join(root, rel, '..'), { recursive: true });
  writeFileSync(join(root, rel), text);
}

let debian: string;
let therock: string;

beforeAll(async () => {
  // Debian sid's ROCm: rocBLAS with code for gfx1100 (and others) but not gfx1151, kernel files likewise
  debian = temp();
  mkdirSync(join(debian, LIB), { recursive: true });
  await pruneFile(fixture('libtiny-hip.so'), join(debian, LIB, 'librocblas.so.4.4'), { keep: ['gfx1100'] });
  symlinkSync('librocblas.so.4.4', join(debian, LIB, 'librocblas.so.4'));
  mkdirSync(join(debian, LIB, 'ggml/backends0'), { recursive: true });
  copyFileSync(fixture('libtiny-hip-ccob3.so'), join(debian, LIB, 'ggml/backends0/libggml-hip.so'));
  // a library without device code is not a finding
  copyFileSync('/bin/true', join(debian, LIB, 'libhipblas.so.2'));
  for (const arch of ['gfx906', 'gfx90a-xnack+', 'gfx1100']) for (const f of rocblasFiles(arch)) put(debian, `${LIB}/rocblas/4.4.0/library/${f}`);
  for (const f of NEUTRAL) put(debian, `${LIB}/rocblas/4.4.0/library/${f}`);
  put(debian, 'usr/share/doc/librocblas4/copyright');
  // merged /usr: lib is a link to usr/lib, walked once
  symlinkSync('usr/lib', join(debian, 'lib'));
  // a hard link of librocblas counts once
  linkSync(join(debian, LIB, 'librocblas.so.4.4'), join(debian, LIB, 'librocblas-copy.so.4.4'));

  // TheRock's gfx1151 tarball: one arch, kpack packs, hipBLASLt per-arch directories, a generic-ISA file
  therock = temp();
  for (const f of rocblasFiles('gfx1151')) put(therock, `lib/rocblas/library/${f}`);
  put(therock, 'lib/hipblaslt/library/gfx1151/TensileLibrary_gfx1151.co');
  put(therock, 'lib/hipblaslt/library/extop_gfx1151.co');
  put(therock, '.kpack/blas_lib_gfx1151.kpack');
  put(therock, 'lib/rocblas/library/TensileLibrary_lazy_gfx11-generic.dat');
  copyFileSync(fixture('libtiny-hip-ccob2.so'), join(therock, 'lib/libggml-hip.so'));
});

afterAll(cleanTemps);

const byLib = (fs: CoverageFinding[], lib: string) => fs.filter((f) => f.library === lib || f.library.endsWith(`/${lib}`));

describe('arches in kernel-file names', () => {
  it('reads processors, generic ISAs and feature variants, and nothing from arch-neutral names', () => {
    expect(archesInName('Kernels.so-000-gfx1100.hsaco')).toEqual(['gfx1100']);
    expect(archesInName('TensileLibrary_lazy_gfx90a-xnack+.dat')).toEqual(['gfx90a:xnack+']);
    expect(archesInName('Kernels.so-000-gfx90a-xnack-.hsaco')).toEqual(['gfx90a:xnack-']);
    expect(archesInName('x_gfx90a:sramecc+:xnack-.co')).toEqual(['gfx90a:sramecc+:xnack-']);
    expect(archesInName('TensileLibrary_lazy_gfx11-generic.dat')).toEqual(['gfx11-generic']);
    expect(archesInName('gfx942/TensileLibrary_x.co')).toEqual(['gfx942']);
    expect(archesInName('blas_lib_gfx1151.kpack')).toEqual(['gfx1151']);
    expect(archesInName(NEUTRAL[0]!)).toEqual([]);
  });
});

describe('a Debian-layout ROCm (base root)', () => {
  it('finds no gfx1151 code in rocBLAS, names what it has, and finds gfx1151 in the HIP build', async () => {
    const roots = coverageRoots(null, debian);
    expect(roots).toEqual([{ dir: debian, as: '/', only: ['usr/lib'] }]);
    const fs = await scanCoverage(roots, 'gfx1151');
    // the kernel directory, librocblas (one of its two hard links), libggml-hip; libhipblas has no device code
    expect(fs.map((f) => [f.library, f.directory, f.missing])).toEqual([
      [`/${LIB}/ggml/backends0/libggml-hip.so`, null, false],
      [expect.stringMatching(/^\/usr\/lib\/x86_64-linux-gnu\/librocblas(-copy)?\.so\.4\.4$/), null, true],
      ['rocblas', `/${LIB}/rocblas/4.4.0/library`, true],
    ]);
    const [kernels] = byLib(fs, 'rocblas');
    expect(kernels).toMatchObject({ kind: 'kernels', arches: ['gfx906', 'gfx90a:xnack+', 'gfx1100'], files: 14, neutralFiles: 2, coveredBy: [] });
    const lib = fs.find((f) => f.library.includes('librocblas'))!;
    expect(lib).toMatchObject({ kind: 'fatbin', format: 'hip', arches: ['gfx1100'], missing: true });
    expect(byLib(fs, 'libggml-hip.so')[0]).toMatchObject({ arches: ['gfx1100', 'gfx1151'], coveredBy: ['gfx1151'], how: 'exact' });
  });

  it('covers gfx1100 everywhere', async () => {
    const fs = await scanCoverage(coverageRoots(null, debian), 'gfx1100');
    expect(fs.length).toBe(3);
    expect(fs.filter((f) => f.missing)).toEqual([]);
  });

  it('gfx90a without xnack named is covered by the xnack+ files; a gfx1030 by nothing', async () => {
    const fs = await scanCoverage(coverageRoots(null, debian), 'gfx90a');
    expect(byLib(fs, 'rocblas')[0]!.coveredBy).toEqual(['gfx90a:xnack+']);
    const none = await scanCoverage(coverageRoots(null, debian), 'gfx1030');
    expect(none.every((f) => f.missing)).toBe(true);
  });
});

describe("TheRock's layout (/opt/rocm)", () => {
  it('judges rocBLAS, hipBLASLt (per-arch subdirectories) and the .kpack directory', async () => {
    const fs = await scanCoverage(coverageRoots(therock, null), 'gfx1151');
    expect(fs.map((f) => [f.library, f.directory, f.arches, f.missing])).toEqual([
      ['/opt/rocm/lib/libggml-hip.so', null, ['gfx1100', 'gfx1151'], false],
      ['hipblaslt', '/opt/rocm/lib/hipblaslt/library', ['gfx1151'], false],
      ['kpack', '/opt/rocm/.kpack', ['gfx1151'], false],
      ['rocblas', '/opt/rocm/lib/rocblas/library', ['gfx1151', 'gfx11-generic'], false],
    ]);
  });

  it('a generic ISA covers another processor of its line, and says so', async () => {
    const fs = await scanCoverage(coverageRoots(therock, null), 'gfx1101');
    const rocblas = byLib(fs, 'rocblas')[0]!;
    expect(rocblas).toMatchObject({ missing: false, coveredBy: ['gfx11-generic'], how: 'generic' });
    expect(byLib(fs, 'hipblaslt')[0]!.missing).toBe(true);
  });
});

describe('CUDA libraries', () => {
  it('sm_90 code covers 9.0; PTX covers later capabilities; nothing covers 7.0', async () => {
    const root = temp();
    mkdirSync(join(root, 'lib64'));
    copyFileSync(fixture('libtiny-cuda.so'), join(root, 'lib64/libtiny-cuda.so'));
    copyFileSync(fixture('libtiny-cuda-variants.so'), join(root, 'lib64/libtiny-cuda-variants.so.1'));
    const at = async (t: string) => Object.fromEntries((await scanCoverage(coverageRoots(root, null), t)).map((f) => [f.library.split('/').pop(), f.missing ? null : f.coveredBy]));
    expect(await at('9.0')).toEqual({ 'libtiny-cuda.so': ['sm_90', 'compute_90'], 'libtiny-cuda-variants.so.1': ['sm_90a', 'compute_75'] });
    expect(await at('12.0')).toEqual({ 'libtiny-cuda.so': ['compute_90'], 'libtiny-cuda-variants.so.1': ['compute_75'] });
    expect(await at('7.0')).toEqual({ 'libtiny-cuda.so': null, 'libtiny-cuda-variants.so.1': null });
  });
});

describe('what a miss does', () => {
  it('warns by default, naming the library, the directory and the arches it has; fails under strict', async () => {
    const fs = await scanCoverage(coverageRoots(null, debian), 'gfx1151');
    const warned: string[] = [];
    const lines = judgeCoverage(fs, 'gfx1151', { strict: false, where: 'before the build', task: 'gpu-coverage', warn: (m) => warned.push(m) });
    expect(warned).toEqual([
      expect.stringMatching(/librocblas.*no gfx1151 code in its fat binary \(it has gfx1100\)$/),
      `rocblas: kernel directory /${LIB}/rocblas/4.4.0/library has no files for gfx1151 (it has gfx906, gfx90a:xnack+, gfx1100, and 2 arch-neutral files)`,
    ]);
    expect(lines[0]).toMatch(/^coverage before the build: 2 of 3 /);
    let err: unknown;
    try {
      judgeCoverage(fs, 'gfx1151', { strict: true, where: 'before the build', task: 'gpu-coverage', warn: () => {} });
    } catch (e) {
      err = e;
    }
    expect(isRocmflowError(err) && err.code).toBe('E_COVERAGE');
    expect((err as { details: string[] }).details).toEqual(warned);
    expect(coverageFacts(fs).map((f: any) => [f.library.split('/').pop(), f.missing])).toEqual([['libggml-hip.so', false], [expect.stringMatching(/^librocblas/), true], ['rocblas', true]]);
  });

  it('gfx1100: one line, nothing missing', async () => {
    const fs = await scanCoverage(coverageRoots(null, debian), 'gfx1100');
    expect(judgeCoverage(fs, 'gfx1100', { strict: true, where: 'before the build', task: 'gpu-coverage', warn: () => {} })).toEqual([
      'coverage before the build: gfx1100 covered by all 3 kernel directories and fat binaries of 3 libraries',
    ]);
  });
});
