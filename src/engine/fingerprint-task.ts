/**
 * Builds a task's fingerprint record: params, env, tool versions, input
 * file digests (via the stat cache), its code, and its dependencies'
 * output digests.
 */
import { dirname, relative, resolve } from 'node:path';
import type { CacheIndex } from '../cache/cache-index.js';
import { digestEntries, type StatStamp } from '../fingerprint/file-digests.js';
import { canonicalJson, sha256 } from '../util/canonical.js';
import type { FingerprintRecord } from '../fingerprint/record.js';
import { toolVersions } from '../fingerprint/tools.js';
import { expandInputs } from '../fingerprint/walk.js';
import { PACKAGE_ROOT, type LoadedTask } from '../plugin/load.js';
import { moduleClosure } from '../util/module-closure.js';
import { SOURCE_ROOT, sourceOf } from '../util/source-root.js';
import type { TaskContext, TaskInputs } from '../plugin/types.js';
import { RocmflowError, isRocmflowError } from '../errors.js';

export const ROCMFLOW_VERSION: string = (await import('../../package.json', { with: { type: 'json' } })).default.version;

const codeHashes = new Map<string, Promise<string>>();

/**
 * Hash of a task's code: its module and every local module it imports
 * (the real import closure, see util/module-closure.ts), plus any extra
 * `code` paths it declares (data files a task reads, e.g. a script it runs).
 * Memoised per process.
 */
export function codeHash(task: LoadedTask, index: CacheIndex): Promise<string> {
  let h = codeHashes.get(task.def.name);
  if (!h) {
    h = (async () => {
      // contents and relative names only: keys must match across workspaces
      // and machines, so no absolute path may enter them; and the TypeScript
      // sources are hashed, not whatever they were compiled to
      const file = task.file.startsWith(PACKAGE_ROOT) ? sourceOf(task.file) : task.file;
      const base = file.startsWith(SOURCE_ROOT + '/') ? SOURCE_ROOT : dirname(file);
      const closure = await moduleClosure(file);
      const module = expandInputs(closure, base, task.def.name);
      const extra = expandInputs((task.def.code ?? []).map((c) => resolve(dirname(file), c)), base, task.def.name);
      const all = [...module, ...extra];
      const { digests } = await digestEntries(all, { index });
      return sha256(canonicalJson(all.map((e, i) => [relative(base, String(e.path)), digests[i]])));
    })();
    codeHashes.set(task.def.name, h);
  }
  return h;
}

export interface TaskFingerprint {
  record: FingerprintRecord;
  stamps: Record<string, StatStamp>;
  inputs: TaskInputs;
}

export async function fingerprintTask(opts: {
  task: LoadedTask;
  ctx: TaskContext<unknown>;
  index: CacheIndex;
  depDigests: Record<string, string>;
  previousStamps?: Record<string, StatStamp>;
  env: NodeJS.ProcessEnv;
  onHashProgress?: (done: number, total: number) => void;
}): Promise<TaskFingerprint> {
  const { task, ctx, index } = opts;
  let inputs: TaskInputs;
  try {
    inputs = (await task.def.inputs?.(ctx)) ?? {};
  } catch (e) {
    if (isRocmflowError(e)) throw e;
    throw new RocmflowError('E_TASK_INPUTS', `task ${task.def.name}: inputs() failed: ${(e as Error).message}`, { cause: e });
  }
  const entries = expandInputs(inputs.files ?? [], ctx.projectRoot, task.def.name);
  const { digests, stamps } = await digestEntries(entries, { index, previous: opts.previousStamps, onProgress: opts.onHashProgress });
  // input keys are file names: no prototype, so a file named __proto__ is keyed like any other
  const files: Record<string, string> = Object.create(null);
  entries.forEach((e, i) => (files[e.key] = digests[i]!));
  const env: Record<string, string | null> = {};
  for (const name of inputs.env ?? []) env[name] = opts.env[name] ?? null;
  const record: FingerprintRecord = {
    v: 1,
    task: task.def.name,
    code: await codeHash(task, index),
    rocmflowVersion: ROCMFLOW_VERSION,
    target: ctx.target.name,
    params: inputs.params ?? {},
    env,
    tools: await toolVersions(inputs.tools ?? [], index),
    files,
    deps: opts.depDigests,
    ...(inputs.uncacheable ? { uncacheable: inputs.uncacheable } : {}),
  };
  return { record, stamps, inputs };
}

