/**
 * Plans a run without running anything (`--dry-run`, `explain`, `cache
 * pull`): for each task, would it be fresh, restored from the cache (local,
 * or the remote when one is given), or run, and why. The decision is the
 * executor's own (decide.ts); nothing is fetched, run or written.
 */
import type { ActionEntry } from '../cache/action-entry.js';
import { diskMatches, manifestDigest } from '../cache/output-manifest.js';
import { diffRecords, fingerprintKey, type FieldChange, type FingerprintRecord } from '../fingerprint/record.js';
import { Executor, type ExecutorOptions, type TaskStateRecord } from './executor.js';
import { fingerprintTask, primeCodeHashes } from './fingerprint-task.js';
import { verdictFor, whyRun } from './decide.js';

export interface PlannedTask {
  task: string;
  state: 'fresh' | 'cached' | 'run';
  reason: string;
  changes: FieldChange[];
  key?: string;
  record?: FingerprintRecord;
  previous?: FingerprintRecord;
}

export async function planRun(o: Omit<ExecutorOptions, 'emit' | 'runId'>): Promise<PlannedTask[]> {
  const exec = new Executor({ ...o, emit: () => {}, runId: 'plan' });
  const digests = new Map<string, string | null>();
  const plan: PlannedTask[] = [];
  primeCodeHashes(o.graph.order.map((n) => o.registry.tasks.get(n)!), o.index);
  for (const name of o.graph.order) {
    const task = o.registry.tasks.get(name)!;
    const ctx = exec.taskContext(name);
    const prev = await o.index.get<TaskStateRecord>('state', Executor.stateKey(o.config.stateDir, o.target.name, name));
    const unknownDep = o.graph.deps(name).find((d) => digests.get(d) == null);
    if (unknownDep) {
      plan.push({ task: name, state: 'run', reason: `dependency ${unknownDep} will run`, changes: [], previous: prev?.record });
      digests.set(name, null);
      continue;
    }
    const depDigests = Object.fromEntries(o.graph.deps(name).map((d) => [d, digests.get(d)!]));
    const fp = await fingerprintTask({ task, ctx, index: o.index, depDigests, previousStamps: prev?.stamps, env: o.env });
    const key = fingerprintKey(fp.record);
    const outputs = exec.outputsOf(task.def, name);
    const outDir = Executor.outDir(o.config, o.target.name, name);
    const changes = prev ? diffRecords(prev.record, fp.record) : [];
    const base = { task: name, key, record: fp.record, previous: prev?.record, changes };
    const forced = o.force.has(name);
    const uncacheable = fp.record.uncacheable;
    const verdict = verdictFor({ forced, uncacheable, key, prev, outputsOnDisk: () => diskMatches(outDir, outputs, prev!.disk) });
    if (verdict === 'fresh') {
      plan.push({ ...base, state: 'fresh', reason: 'up to date' });
      digests.set(name, prev!.manifestDigest);
      continue;
    }
    if (verdict === 'lookup') {
      // the executor's order: the local index, then the remote (asked for the entry only: nothing is downloaded)
      const local = await o.index.get<ActionEntry>('action', key);
      const entry = local ?? (o.remote ? await o.remote.peek(key) : null);
      if (entry) {
        const from = local ? 'restore from cache' : `restore from ${o.remote!.description}`;
        plan.push({ ...base, state: 'cached', reason: prev?.key === key ? `outputs changed on disk; ${from}` : from });
        digests.set(name, manifestDigest(entry.manifest));
        continue;
      }
    }
    const why = whyRun({ forced, uncacheable, prev, record: fp.record });
    const reason = forced ? 'forced' : uncacheable ? `uncacheable: ${uncacheable}` : why.reason;
    plan.push({ ...base, state: 'run', reason });
    digests.set(name, null);
  }
  return plan;
}
