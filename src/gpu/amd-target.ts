/**
 * The shape every AMD (ROCm) target shares, so that a new arch is one small
 * file: `export default amdTarget({ name: 'gfx1201', arch: 'gfx1201', family:
 * 'gfx120X-all' })`. Detection reads the KFD topology; the chosen GPU's index
 * is pinned at run time; keep/drop rules are generated from the arch.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as s from '../util/schema.js';
import { RocmflowError } from '../errors.js';
import type { Detection, DetectContext, TargetContext, TargetDefinition } from '../plugin/types.js';
import { encodeGfxArch, readKfdGpus, type KfdNode } from './kfd.js';
import { GENERIC_ISAS, KNOWN_AMD_ARCHES } from './amd-arches.js';
import { fatbinTargetOptionsShape, type FatbinTargetOptions } from '../pipeline/coverage.js';

export { KNOWN_AMD_ARCHES } from './amd-arches.js';

/** Options under `targets.<name>` for an AMD target (and `pruneFatBinaries`, `pruneFallback`: see FatbinTargetOptions; pruning is on by default). */
export interface AmdTargetOptions extends FatbinTargetOptions {
  /**
   * Build llama.cpp's flash attention with rocWMMA (`-DGGML_HIP_ROCWMMA_FATTN=ON`).
   * Faster token generation on RDNA3/3.5 in trees that have it; one project
   * turned it off for slower prompt processing at long contexts.
   * @default false
   */
  rocwmmaFlashAttention?: boolean;
  /**
   * Allocate through unified (GTT) memory, for APUs whose carve-out VRAM is
   * small: `-DGGML_HIP_UMA=ON` for older trees, and
   * `GGML_CUDA_ENABLE_UNIFIED_MEMORY=1` at run time for current ones (the
   * build option was replaced by that variable).
   * @default false
   */
  uma?: boolean;
  /** Use this HIP device index instead of the detected one. */
  device?: number;
  /** HIP compiler: ROCm's clang (`<rocm>/lib/llvm/bin/clang`) or `hipcc`. @default "clang" */
  hipCompiler?: 'clang' | 'hipcc';
}

/** The schema of `targets.<name>` for an AMD target (what `amdTarget()` sets as `options`). */
export const amdTargetOptions: s.Schema<AmdTargetOptions> = s.object({
  rocwmmaFlashAttention: s.optional(s.boolean()),
  uma: s.optional(s.boolean()),
  device: s.optional(s.number({ integer: true, min: 0 })),
  hipCompiler: s.optional(s.literal('clang', 'hipcc')),
  ...fatbinTargetOptionsShape,
});

/** What distinguishes one AMD target from another. */
export interface AmdTargetSpec {
  /** Target name, usually the arch. */
  name: string;
  /** LLVM arch, e.g. `gfx1151`. */
  arch: string;
  /** TheRock tarball family, e.g. `gfx1151` or `gfx110X-all`. */
  family: string;
  description: string;
  /** KFD `gfx_target_version` to detect; derived from `arch` when omitted. */
  gfxVersion?: number;
  /**
   * Arches rocmflow does not know yet (not in `KNOWN_AMD_ARCHES`) whose
   * kernel files this target drops too, e.g. when the runtime ships kernels
   * for a newer GPU line. The target's own `arch` need not be known.
   */
  extraArches?: string[];
}

/**
 * The arch list (plus `extra`) minus the target and the generic ISA
 * covering it: the arches whose kernel files a target drops.
 */
export function otherArches(arch: string, extra: readonly string[] = []): string[] {
  const generics = Object.entries(GENERIC_ISAS).filter(([, re]) => !re.test(arch)).map(([g]) => g);
  const arches = [...new Set([...KNOWN_AMD_ARCHES, ...extra])];
  return [...arches.filter((a) => a !== arch), ...generics];
}

/** Drop rules: other arches' kernel files, headers, static libs, test clients, docs. */
export function amdDropRules(arch: string, extraArches: readonly string[] = []): string[] {
  const others = `{${otherArches(arch, extraArches).join(',')}}`;
  return [
    `**/library/*${others}*`,
    `**/library/${others}*/**`,
    `**/.kpack/*${others}*`,
    '**/include/**',
    '**/*.a',
    '**/clients/**',
    '**/share/doc/**',
    '**/share/man/**',
  ];
}

