import type { OutputManifest } from './output-manifest.js';
import type { Json } from '../plugin/types.js';

/**
 * An action result: what a task with a given key produced. Portable
 * between machines (no inode numbers or local paths): this is what the
 * remote cache stores under `ac/<key>`.
 */
export interface ActionEntry {
  v: 1;
  key: string;
  task: string;
  target: string;
  manifest: OutputManifest;
  /** Lines for the run summary. */
  summary: string[];
  /** The task's facts for `--json` (TaskResult.facts). */
  facts?: Record<string, Json>;
  /** Digest of the task's log blob, for `--verbose` replay. */
  log?: string;
  /** How long the task took when it ran (for "time saved"). */
  durationMs: number;
  createdAt: string;
  rocmflowVersion: string;
}

/** Every output blob an entry needs (the log blob, `log`, is optional and sized by the store). */
export function entryBlobs(e: ActionEntry): { digest: string; size: number }[] {
  return e.manifest.entries.filter((x) => x.type === 'file').map((x) => ({ digest: x.sha256!, size: x.size! }));
}
