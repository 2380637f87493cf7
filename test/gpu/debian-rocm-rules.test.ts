/**
 * The AMD targets' rules on Debian's ROCm layout, in a base root of its own
 * (libraries in /usr/lib/x86_64-linux-gnu, rocBLAS kernels under
 * rocblas/<version>/library/, the device bitcode in clang's resource dir),
 * and on TheRock's tree mounted at /opt/rocm on top of such a root: the
 * closure the pipeline computes keeps exactly the target arch's kernel
 * files plus the arch-neutral ones, comgr and the bitcode, and drops every
 * other arch. The file names are Debian's; the contents are filler.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import gfx1100 from '../../plugins/gfx1100.js';
import gfx1151 from '../../plugins/gfx1151.js';
import { computeClosure } from '../../src/runtime/closure.js';
import { pipelineCategory } from '../../src/pipeline/full-runtime.js';

const LIB = 'usr/lib/x86_64-linux-gnu';
const KDIR = `${LIB}/rocblas/4.4.1/library`;
const ARCHES = ['gfx803', 'gfx900', 'gfx906', 'gfx908', 'gfx90a', 'gfx1010', 'gfx1030', 'gfx1100', 'gfx1101', 'gfx1102'];
const temps: string[] = [];
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

function debianRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'rocmflow-debian-rocm-'));
  temps.push(root);
  const file = (rel: string, bytes = 64) => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), Buffer.alloc(bytes, 1));
  };
  for (const l of ['libamdhip64.so.6.4.43484', 'librocblas.so.4.4', 'libhipblas.so.2.4', 'libamd_comgr.so.3.0', 'libhsa-runtime64.so.1.15', 'libc.so.6']) file(`${LIB}/${l}`, 256);
  symlinkSync('libamdhip64.so.6.4.43484', join(root, LIB, 'libamdhip64.so.6'));
  symlinkSync('librocblas.so.4.4', join(root, LIB, 'librocblas.so.4'));
  symlinkSync('libamd_comgr.so.3.0', join(root, LIB, 'libamd_comgr.so.3'));
  for (const a of ARCHES) {
    file(`${KDIR}/Kernels.so-000-${a}.hsaco`);
    file(`${KDIR}/TensileLibrary_lazy_${a}.dat`);
    file(`${KDIR}/TensileLibrary_Type_HH_Contraction_l_Ailk_Bljk_Cijk_Dijk_${a}.co`);
  }
  // arch-neutral fallback tables rocBLAS also reads
  for (const t of ['HH', 'SS', 'DD']) file(`${KDIR}/TensileLibrary_Type_${t}_Contraction_l_Ailk_Bljk_Cijk_Dijk_fallback.dat`);
  for (const b of ['ockl.bc', 'ocml.bc', 'oclc_isa_version_1100.bc']) file(`usr/lib/llvm-21/lib/clang/21/amdgcn/bitcode/${b}`);
  file('usr/share/libdrm/amdgpu.ids');
  file('usr/include/rocblas/rocblas.h');
  file('usr/bin/llama-server');
  return root;
}

const access = (paths: string[]) => ({ files: paths.map((path) => ({ path, resolved: path })), executables: [], missing: [], devices: [] });

describe("Debian's ROCm in a base root", () => {
  it('gfx1100: exactly its rocBLAS kernel files and the arch-neutral ones, comgr, bitcode, amdgpu.ids; no other arch', async () => {
    const root = debianRoot();
    const c = await computeClosure({
      layout: { base: root, layers: [] },
      access: access([`/${LIB}/libamdhip64.so.6`, `/${LIB}/librocblas.so.4`]),
      keep: gfx1100.keep, drop: gfx1100.drop, hostProvided: gfx1100.hostProvided,
    });
    const files = c.entries.filter((e) => e.type === 'file').map((e) => e.path);
    const kernels = files.filter((p) => p.startsWith(`/${KDIR}/`));
    expect(kernels.filter((p) => p.includes('gfx1100'))).toHaveLength(3);
    expect(kernels.filter((p) => p.includes('fallback'))).toHaveLength(3);
    expect(kernels).toHaveLength(6);
    for (const a of ARCHES.filter((x) => x !== 'gfx1100')) expect(files.some((p) => p.includes(a)), a).toBe(false);
    expect(files).toContain(`/${LIB}/libamd_comgr.so.3.0`);
    expect(files).toContain('/usr/lib/llvm-21/lib/clang/21/amdgcn/bitcode/ockl.bc');
    expect(files).toContain('/usr/share/libdrm/amdgpu.ids');
    expect(files.some((p) => p.startsWith('/usr/include/'))).toBe(false);
    // the categories of the report see Debian's layout
    expect(pipelineCategory(`/${KDIR}/Kernels.so-000-gfx1100.hsaco`)).toBe('GPU kernels (gfx1100)');
    expect(pipelineCategory(`/${KDIR}/TensileLibrary_Type_HH_Contraction_l_Ailk_Bljk_Cijk_Dijk_fallback.dat`)).toBe('GPU kernels (any arch)');
    expect(pipelineCategory(`/${LIB}/librocblas.so.4.4`)).toBe('GPU runtime');
    expect(pipelineCategory(`/${LIB}/libLLVM.so.21.1`)).toBe('LLVM (comgr, compilers)');
    expect(pipelineCategory(`/${LIB}/libc.so.6`)).toBe('system');
  });

  it('gfx1151: no kernel file of any Debian arch (it has none for gfx1151), only the arch-neutral ones', async () => {
    const root = debianRoot();
    const c = await computeClosure({
      layout: { base: root, layers: [] },
      access: access([`/${LIB}/libamdhip64.so.6`, `/${LIB}/librocblas.so.4`]),
      keep: gfx1151.keep, drop: gfx1151.drop, hostProvided: gfx1151.hostProvided,
    });
    const kernels = c.entries.filter((e) => e.type === 'file' && e.path.startsWith(`/${KDIR}/`)).map((e) => e.path);
    expect(kernels).toHaveLength(3);
    expect(kernels.every((p) => p.includes('fallback'))).toBe(true);
  });

  it("TheRock at /opt/rocm on top of a base root: the layer's gfx1151 files are kept, the root's are not walked into the layer", async () => {
    const root = debianRoot();
    const tree = mkdtempSync(join(tmpdir(), 'rocmflow-therock-layer-'));
    temps.push(tree);
    for (const rel of ['lib/libamdhip64.so.7', 'lib/libamd_comgr.so.3', 'lib/llvm/amdgcn/bitcode/ockl.bc', 'lib/rocblas/library/Kernels.so-000-gfx1151.hsaco', 'lib/rocblas/library/Kernels.so-000-gfx1100.hsaco', 'lib/librocblas.so.5']) {
      mkdirSync(join(tree, rel, '..'), { recursive: true });
      writeFileSync(join(tree, rel), 'x');
    }
    const c = await computeClosure({
      layout: { base: root, layers: [{ mount: '/opt/rocm', source: tree }] },
      access: access(['/opt/rocm/lib/libamdhip64.so.7', '/opt/rocm/lib/librocblas.so.5']),
      keep: gfx1151.keep, drop: gfx1151.drop, hostProvided: gfx1151.hostProvided,
    });
    const files = c.entries.filter((e) => e.type === 'file').map((e) => e.path);
    expect(files).toContain('/opt/rocm/lib/rocblas/library/Kernels.so-000-gfx1151.hsaco');
    expect(files).not.toContain('/opt/rocm/lib/rocblas/library/Kernels.so-000-gfx1100.hsaco');
    expect(files).toContain('/opt/rocm/lib/llvm/amdgcn/bitcode/ockl.bc');
    // the base root's own ROCm files match the rules too (its comgr, bitcode): both layouts are searched
    expect(files).toContain('/opt/rocm/lib/libamd_comgr.so.3');
  });
});