/** Keep rules: what rocBLAS/hipBLASLt/kpack load lazily, and what a real device needs but a trace without one never sees. */
export function amdKeepRules(arch: string) {
  return [
    // every file of the library dirs; the drop rules remove the other arches (kernels load per shape, on demand)
    { ifLoaded: '**/librocblas.so*', paths: ['**/rocblas/**/library/**', `**/.kpack/*${arch}*`] },
    { ifLoaded: '**/libhipblaslt.so*', paths: ['**/hipblaslt/**/library/**', `**/.kpack/*${arch}*`] },
    // comgr and the device bitcode are loaded only once a device exists; the bitcode is under TheRock's
    // lib/llvm/amdgcn or a distribution's clang resource dir (Debian: /usr/lib/llvm-21/lib/clang/21/amdgcn)
    { ifLoaded: '**/libamdhip64.so*', paths: ['**/libamd_comgr.so*', '**/amdgcn/bitcode/**', `**/.kpack/*${arch}*`] },
    '**/amdgpu.ids',
    // TheRock's links: model loading fails without them
    '**/llvm',
    '**/amdgcn',
  ];
}

function describeGpu(n: KfdNode, total: number): string {
  const kind = n.integrated ? 'integrated' : 'discrete';
  const render = n.drmRenderMinor !== null ? `, /dev/dri/renderD${n.drmRenderMinor}` : '';
  return `${n.arch} (${kind}) at KFD node ${n.node}: HIP device ${n.deviceIndex} of ${total}${render}`;
}

/** Find the GPU of `arch` in the KFD topology under ctx.root. */
async function detectAmd(spec: Required<AmdTargetSpec>, ctx: DetectContext<AmdTargetOptions>): Promise<Detection> {
  const opts = ctx.options;
  const gpus = await readKfdGpus(ctx.root);
  if (gpus.length === 0) return { found: false, description: 'no AMD GPU (no KFD topology: amdgpu driver not loaded?)' };
  const seen = gpus.map((g) => `${g.arch} at node ${g.node}`).join(', ');
  const matches = gpus.filter((g) => g.gfxTargetVersion === spec.gfxVersion);
  let chosen = matches[0];
  if (opts.device !== undefined) {
    chosen = gpus.find((g) => g.deviceIndex === opts.device);
    if (!chosen || chosen.gfxTargetVersion !== spec.gfxVersion)
      return { found: false, description: `targets.${spec.name}.device ${opts.device} is not a ${spec.arch} (KFD: ${seen})` };
  }
  if (!chosen) return { found: false, description: `no ${spec.arch} GPU (KFD: ${seen})` };
  const others = gpus.filter((g) => g !== chosen);
  return {
    found: true,
    description: describeGpu(chosen, gpus.length) + (others.length ? `; also present: ${others.map((g) => `${g.arch} (device ${g.deviceIndex})`).join(', ')}` : ''),
    deviceIndex: chosen.deviceIndex!,
    facts: {
      arch: chosen.arch,
      kfdNode: chosen.node,
      integrated: chosen.integrated,
      gpuCount: gpus.length,
      renderNode: chosen.drmRenderMinor !== null ? `/dev/dri/renderD${chosen.drmRenderMinor}` : null,
      localMemBytes: chosen.localMemSize,
      vramTotalBytes: chosen.mem?.vramTotal ?? null,
      gttTotalBytes: chosen.mem?.gttTotal ?? null,
      kfdDevice: existsSync(join(ctx.root, 'dev/kfd')),
    },
  };
}

/** The HIP compiler inside a ROCm root: TheRock's `lib/llvm/bin/clang`, else `hipcc`. Null when neither exists. */
export function findHipCompiler(runtimeRoot: string, prefer: 'clang' | 'hipcc' = 'clang'): string | null {
  const clang = [join(runtimeRoot, 'lib/llvm/bin/clang'), join(runtimeRoot, 'llvm/bin/clang')].find((p) => existsSync(p));
  const hipcc = join(runtimeRoot, 'bin/hipcc');
  if (prefer === 'hipcc' && existsSync(hipcc)) return hipcc;
  return clang ?? (existsSync(hipcc) ? hipcc : null);
}

