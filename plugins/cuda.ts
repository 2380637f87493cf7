/**
 * NVIDIA GPUs through CUDA. Detection asks nvidia-smi; the compute
 * capability comes from it or from `targets.cuda.computeCapability`. The
 * driver's user-space libraries (libcuda, libnvidia-*) belong to the host's
 * driver version: they are mounted from the host at run time, never bundled.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineTarget, s, type TargetContext } from '../src/plugin/index.js';
import { cudaArchFromComputeCapability, queryNvidia } from '../src/gpu/nvidia.js';
import { fatbinTargetOptionsShape, type FatbinTargetOptions } from '../src/pipeline/coverage.js';

/**
 * Options under `targets.cuda`. `pruneFatBinaries` (FatbinTargetOptions) is
 * off by default: NVIDIA's licence governs redistributing its libraries, and
 * a pruned cuBLAS is a modified one; turn it on only where those terms allow.
 */
export interface CudaTargetOptions extends FatbinTargetOptions {
  /** e.g. "8.9"; overrides what nvidia-smi reports (needed to build without the GPU). */
  computeCapability?: string;
  /** The CUDA toolkit. @default "/usr/local/cuda" */
  cudaPath?: string;
  /** Use this CUDA device index instead of the first GPU. */
  device?: number;
}

const computeCapabilitySchema: s.Schema<string> = {
  describe: 'a compute capability such as "8.9"',
  parse: (v, p) => {
    if (typeof v !== 'string' || !/^\d+\.\d+$/.test(v)) throw new s.SchemaError(p, 'expected a compute capability such as "8.9"');
    return v;
  },
};

const optionsSchema: s.Schema<CudaTargetOptions> = s.object({
  computeCapability: s.optional(computeCapabilitySchema),
  cudaPath: s.optional(s.string()),
  device: s.optional(s.number({ integer: true, min: 0 })),
  ...fatbinTargetOptionsShape,
});

function computeCapability(ctx: TargetContext<CudaTargetOptions>): string | undefined {
  const opts = ctx.options;
  if (opts.computeCapability) return opts.computeCapability;
  const cc = ctx.detection?.facts?.computeCapability;
  return typeof cc === 'string' ? cc : undefined;
}

/**
 * Library directories the loader may not know: container images often mount
 * the driver at /usr/local/nvidia and leave the toolkit's lib64 out of
 * ld.so.cache. The workload runs with a clean environment, so say them.
 */
function libraryDirs(cudaPath: string | null): string[] {
  const listed = (() => {
    try {
      return readFileSync('/etc/ld.so.cache').toString('latin1');
    } catch {
      return '';
    }
  })();
  const dirs: string[] = [];
  const toolkit = cudaPath ? [`${cudaPath}/lib64`, `${cudaPath}/targets/x86_64-linux/lib`] : [];
  for (const d of ['/usr/local/nvidia/lib64', '/usr/local/nvidia/lib', ...toolkit]) {
    const marker = existsSync(join(d, 'libcuda.so.1')) ? 'libcuda.so.1' : existsSync(join(d, 'libcudart.so')) || readdirSafe(d).some((f) => f.startsWith('libcublas.so')) ? 'cuda' : null;
    if (marker && !listed.includes(`${d}/`)) dirs.push(d);
  }
  return dirs;
}

function readdirSafe(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}

export default defineTarget<CudaTargetOptions>({
  name: 'cuda',
  family: 'cuda',
  description: 'NVIDIA GPU with the CUDA toolkit (compute capability from nvidia-smi or config)',
  options: optionsSchema,
  runtime: { kind: 'dir', path: '/usr/local/cuda' },
  async detect(ctx) {
    const opts = ctx.options;
    const q = await queryNvidia({ env: ctx.env });
    if (!q.available) return { found: false, description: q.reason ?? 'nvidia-smi not available' };
    if (q.gpus.length === 0) return { found: false, description: 'nvidia-smi lists no GPU' };
    const gpu = opts.device !== undefined ? q.gpus.find((g) => g.index === opts.device) : q.gpus[0];
    if (!gpu) return { found: false, description: `targets.cuda.device ${opts.device} not found (nvidia-smi lists ${q.gpus.length} GPU(s))` };
    return {
      found: true,
      description: `${gpu.name} (compute ${gpu.computeCapability ?? 'unknown'}) at CUDA device ${gpu.index} of ${q.gpus.length}`,
      deviceIndex: gpu.index,
      facts: {
        name: gpu.name,
        computeCapability: gpu.computeCapability,
        memoryTotalBytes: gpu.memoryTotalBytes,
        gpuCount: q.gpus.length,
      },
    };
  },
  cmakeFlags(ctx) {
    const opts = ctx.options;
    const flags = ['-DGGML_CUDA=ON', '-DCMAKE_BUILD_TYPE=Release'];
    const cc = computeCapability(ctx);
    // without a known capability llama.cpp builds its default list of architectures
    if (cc) flags.push(`-DCMAKE_CUDA_ARCHITECTURES=${cudaArchFromComputeCapability(cc)}`);
    const count = ctx.detection?.facts?.gpuCount;
    // NCCL (181 MB) only serves multi-GPU splits; we pin one device
    if (typeof count !== 'number' || count <= 1) flags.push('-DGGML_CUDA_NCCL=OFF');
    const root = ctx.runtimeRoot ?? opts.cudaPath;
    if (root) flags.push(`-DCUDAToolkit_ROOT=${root}`, `-DCMAKE_CUDA_COMPILER=${root}/bin/nvcc`);
    return flags;
  },
  env(ctx) {
    const opts = ctx.options;
    const index = opts.device ?? (ctx.detection?.found ? ctx.detection.deviceIndex : undefined);
    // PCI bus order matches nvidia-smi's numbering; CUDA's default (fastest first) may not
    const env: Record<string, string> = {};
    if (index !== undefined) Object.assign(env, { CUDA_DEVICE_ORDER: 'PCI_BUS_ID', CUDA_VISIBLE_DEVICES: String(index) });
    // in the traced runtime the toolkit is mounted at runtimeRoot: its libraries must come from there
    const dirs = ctx.runtimeRoot
      ? [...libraryDirs(null), `${ctx.runtimeRoot}/lib64`, `${ctx.runtimeRoot}/targets/x86_64-linux/lib`]
      : libraryDirs(opts.cudaPath ?? '/usr/local/cuda');
    if (dirs.length) env.LD_LIBRARY_PATH = dirs.join(':');
    return env;
  },
  devices: ['/dev/nvidia[0-9]*', '/dev/nvidiactl', '/dev/nvidia-uvm*', '/dev/nvidia-modeset'],
  keep: [],
  drop: ['**/include/**', '**/*.a', '**/share/doc/**', '**/share/man/**', '**/doc/**'],
  hostProvided: ['libcuda.so*', 'libnvidia-*', 'libnvcuvid*', 'libnvoptix*'],
  tools: {
    'nvidia-smi': 'install the NVIDIA driver (apt install nvidia-driver)',
    strace: 'apt install strace',
    bwrap: 'apt install bubblewrap',
    cmake: 'apt install cmake',
    git: 'apt install git',
  },
});
