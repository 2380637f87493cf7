/**
 * A small tree in TheRock's tarball layout, with a real ELF shared object,
 * and real tarballs of it made by the system's tar (gz, zst, xz; with or
 * without a top-level directory).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, utimesSync, writeFileSync, linkSync } from 'node:fs';
import { join } from 'node:path';

export const MTIME = 1_745_000_000;

export function makeTheRockTree(root: string, opts: { version?: string; commit?: string } = {}): void {
  const p = (rel: string) => join(root, rel);
  for (const d of ['lib/llvm/bin', 'lib/llvm/amdgcn/bitcode', 'lib/rocblas/library', 'share/therock', 'bin', '.kpack']) mkdirSync(p(d), { recursive: true });
  writeFileSync(p('hip.c'), 'int hipGetDeviceCount(int *n) { *n = 0; return 0; }\n');
  execFileSync('cc', ['-shared', '-fPIC', '-o', p('lib/libamdhip64.so.7'), p('hip.c')]);
  execFileSync('rm', [p('hip.c')]);
  symlinkSync('libamdhip64.so.7', p('lib/libamdhip64.so'));
  writeFileSync(p('lib/llvm/bin/clang'), '#!/bin/sh\necho "AMD clang version 20.0.0"\n', { mode: 0o755 });
  writeFileSync(p('lib/llvm/amdgcn/bitcode/ocml.bc'), Buffer.from([0x42, 0x43, 0xc0, 0xde]));
  writeFileSync(p('lib/rocblas/library/TensileLibrary_lazy_gfx1151.dat'), 'tensile gfx1151\n');
  writeFileSync(p('lib/rocblas/library/Kernels.so-000-gfx1151.hsaco'), 'hsaco gfx1151\n');
  linkSync(p('lib/rocblas/library/Kernels.so-000-gfx1151.hsaco'), p('lib/rocblas/library/Kernels.so-000-gfx1151.hardlink.hsaco'));
  writeFileSync(p('.kpack/blas_lib_gfx1151.kpack'), 'kpack\n');
  writeFileSync(p('bin/rocminfo'), '#!/bin/sh\necho gfx1151\n', { mode: 0o750 });
  symlinkSync('lib/llvm', p('llvm'));
  symlinkSync('lib/llvm/amdgcn', p('amdgcn'));
  writeFileSync(
    p('share/therock/therock_manifest.json'),
    JSON.stringify({ schema_version: 'TheRock-Manifest.v1', TheRock: { commit: opts.commit ?? 'abc123def456' }, Environment: { rocm_version: opts.version ?? '7.13.0a20260430' }, submodules: [{ path: 'x', commit: 'zzz' }] }),
  );
  execFileSync('find', [root, '-exec', 'touch', '-h', '-d', `@${MTIME}`, '{}', '+']);
  utimesSync(root, MTIME, MTIME);
}

/** Tar `root` (its contents, or the directory itself when `topDir`) into `out` with `compression`. */
export function tarTree(root: string, out: string, opts: { compression: 'gz' | 'zst' | 'xz' | 'none'; topDir?: string }): string {
  const flag = { gz: ['-z'], zst: ['--zstd'], xz: ['-J'], none: [] }[opts.compression];
  const args = opts.topDir
    ? ['-C', join(root, '..'), '--transform', `s,^${root.split('/').pop()},${opts.topDir},`, '-cf', out, ...flag, root.split('/').pop()!]
    : ['-C', root, '-cf', out, ...flag, '.'];
  execFileSync('tar', args);
  return out;
}
