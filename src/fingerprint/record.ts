/**
 * The fingerprint record: every field that decides whether a task reruns.
 * Its key is the SHA-256 of its canonical JSON; the record itself is stored
 * so `rocmflow explain` can say which field changed.
 */
import type { Json } from '../plugin/types.js';
import { canonicalJson, sha256 } from '../util/canonical.js';

export interface FingerprintRecord {
  /** Record format version. */
  v: 1;
  task: string;
  /** SHA-256 of the task's module source and its declared `code` paths. */
  code: string;
  rocmflowVersion: string;
  target: string;
  params: Record<string, Json>;
  env: Record<string, string | null>;
  tools: Record<string, string>;
  /** Input file key → sha256 (or `link:<target>` for symlinks). */
  files: Record<string, string>;
  /** Dependency name → digest of its output manifest. */
  deps: Record<string, string>;
  /** Set when the task cannot be cached: why. */
  uncacheable?: string;
}

export function fingerprintKey(record: FingerprintRecord): string {
  return sha256(canonicalJson(record));
}

export interface FieldChange {
  field: string;
  before: string;
  after: string;
}

const show = (v: unknown) => (v === undefined ? '(none)' : v === null ? '(unset)' : typeof v === 'string' ? v : canonicalJson(v));
const short = (s: string) => (s.length > 120 ? `${s.slice(0, 117)}...` : s);

/** Field-level differences between a previous and a current record, most specific first. */
export function diffRecords(before: FingerprintRecord, after: FingerprintRecord): FieldChange[] {
  const changes: FieldChange[] = [];
  const cmp = (field: string, a: unknown, b: unknown) => {
    if (canonicalJson(a) === canonicalJson(b)) return;
    // lists of flags: say which items came and went, not two long lists cut short
    if (Array.isArray(a) && Array.isArray(b)) {
      const as = a.map((x) => canonicalJson(x));
      const bs = b.map((x) => canonicalJson(x));
      const added = b.filter((_, i) => !as.includes(bs[i]!));
      const removed = a.filter((_, i) => !bs.includes(as[i]!));
      if (added.length || removed.length) {
        const list = (xs: unknown[]) => xs.map((x) => show(x)).join(' ');
        changes.push({ field, before: short(removed.length ? `removed ${list(removed)}` : '(nothing removed)'), after: short(added.length ? `added ${list(added)}` : '(nothing added)') });
        return;
      }
    }
    changes.push({ field, before: short(show(a)), after: short(show(b)) });
  };
  const maps: (keyof FingerprintRecord & ('params' | 'env' | 'tools' | 'files' | 'deps'))[] = ['files', 'params', 'env', 'tools', 'deps'];
  for (const m of maps) {
    const a = before[m] as Record<string, unknown>;
    const b = after[m] as Record<string, unknown>;
    // own keys only: a file may be named constructor or toString
    const at = (o: Record<string, unknown>, k: string) => (Object.hasOwn(o, k) ? o[k] : undefined);
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const label = m === 'files' ? (Object.hasOwn(a, k) ? (Object.hasOwn(b, k) ? 'changed' : 'removed') : 'added') : '';
      if (m === 'files') {
        if (at(a, k) !== at(b, k)) changes.push({ field: `file ${k} (${label})`, before: short(show(at(a, k))), after: short(show(at(b, k))) });
      } else cmp(`${m === 'deps' ? 'dependency' : m.replace(/s$/, '')} ${k}`, at(a, k), at(b, k));
    }
  }
  cmp('task code', before.code, after.code);
  cmp('rocmflow version', before.rocmflowVersion, after.rocmflowVersion);
  cmp('target', before.target, after.target);
  cmp('uncacheable', before.uncacheable, after.uncacheable);
  return changes;
}
