/**
 * Everything a run reports is one of these events. The terminal reporter
 * renders them; `--json` prints one per line.
 */
import type { FieldChange } from '../fingerprint/record.js';
import type { Json } from '../plugin/types.js';

export type TaskState = 'fresh' | 'cached' | 'ran' | 'failed' | 'skipped';

export type RunEvent =
  | { type: 'plan'; target: string; targetReason: string; tasks: string[] }
  | { type: 'start'; task: string; reason: string; changes?: FieldChange[] }
  | {
      type: 'task';
      task: string;
      state: TaskState;
      ms: number;
      key?: string;
      /** For cached: `local` or `remote`. For skipped: why. For failed: the error. */
      source?: 'local' | 'remote';
      reason?: string;
      error?: string;
      details?: string[];
      /** For ran: why it ran (the fields that changed, or "no previous run"). */
      changes?: FieldChange[];
      /** For ran: milliseconds in each phase (prepare: deciding and locking; run: the task; capture: hashing its outputs; store: syncing and indexing them). */
      phases?: { prepare: number; run: number; capture: number; store: number };
      /** The task's facts (TaskResult.facts), for ran, cached and fresh. */
      facts?: Record<string, Json>;
    }
  | { type: 'progress'; task: string; label: string; done: number; total?: number; unit?: string }
  | { type: 'log'; task: string; level: 'info' | 'warn' | 'debug' | 'output'; line: string }
  | { type: 'warning'; message: string; task?: string }
  | {
      type: 'summary';
      ok: boolean;
      ms: number;
      target: string;
      counts: Record<TaskState, number>;
      failed: string[];
      skipped: string[];
      lines: string[];
      /** Each task's facts, by task name (only tasks that reported some). */
      facts?: Record<string, Record<string, Json>>;
      logDir: string;
    };

export type EventSink = (e: RunEvent) => void;
