import type { ActionEntry } from '../action-entry.js';
import type { ContentStore } from '../content-store.js';

/** Per-run transfer counters of a remote cache. */
export interface RemoteStats {
  hits: number;
  misses: number;
  bytesDown: number;
  bytesUp: number;
  errors: number;
}

/**
 * A shared cache (Bazel HTTP cache protocol, or a shared directory). Every
 * failure is a warning through the `warn` it was created with, never a
 * failed run: methods resolve to null/void on errors.
 */
export interface RemoteCache {
  /** e.g. `http://cache.lan:8080/rocmflow` (no credentials). */
  readonly description: string;
  readonly canWrite: boolean;
  /**
   * Fetch the action entry for `key` and every blob it needs into `store`
   * (verified against their digests). Null on a miss, a bad or missing
   * signature when one is required, or any remote error.
   */
  pull(key: string, store: ContentStore): Promise<ActionEntry | null>;
  /**
   * The action entry for `key` if the remote has one that `pull` would
   * accept (signature checked), without fetching its blobs: what a dry run
   * asks. Null on a miss or any remote error.
   */
  peek(key: string): Promise<ActionEntry | null>;
  /** Upload the blobs the remote lacks, then the (signed) action entry last. */
  push(key: string, entry: ActionEntry, store: ContentStore): Promise<void>;
  stats(): RemoteStats;
}
