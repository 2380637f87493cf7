/**
 * Checks the shape of an `ac/<key>` document from the remote before any of
 * it is trusted: an entry's paths are later created under the task's output
 * directory and its digests become file names, so a path that escapes, a
 * file under a symlink, or a digest that is not 64 hex digits is refused.
 */
import type { ManifestEntry } from '../output-manifest.js';
import type { StoredEntry } from './signing.js';

const HEX64 = /^[0-9a-f]{64}$/;

export const isDigest = (s: unknown): s is string => typeof s === 'string' && HEX64.test(s);

function safePath(p: unknown): p is string {
  if (typeof p !== 'string' || p === '' || p.startsWith('/') || p.includes('\0')) return false;
  return p.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

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
  if (e.log !== undefined && !isDigest(e.log)) return { problem: 'log is not a sha256 digest' };
  if (e.facts !== undefined && (typeof e.facts !== 'object' || e.facts === null || Array.isArray(e.facts))) return { problem: 'facts is not an object' };
  if (!Array.isArray(e.manifest?.entries)) return { problem: 'manifest.entries missing' };
  const symlinks = new Set<string>();
  for (const m of e.manifest.entries as ManifestEntry[]) {
    if (!safePath(m?.path)) return { problem: `unsafe output path ${JSON.stringify(m?.path)}` };
    if (typeof m.mode !== 'number') return { problem: `${m.path}: mode missing` };
    const parents = m.path.split('/').slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join('/'));
    if (parents.some((p) => symlinks.has(p))) return { problem: `${m.path} lies under a symlink` };
    if (m.type === 'file') {
      if (!isDigest(m.sha256) || !Number.isSafeInteger(m.size) || m.size! < 0) return { problem: `${m.path}: bad digest or size` };
    } else if (m.type === 'symlink') {
      if (typeof m.target !== 'string') return { problem: `${m.path}: symlink target missing` };
      symlinks.add(m.path);
    } else if (m.type !== 'dir') return { problem: `${m.path}: unknown type ${JSON.stringify(m.type)}` };
  }
  const sig = doc.signature;
  if (sig !== undefined && (typeof sig !== 'object' || sig === null)) return { problem: 'signature is not an object' };
  return { stored: { entry: e, signature: sig } };
}
