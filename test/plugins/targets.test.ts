import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import cpu from '../../plugins/cpu.js';
import cuda from '../../plugins/cuda.js';
import gfx1100 from '../../plugins/gfx1100.js';
import gfx1151 from '../../plugins/gfx1151.js';
import { amdDropRules, otherArches } from '../../src/gpu/amd-target.js';
import { parseNvidiaSmi } from '../../src/gpu/nvidia.js';
import { loadRegistry, validateTarget } from '../../src/plugin/load.js';
import { orderedTargets } from '../../src/plugin/select-target.js';
import { matchGlob } from '../../src/util/glob.js';
import type { DetectContext } from '../../src/plugin/types.js';
import { emptyPath, fakeNvidiaSmi } from './fake-tools.js';


describe('built-in targets', () => {
  it('are well-formed for the plugin loader, and listed AMD, NVIDIA, CPU', async () => {
    for (const t of [gfx1151, gfx1100, cuda, cpu]) validateTarget(t, 'builtin');
    const registry = await loadRegistry({ plugins: [], configDir: tmpdir() });
    expect(orderedTargets(registry).map((t) => t.name)).toEqual(['gfx1100', 'gfx1151', 'cuda', 'cpu']);
    expect(gfx1151.runtime).toEqual({ kind: 'therock', family: 'gfx1151' });
    expect(gfx1100.runtime).toEqual({ kind: 'therock', family: 'gfx110X-all' });
    expect(cuda.runtime).toEqual({ kind: 'dir', path: '/usr/local/cuda' });
    expect(cpu.runtime).toEqual({ kind: 'none' });
  });
});

describe('AMD cmake flags and env', () => {
  it('gfx1151: HIP for its arch, options and the compiler from the fetched ROCm', () => {
    const rocm = mkdtempSync(join(tmpdir(), 'rocmflow-rocm-'));
    mkdirSync(join(rocm, 'lib/llvm/bin'), { recursive: true });
    writeFileSync(join(rocm, 'lib/llvm/bin/clang'), '');
    expect(gfx1151.cmakeFlags({ detection: null, options: {} })).toEqual(['-DGGML_HIP=ON', '-DAMDGPU_TARGETS=gfx1151', '-DGPU_TARGETS=gfx1151', '-DCMAKE_BUILD_TYPE=Release']);
    expect(gfx1151.cmakeFlags({ detection: null, options: { rocwmmaFlashAttention: true, uma: true }, runtimeRoot: rocm })).toEqual([
      '-DGGML_HIP=ON', '-DAMDGPU_TARGETS=gfx1151', '-DGPU_TARGETS=gfx1151', '-DCMAKE_BUILD_TYPE=Release',
      '-DGGML_HIP_ROCWMMA_FATTN=ON', '-DGGML_HIP_UMA=ON', `-DCMAKE_HIP_COMPILER=${rocm}/lib/llvm/bin/clang`, `-DCMAKE_PREFIX_PATH=${rocm}`,
    ]);
    expect(gfx1151.env({ detection: null, options: { uma: true } })).toEqual({ GGML_CUDA_ENABLE_UNIFIED_MEMORY: '1' });
    expect(gfx1100.cmakeFlags({ detection: null, options: {} })).toContain('-DAMDGPU_TARGETS=gfx1100');
    expect(() => gfx1100.options!.parse({ hipCompiler: 'nvcc' }, 'targets.gfx1100')).toThrow('targets.gfx1100.hipCompiler: expected one of "clang", "hipcc"');
  });

  it('drop rules are generated from the arch list minus the target and its generic ISA', () => {
    expect(otherArches('gfx1151')).not.toContain('gfx1151');
    expect(otherArches('gfx1151')).not.toContain('gfx11-generic');
    expect(otherArches('gfx1151')).toContain('gfx1100');
    expect(otherArches('gfx1100')).toContain('gfx1151');
    // LLVM's gfx9-generic covers gfx900/902/904/906/909/90c, not gfx908 or gfx90a
    expect(otherArches('gfx906')).not.toContain('gfx9-generic');
    expect(otherArches('gfx908')).toContain('gfx9-generic');
    expect(otherArches('gfx90a')).toContain('gfx9-generic');
    const drop = amdDropRules('gfx1151');
    const dropped = (p: string) => drop.some((g) => matchGlob(p, g));
    expect(dropped('/opt/rocm/lib/rocblas/library/Kernels.so-000-gfx90a-xnack+.hsaco')).toBe(true);
    expect(dropped('/opt/rocm/lib/rocblas/library/Kernels.so-000-gfx1151.hsaco')).toBe(false);
    expect(dropped('/opt/rocm/lib/hipblaslt/library/gfx942/x.co')).toBe(true);
    expect(dropped('/opt/rocm/lib/librocblas.so.5')).toBe(false);
    expect(dropped('/opt/rocm/include/hip/hip_runtime.h')).toBe(true);
  });
});

