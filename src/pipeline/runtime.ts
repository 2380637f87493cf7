/**
 * The pipeline's full runtime as a RootLayout: a base (`/`, or a sysroot
 * such as a debootstrapped Debian root), the fetched ROCm/CUDA tree at
 * /opt/rocm and build-llama's install at /opt/llama; the model directory is
 * bound at /models when the workload runs. strace-trace and trim-runtime
 * build it the same way, so the trace and the trim agree on every path.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { RocmflowError } from '../errors.js';
import type { DepResult } from '../plugin/types.js';
import type { RootLayout } from '../runtime/layout.js';

/** In-root mount points. */
export const ROCM_MOUNT = '/opt/rocm';
export const LLAMA_MOUNT = '/opt/llama';
export const MODELS_MOUNT = '/models';

/** The full runtime and the host paths it is made of. */
export interface PipelineRuntime {
  layout: RootLayout;
  /** build-llama's `llama/` (host). */
  llamaDir: string;
  /** The GPU runtime tree (host), when the target has one. */
  runtimeRoot: string | null;
  /** model's output directory (host), bound at /models. */
  modelsDir: string;
  /** In-root directory of the llama.cpp executables. */
  binDir: string;
}

/** Build the layout from the task's dependencies; `baseRoot` is relative to the project root. */
export async function pipelineRuntime(deps: Readonly<Record<string, DepResult>>, opts: { baseRoot?: string; projectRoot: string }): Promise<PipelineRuntime> {
  const build = deps['build-llama'];
  const model = deps['model'];
  if (!build || !model) throw new RocmflowError('E_MISSING_DEP', 'the full runtime needs the build-llama and model results');
  const llamaDir = join(build.outDir, 'llama');
  if (!existsSync(join(llamaDir, 'bin', 'llama-server')))
    throw new RocmflowError('E_MISSING_DEP', `${llamaDir}/bin has no llama-server: add it to tasks.build-llama.targets`);
  const base = opts.baseRoot ? resolve(opts.projectRoot, opts.baseRoot) : '/';
  if (base !== '/' && !existsSync(join(base, 'usr')))
    throw new RocmflowError('E_BASE_ROOT', `tasks.strace-trace.baseRoot: ${base} is not a root directory (no usr/ in it)`, { exitCode: 2 });
  const runtimeRoot = (await runtimeRootFromDeps(deps)) ?? null;
  const layers = [...(runtimeRoot ? [{ mount: ROCM_MOUNT, source: runtimeRoot }] : []), { mount: LLAMA_MOUNT, source: llamaDir }];
  return { layout: { base, layers }, llamaDir, runtimeRoot, modelsDir: model.outDir, binDir: `${LLAMA_MOUNT}/bin` };
}

/** The GPU runtime root from fetch-rocm's output: `rocm.json`'s path (a `dir` source), else `rocm/`. */
export async function runtimeRootFromDeps(deps: Readonly<Record<string, DepResult>>): Promise<string | undefined> {
  const dep = deps['fetch-rocm'];
  if (!dep) return undefined;
  const pointer = join(dep.outDir, 'rocm.json');
  if (existsSync(pointer)) {
    const j = JSON.parse(await readFile(pointer, 'utf8')) as { path?: unknown };
    if (typeof j.path === 'string') return j.path;
  }
  const dir = join(dep.outDir, 'rocm');
  return existsSync(dir) ? dir : undefined;
}
