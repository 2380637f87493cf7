/**
 * The compilers and tools a llama.cpp build needs for a target, checked up
 * front so a missing one is a clear "X not found: install Y" instead of a
 * page of CMake errors.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { RocmflowError, missingTool } from '../errors.js';
import { findHipCompiler, hipToolchainEnv } from '../gpu/amd-target.js';
import type { TargetDefinition } from '../plugin/types.js';

/** Tool paths and their version lines. */
export interface Toolchain {
  cmake: string;
  cc: string;
  cxx: string;
  /** ROCm's clang or hipcc, for rocm targets. */
  hip?: string;
  /** nvcc, for cuda targets. */
  nvcc?: string;
  ninja: string | null;
  ccache: string | null;
  /** First line of each tool's `--version`. */
  versions: Record<string, string>;
  /** Variables the toolchain needs in the build environment (HIP_PATH, PATH, ...). */
  env: Record<string, string>;
}

/** First line of `cmd --version`, or null when the command cannot run. */
export function toolVersion(cmd: string, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(cmd, ['--version'], { env, encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) return resolve(null);
      resolve(((stdout || stderr).trim().split('\n')[0] ?? '').trim());
    });
  });
}

/**
 * Check what building for `target` needs. `runtimeRoot` is the fetched
 * ROCm/CUDA prefix; rocm targets cannot build without it.
 */
export async function checkToolchain(
  target: Pick<TargetDefinition, 'name' | 'family'>,
  opts: { runtimeRoot?: string; env?: NodeJS.ProcessEnv; targetOptions?: Readonly<Record<string, unknown>> },
): Promise<Toolchain> {
  const env = opts.env ?? process.env;
  const versions: Record<string, string> = {};
  const need = async (label: string, cmd: string, install: string, e: NodeJS.ProcessEnv = env) => {
    const v = await toolVersion(cmd, e);
    if (v === null) throw missingTool(label, install);
    versions[label] = v;
    return cmd;
  };
  const cmake = await need('cmake', 'cmake', 'apt install cmake (dnf install cmake)');
  const cc = await need('C compiler', env.CC || 'cc', 'apt install gcc (dnf install gcc), or set CC');
  const cxx = await need('C++ compiler', env.CXX || 'c++', 'apt install g++ (dnf install gcc-c++), or set CXX');
  const ninja = (await toolVersion('ninja', env)) !== null ? 'ninja' : null;
  if (ninja) versions.ninja = (await toolVersion('ninja', env))!;
  const ccacheVersion = await toolVersion('ccache', env);
  if (ccacheVersion) versions.ccache = ccacheVersion;
  const chain: Toolchain = { cmake, cc, cxx, ninja, ccache: ccacheVersion ? 'ccache' : null, versions, env: {} };

  if (target.family === 'rocm') {
    if (!opts.runtimeRoot)
      throw new RocmflowError('E_MISSING_TOOL', `target ${target.name}: no ROCm to build with: run fetch-rocm first (tasks.fetch-rocm.source), or use --target cpu`);
    const prefer = opts.targetOptions?.hipCompiler === 'hipcc' ? 'hipcc' : 'clang';
    const hip = findHipCompiler(opts.runtimeRoot, prefer);
    if (!hip)
      throw missingTool(`HIP compiler (lib/llvm/bin/clang or bin/hipcc under ${opts.runtimeRoot})`, 'fetch a complete ROCm (a TheRock tarball has it) or install hipcc (apt install hipcc)');
    chain.env = hipToolchainEnv(opts.runtimeRoot, env.PATH);
    chain.hip = await need('HIP compiler', hip, 'the ROCm compiler could not run: check the fetched ROCm', { ...env, ...chain.env });
  } else if (target.family === 'cuda') {
    const cudaPath = typeof opts.targetOptions?.cudaPath === 'string' ? opts.targetOptions.cudaPath : undefined;
    const root = opts.runtimeRoot ?? cudaPath;
    const nvcc = root && existsSync(join(root, 'bin/nvcc')) ? join(root, 'bin/nvcc') : 'nvcc';
    chain.nvcc = await need('nvcc (CUDA toolkit)', nvcc, 'install the CUDA toolkit (apt install nvidia-cuda-toolkit) or set targets.cuda.cudaPath');
    if (root) chain.env = { CUDA_PATH: root, PATH: [join(root, 'bin'), env.PATH].filter(Boolean).join(':') };
  }
  return chain;
}