describe('cuda', () => {
  const ctx = (path: string, options: Record<string, unknown> = {}): DetectContext => ({ root: '/', env: { PATH: path }, options });

  it('is not detected without nvidia-smi (this machine)', async () => {
    expect(await cuda.detect(ctx(emptyPath()))).toEqual({ found: false, description: 'nvidia-smi not found' });
  });

  it('parses nvidia-smi and derives the CUDA architecture and NCCL setting', async () => {
    const one = fakeNvidiaSmi('0, NVIDIA GeForce RTX 4090, 8.9, 24564, 1200\n');
    const d = await cuda.detect(ctx(one));
    expect(d).toMatchObject({ found: true, deviceIndex: 0, facts: { computeCapability: '8.9', gpuCount: 1, memoryTotalBytes: 24564 * 1024 * 1024 } });
    expect(d.description).toBe('NVIDIA GeForce RTX 4090 (compute 8.9) at CUDA device 0 of 1');
    expect(cuda.cmakeFlags({ detection: d, options: {} })).toEqual(['-DGGML_CUDA=ON', '-DCMAKE_BUILD_TYPE=Release', '-DCMAKE_CUDA_ARCHITECTURES=89', '-DGGML_CUDA_NCCL=OFF']);
    // LD_LIBRARY_PATH depends on which toolkit/driver directories this host has; the pinning does not
    expect(cuda.env({ detection: d, options: {} })).toMatchObject({ CUDA_DEVICE_ORDER: 'PCI_BUS_ID', CUDA_VISIBLE_DEVICES: '0' });
    // inside the traced layout the toolkit is mounted at runtimeRoot: its libraries come from there
    const inLayout = cuda.env({ detection: d, options: {}, runtimeRoot: '/opt/rocm' }).LD_LIBRARY_PATH!.split(':');
    expect(inLayout).toEqual(expect.arrayContaining(['/opt/rocm/lib64', '/opt/rocm/targets/x86_64-linux/lib']));
    expect(inLayout.some((p) => p.startsWith('/usr/local/cuda'))).toBe(false);

    const two = fakeNvidiaSmi('0, NVIDIA H100 80GB HBM3, 9.0, 81559, 0\n1, NVIDIA H100 80GB HBM3, 9.0, 81559, 0\n');
    const d2 = await cuda.detect(ctx(two, { device: 1 }));
    expect(d2.deviceIndex).toBe(1);
    expect(cuda.cmakeFlags({ detection: d2, options: {} })).not.toContain('-DGGML_CUDA_NCCL=OFF');
  });

  it('takes the compute capability and CUDA path from config, and validates them', () => {
    expect(cuda.cmakeFlags({ detection: null, options: { computeCapability: '9.0', cudaPath: '/opt/cuda-12' } })).toEqual([
      '-DGGML_CUDA=ON', '-DCMAKE_BUILD_TYPE=Release', '-DCMAKE_CUDA_ARCHITECTURES=90', '-DGGML_CUDA_NCCL=OFF', '-DCUDAToolkit_ROOT=/opt/cuda-12', '-DCMAKE_CUDA_COMPILER=/opt/cuda-12/bin/nvcc',
    ]);
    expect(() => cuda.options!.parse({ computeCapability: 90 }, 'targets.cuda')).toThrow('targets.cuda.computeCapability: expected a compute capability such as "8.9"');
  });

  it('parses names with commas and old drivers without compute_cap', () => {
    expect(parseNvidiaSmi('0, Tesla T4, rev, B, [N/A], 15360, 0\n')).toEqual([{ index: 0, name: 'Tesla T4, rev, B', computeCapability: null, memoryTotalBytes: 15360 * 1024 * 1024, memoryUsedBytes: 0 }]);
  });
});

describe('cpu', () => {
  it('is always detected; portable unless native', async () => {
    expect((await cpu.detect({ root: '/nonexistent', env: {}, options: {} })).found).toBe(true);
    expect(cpu.cmakeFlags({ detection: null, options: {} })).toEqual(['-DGGML_NATIVE=OFF']);
    expect(cpu.cmakeFlags({ detection: null, options: { native: true } })).toEqual(['-DGGML_NATIVE=ON']);
    expect(() => cpu.options!.parse({ native: 1 }, 'targets.cpu')).toThrow('targets.cpu.native: expected true or false');
    expect(cpu.devices).toEqual([]);
  });
});
