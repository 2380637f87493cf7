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
import { expandInputs, walkAhead, type InputEntry } from '../fingerprint/walk.js';
import { isLongLived } from '../util/long-lived.js';
import { PACKAGE_ROOT, type LoadedTask } from '../plugin/load.js';
import { moduleClosure } from '../util/module-closure.js';
import { SOURCE_ROOT, sourceOf } from '../util/source-root.js';
import type { Json, TaskContext, TaskInputs } from '../plugin/types.js';
import { RocmflowError, isRocmflowError } from '../errors.js';

export const ROCMFLOW_VERSION: string = (await import('../../package.json', { with: { type: 'json' } })).default.version;

const codeHashes = new Map<string, Promise<string>>();

/**
 * Forget the code hashes this process computed: a long-lived process (the
 * server) starts each request from what is on disk now.
 */
export function forgetCodeHashes(): void {
  codeHashes.clear();
}

/** The files a task's code hash covers, and the directory their names are relative to. */
async function codeFiles(task: LoadedTask): Promise<{ base: string; entries: InputEntry[] }> {
  // contents and relative names only: keys must match across workspaces
  // and machines, so no absolute path may enter them; and the TypeScript
  // sources are hashed, not whatever they were compiled to
  const file = task.file.startsWith(PACKAGE_ROOT) ? sourceOf(task.file) : task.file;
  const base = file.startsWith(SOURCE_ROOT + '/') ? SOURCE_ROOT : dirname(file);
  const closure = await moduleClosure(file);
  const module = expandInputs(closure, base, task.def.name);
  const extra = expandInputs((task.def.code ?? []).map((c) => resolve(dirname(file), c)), base, task.def.name);
  return { base, entries: [...module, ...extra] };
}

function hashOf(base: string, entries: readonly InputEntry[], digests: readonly string[]): string {
  return sha256(canonicalJson(entries.map((e, i) => [relative(base, String(e.path)), digests[i]])));
}

/**
 * Hash of a task's code: its module and every local module it imports
 * (the real import closure, see util/module-closure.ts), plus any extra
 * `code` paths it declares (data files a task reads, e.g. a script it runs).
 * Memoised per process.
 */
export function codeHash(task: LoadedTask, index: CacheIndex): Promise<string> {
  let h = codeHashes.get(task.def.name);
  if (!h) {
    h = codeHashAlone(task, index);
    codeHashes.set(task.def.name, h);
  }
  return h;
}

async function codeHashAlone(task: LoadedTask, index: CacheIndex): Promise<string> {
  const { base, entries } = await codeFiles(task);
  const { digests } = await digestEntries(entries, { index });
  return hashOf(base, entries, digests);
}

/**
 * The code hashes of a run's tasks, at once. Their closures overlap (the
 * plugin API, the engine's helpers), so each file is looked up in the stat
 * cache once, in one query, instead of once per task along the dependency
 * chain, where each lookup waited for the one before. codeHash() then finds
 * its answer ready. A task whose files cannot be read gets the error
 * codeHash() alone gives it; the others are not held up by it.
 */
export function primeCodeHashes(tasks: readonly LoadedTask[], index: CacheIndex): void {
  const todo = tasks.filter((t) => !codeHashes.has(t.def.name));
  if (todo.length < 2) return;
  const batch = (async () => {
    const parts = await Promise.allSettled(todo.map(codeFiles));
    const ready = parts.flatMap((p, i) => (p.status === 'fulfilled' ? [{ task: todo[i]!, ...p.value }] : []));
    const unique = new Map<string, InputEntry>();
    for (const p of ready) for (const e of p.entries) if (typeof e.path === 'string') unique.set(e.path, e);
    const list = [...unique.values()];
    const { digests } = await digestEntries(list, { index });
    const digestOf = new Map(list.map((e, i) => [e.path as string, digests[i]!]));
    const out = new Map<string, string>();
    for (const p of ready) {
      const d = p.entries.map((e) => (typeof e.path === 'string' ? digestOf.get(e.path) : undefined));
      if (d.every((x) => x !== undefined)) out.set(p.task.def.name, hashOf(p.base, p.entries, d as string[]));
    }
    return out;
  })().catch(() => new Map<string, string>());
  for (const t of todo) {
    const h = batch.then((m) => m.get(t.def.name) ?? codeHashAlone(t, index));
    // a task the run never reaches (an earlier one failed) never awaits its
    // hash: its error must not be an unhandled rejection
    h.catch(() => {});
    codeHashes.set(t.def.name, h);
  }
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
  /** Called before any input file is hashed (it may throw to stop there). */
  beforeHashing?: (files: number, bytes: number) => void;
}): Promise<TaskFingerprint> {
  const { task, ctx, index } = opts;
  let inputs: TaskInputs;
  try {
    // a task with options and no inputs() reads its options and declares nothing: they are its params,
    // or a change to them would leave it fresh (a task that declares inputs says itself what counts)
    inputs = task.def.inputs ? ((await task.def.inputs(ctx)) ?? {}) : task.def.options ? { params: { options: ctx.options as Json } } : {};
  } catch (e) {
    if (isRocmflowError(e)) throw e;
    throw new RocmflowError('E_TASK_INPUTS', `task ${task.def.name}: inputs() failed: ${(e as Error).message}`, { cause: e });
  }
  const patterns = inputs.files ?? [];
  // the server walks on every core (its workers live as long as it does; a cold process's would cost more than they save)
  const walked = isLongLived() && patterns.length ? await walkAhead(patterns, ctx.projectRoot, (await import('../fingerprint/walk-pool.js')).walkTreeParallel) : undefined;
  const entries = expandInputs(patterns, ctx.projectRoot, task.def.name, walked);
  const { digests, stamps } = await digestEntries(entries, { index, previous: opts.previousStamps, onProgress: opts.onHashProgress, beforeHashing: opts.beforeHashing });
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

