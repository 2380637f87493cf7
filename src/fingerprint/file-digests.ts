/**
 * File digests with a stat cache: a file whose (device, inode, size, mtime,
 * ctime) are unchanged is not read again. Two levels: the caller's own
 * previous record (no lookups at all), then the shared stat cache in the
 * index.
 */
import type { CacheIndex } from '../cache/cache-index.js';
import { hashFiles } from '../util/hash-pool.js';
import type { InputEntry } from './walk.js';

/**
 * What the stat cache remembers per file, packed into one string
 * (`size:mtimeMs:ctimeMs:ino:dev:sha256`): tens of thousands of these are
 * read on every no-op run, and strings cost far less to parse and collect
 * than objects.
 */
export type StatStamp = string;

/** The stamp's part before the digest. Writing the two fractional times is most of a no-op's check, so the server's walk workers write it ahead (walk-pool.ts). */
export function stampPrefix(e: InputEntry): string {
  return e.stampPrefix ?? `${e.size}:${e.mtimeMs}:${e.ctimeMs}:${e.ino}:${e.dev}:`;
}

export function makeStamp(e: InputEntry, digest: string): StatStamp {
  return stampPrefix(e) + digest;
}

export function stampDigest(s: StatStamp): string {
  return s.slice(s.lastIndexOf(':') + 1);
}

export function stampMatches(s: StatStamp | undefined, e: InputEntry): boolean {
  if (typeof s !== 'string') return false;
  const prefix = stampPrefix(e);
  return s.length === prefix.length + 64 && s.startsWith(prefix);
}

/**
 * Digest of each entry (`link:<target>` for symlinks), reusing `previous`
 * stamps (keyed by entry key) and the index's stat cache.
 */
export async function digestEntries(
  entries: readonly InputEntry[],
  opts: {
    index: CacheIndex;
    previous?: Record<string, StatStamp>;
    onProgress?: (done: number, total: number) => void;
    /** Called once before any file is hashed, with how many and how many bytes; it may throw to stop there. */
    beforeHashing?: (files: number, bytes: number) => void;
  },
): Promise<{ digests: string[]; stamps: Record<string, StatStamp>; hashedBytes: number }> {
  const digests: string[] = new Array(entries.length);
  const todo: number[] = [];
  const previous = opts.previous;
  const matched: number[] = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.type === 'symlink') {
      digests[i] = `link:${e.linkTarget}`;
      continue;
    }
    const s = previous?.[e.key];
    if (stampMatches(s, e)) {
      digests[i] = stampDigest(s!);
      matched.push(i);
    } else todo.push(i);
  }
  // the common no-op: every file as it was and none gone, so the previous
  // stamps are the new ones as they stand (no copy of tens of thousands of keys)
  if (todo.length === 0 && previous && matched.length === Object.keys(previous).length) return { digests, stamps: previous, hashedBytes: 0 };
  // keyed by file names: no prototype, so a file named __proto__ is a key like any other
  const stamps: Record<string, StatStamp> = Object.create(null);
  for (const i of matched) stamps[entries[i]!.key] = previous![entries[i]!.key]!;
  if (todo.length === 0) return { digests, stamps, hashedBytes: 0 };

  const statKey = (e: InputEntry) => `${e.dev}:${e.ino}`;
  const cached = await opts.index.getMany<StatStamp>('stat', todo.map((i) => statKey(entries[i]!)));
  const toHash: number[] = [];
  todo.forEach((i, k) => {
    const e = entries[i]!;
    if (stampMatches(cached[k], e)) {
      digests[i] = stampDigest(cached[k]!);
      stamps[e.key] = cached[k]!;
    } else toHash.push(i);
  });
  let hashedBytes = 0;
  if (toHash.length) {
    const total = toHash.reduce((a, i) => a + entries[i]!.size, 0);
    opts.beforeHashing?.(toHash.length, total);
    const res = await hashFiles(toHash.map((i) => entries[i]!), { onProgress: (b) => opts.onProgress?.(b, total) });
    const fresh: { key: string; value: StatStamp }[] = [];
    toHash.forEach((i, k) => {
      const e = entries[i]!;
      const r = res[k]!;
      hashedBytes += r.size;
      digests[i] = r.digest;
      const stamp = makeStamp(e, r.digest);
      // a file modified in the same clock tick as we read it could change
      // unseen; don't remember stamps that are this fresh (git's racy-clean rule)
      if (Date.now() - e.mtimeMs > 2000) {
        stamps[e.key] = stamp;
        fresh.push({ key: statKey(e), value: stamp });
      }
    });
    await opts.index.setMany('stat', fresh);
  }
  return { digests, stamps, hashedBytes };
}
