/**
 * The one decision for a task, shared by the executor and the planner
 * (`run --dry-run`, `explain`, `cache pull`): given its key and what the
 * workspace last recorded, it is fresh (skip), to be looked up in the cache
 * (local index, then the remote), or to run; and when it runs, why.
 */
import { diffRecords, type FieldChange, type FingerprintRecord } from '../fingerprint/record.js';

/** What the workspace remembers of a task's last result (a subset of TaskStateRecord). */
export interface PreviousState {
  key: string;
  record: FingerprintRecord;
}

export type Verdict = 'fresh' | 'lookup' | 'run';

/** Fresh when the key and the outputs on disk match; forced and uncacheable tasks run; else look in the cache. */
export function verdictFor(o: { forced: boolean; uncacheable?: string; key: string; prev?: PreviousState; outputsOnDisk: () => boolean }): Verdict {
  if (o.forced || o.uncacheable) return 'run';
  if (o.prev?.key === o.key && o.outputsOnDisk()) return 'fresh';
  return 'lookup';
}

/** Why a task runs: the fields that changed since its last run, or what else made it run. */
export function whyRun(o: { forced: boolean; uncacheable?: string; prev?: PreviousState; record: FingerprintRecord }): { reason: string; changes: FieldChange[] } {
  const changes: FieldChange[] = o.forced
    ? [{ field: 'forced', before: '', after: '--force' }]
    : o.uncacheable
      ? [{ field: 'uncacheable', before: '', after: o.uncacheable }]
      : o.prev
        ? diffRecords(o.prev.record, o.record)
        : [];
  const reason = changes.length ? changes.map((c) => c.field).join(', ') : o.prev ? 'outputs changed on disk' : 'no previous run';
  return { reason, changes };
}
