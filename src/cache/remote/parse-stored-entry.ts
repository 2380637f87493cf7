/**
 * Checks the shape of an `ac/<key>` document from the remote before any of
 * it is trusted: an entry's paths are later created under the task's output
 * directory and its digests become file names: the manifest is checked by
 * manifestProblem (paths, duplicates, links, digests) before it is used.
 */
import { manifestProblem } from '../output-manifest.js';
import type { StoredEntry } from './signing.js';
import { isSha256Hex } from '../../util/canonical.js';

/** The stored entry, or a one-line reason it is malformed. */
export function parseStoredEntry(body: Buffer, expectedKey: string): { stored: StoredEntry } | { problem: string } {
  let doc: any;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return { problem: 'not JSON' };
  }
  const e = doc?.entry;
  if (typeof e !== 'object' || e === null || e.v !== 1) return { problem: 'not a version 1 action entry' };
  // a valid entry recorded for another key, served here, is a replay
  if (e.key !== expectedKey) return { problem: `entry is for key ${String(e.key).slice(0, 12)}, not ${expectedKey.slice(0, 12)}` };
  if (typeof e.task !== 'string' || typeof e.target !== 'string') return { problem: 'task/target missing' };
  if (!Array.isArray(e.summary) || e.summary.some((l: unknown) => typeof l !== 'string')) return { problem: 'summary is not a list of lines' };
  if (e.log !== undefined && !isSha256Hex(e.log)) return { problem: 'log is not a sha256 digest' };
  if (e.facts !== undefined && (typeof e.facts !== 'object' || e.facts === null || Array.isArray(e.facts))) return { problem: 'facts is not an object' };
  const problem = manifestProblem(e.manifest);
  if (problem) return { problem };
  const sig = doc.signature;
  if (sig !== undefined && (typeof sig !== 'object' || sig === null)) return { problem: 'signature is not an object' };
  return { stored: { entry: e, signature: sig } };
}
