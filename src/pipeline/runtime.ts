/**
 * The pipeline's full runtime as a RootLayout: a base (`/`, or a sysroot
 * such as a debootstrapped Debian root), the fetched ROCm/CUDA tree at
 * /opt/rocm and build-llama's install at /opt/llama; the model directory is
 * bound at /models when the workload runs. strace-trace and trim-runtime
 * build it the same way, so the trace and the trim agree on every path.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rootPath } from '../baseroot/inspect.js';
import type { BaseRootRecord } from '../baseroot/types.js';
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

/** The base root base-root recorded (`/` without that dependency) and its record. */
export async function baseRootFromDeps(deps: Readonly<Record<string, DepResult>>, opts: { cacheDir: string; projectRoot: string }): Promise<{ path: string; record: BaseRootRecord | null }> {
  const dep = deps['base-root'];
  if (!dep) return { path: '/', record: null };
  const file = join(dep.outDir, 'root.json');
  let record: BaseRootRecord;
  try {
    record = JSON.parse(await readFile(file, 'utf8')) as BaseRootRecord;
  } catch (e) {
    throw new RocmflowError('E_BASE_ROOT', `${file}: ${(e as Error).message}`);
  }
  if (!record || typeof record !== 'object' || !record.location || typeof record.location !== 'object') throw new RocmflowError('E_BASE_ROOT', `${file}: no "location"`);
  const path = rootPath(record, opts.cacheDir, opts.projectRoot);
  if (path !== '/' && !existsSync(join(path, 'usr'))) throw new RocmflowError('E_BASE_ROOT', `base root ${path} (${file}) is not a root directory (no usr/ in it): rerun base-root`);
  return { path, record };
}

/** Build the layout from the task's dependencies: the base root from base-root, the layers from fetch-rocm and build-llama. */
export async function pipelineRuntime(deps: Readonly<Record<string, DepResult>>, opts: { cacheDir: string; projectRoot: string }): Promise<PipelineRuntime> {
  const build = deps['build-llama'];
  const model = deps['model'];
  if (!build || !model) throw new RocmflowError('E_MISSING_DEP', 'the full runtime needs the build-llama and model results');
  const llamaDir = join(build.outDir, 'llama');
  if (!existsSync(join(llamaDir, 'bin', 'llama-server')))
    throw new RocmflowError('E_MISSING_DEP', `${llamaDir}/bin has no llama-server: add it to tasks.build-llama.targets`);
  const base = (await baseRootFromDeps(deps, opts)).path;
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