/**
 * The build environment for HIP from a ROCm root: HIP_PATH/ROCM_PATH, the
 * device bitcode, the clang dir for hipcc, and ROCm's bin on PATH.
 */
export function hipToolchainEnv(runtimeRoot: string, basePath = process.env.PATH ?? ''): Record<string, string> {
  return {
    HIP_PATH: runtimeRoot,
    ROCM_PATH: runtimeRoot,
    HIP_DEVICE_LIB_PATH: join(runtimeRoot, 'lib/llvm/amdgcn/bitcode'),
    HIP_CLANG_PATH: join(runtimeRoot, 'lib/llvm/bin'),
    // ROCm's bin (hipconfig, hipcc) only: LLVM's bin would shadow the host's binutils for the C/C++ side
    PATH: [join(runtimeRoot, 'bin'), basePath].filter(Boolean).join(':'),
  };
}

const GFX = /^gfx[0-9]{1,2}[0-9a-f]{2}$/;

/** Make an AMD target definition; a spec that cannot work is refused here, naming the field. */
export function amdTarget(spec: AmdTargetSpec): TargetDefinition<AmdTargetOptions> {
  const bad = (field: string, expected: string) => new RocmflowError('E_PLUGIN', `amdTarget(${JSON.stringify(spec.name)}): ${field}: ${expected}`, { exitCode: 2 });
  if (typeof spec.arch !== 'string' || !GFX.test(spec.arch)) throw bad('arch', 'expected an LLVM AMD GPU arch such as "gfx1201"');
  for (const a of spec.extraArches ?? []) if (!GFX.test(a)) throw bad('extraArches', `expected arches such as "gfx1250", got ${JSON.stringify(a)}`);
  const full: Required<AmdTargetSpec> = { extraArches: [], ...spec, gfxVersion: spec.gfxVersion ?? encodeGfxArch(spec.arch) };
  return {
    name: spec.name,
    family: 'rocm',
    arch: spec.arch,
    description: spec.description,
    options: amdTargetOptions,
    runtime: { kind: 'therock', family: spec.family },
    detect: (ctx) => detectAmd(full, ctx),
    cmakeFlags(ctx: TargetContext<AmdTargetOptions>) {
      const opts = ctx.options;
      const flags = ['-DGGML_HIP=ON', `-DAMDGPU_TARGETS=${spec.arch}`, `-DGPU_TARGETS=${spec.arch}`, '-DCMAKE_BUILD_TYPE=Release'];
      if (opts.rocwmmaFlashAttention) flags.push('-DGGML_HIP_ROCWMMA_FATTN=ON');
      if (opts.uma) flags.push('-DGGML_HIP_UMA=ON');
      if (ctx.runtimeRoot) {
        const compiler = findHipCompiler(ctx.runtimeRoot, opts.hipCompiler);
        if (compiler) flags.push(`-DCMAKE_HIP_COMPILER=${compiler}`);
        flags.push(`-DCMAKE_PREFIX_PATH=${ctx.runtimeRoot}`);
      }
      return flags;
    },
    env(ctx: TargetContext<AmdTargetOptions>) {
      const opts = ctx.options;
      const env: Record<string, string> = {};
      const index = opts.device ?? (ctx.detection?.found ? ctx.detection.deviceIndex : undefined);
      if (index !== undefined) {
        // ROCr filters first and renumbers what it exposes from 0; HIP's list indexes that
        env.ROCR_VISIBLE_DEVICES = String(index);
        env.HIP_VISIBLE_DEVICES = '0';
      }
      if (opts.uma) env.GGML_CUDA_ENABLE_UNIFIED_MEMORY = '1';
      return env;
    },
    devices: ['/dev/kfd', '/dev/dri/renderD*'],
    keep: amdKeepRules(spec.arch),
    drop: amdDropRules(spec.arch, full.extraArches),
    // the amdgpu kernel driver is not a file: nothing of ROCm comes from the host
    hostProvided: [],
    tools: {
      strace: 'apt install strace (dnf install strace)',
      bwrap: 'apt install bubblewrap (dnf install bubblewrap)',
      cmake: 'apt install cmake (dnf install cmake)',
      git: 'apt install git (dnf install git)',
    },
  };
}
