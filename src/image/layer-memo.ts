/**
 * Layers made before, found again. A layer built from files on disk is
 * keyed by everything its bytes follow from: each entry's path, type, mode,
 * size and link target; each source file's device, inode, size, mtime and
 * ctime (the engine's stat-cache rule: a file cannot change without its
 * ctime changing), or, for a content-store blob (a restored output, whose
 * ctime moves whenever another workspace links it), its device, inode, size
 * and birth time under the store's own rule (a write moves its mtime off
 * the sentinel; the birth time tells a reused inode number apart), where the
 * filesystem records birth times; the compression, its level and rocmflow's
 * version. The
 * record under that key holds the layer's digests; the bytes are the
 * content store's blob of that digest, linked in by the caller. So a layer
 * whose files have not changed (the host's system libraries under the full
 * image, the same on every run) is compressed once, not once per run.
 *
 * Records are small JSON files under the local cache directory, never
 * pushed or pulled, and can only point at a blob already in this store.
 * They are still read as untrusted: one that is malformed, names a blob the
 * store no longer has (or has modified), or is any other kind of file is
 * ignored and the layer is made again. A wrong diff_id gives an image that
 * runtimes refuse (they check every layer against it).
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BLOB_MTIME } from '../cache/content-store.js';
import { canonicalJson, isSha256Hex, sha256 } from '../util/canonical.js';
import { digestHex, isOciDigest } from './digest-stream.js';
import type { LayerInfo } from './layer.js';
import type { TarEntry } from './tar-entries.js';

export interface LayerMemo {
  /** Where the records are kept (e.g. `<cache>/layers`). */
  dir: string;
  /** The content store's unmodified blob of this sha256 (hex) and size, or null (RunContext.storedBlob). */
  storedBlob(sha256: string, size: number): string | null;
  /** Part of every key: the writer's version, so a changed writer makes its layers anew. */
  version: string;
}

export interface RecalledLayer {
  /** The stored blob, to link into the image. */
  blob: string;
  recorded: { digest: string; diffId: string; uncompressedSize: number; stored: true };
}

/**
 * A source file modified this recently could change again within the same
 * clock tick unseen (git's racy-clean rule): such a layer is not remembered.
 */
const RACY_MS = 2000;

/**
 * The key of a layer made from `entries` with the writer's settings `how`
 * (compression, level, the entries' mtime, the writer's version), or null
 * when it cannot be keyed safely: a source is missing, is not a regular
 * file, or was modified too recently.
 */
export function layerKey(entries: readonly TarEntry[], how: Readonly<Record<string, string | number>>, now = Date.now()): string | null {
  const rows: unknown[] = [];
  for (const e of entries) {
    let src: string | null = null;
    if (e.type === 'file' && e.source) {
      const st = lstatSync(e.source, { bigint: true, throwIfNoEntry: false });
      if (!st?.isFile() || Number(st.size) !== e.size) return null;
      if (Math.floor(Number(st.mtimeMs) / 1000) === BLOB_MTIME && st.birthtimeNs > 0n) {
        // a content-store blob (a restored or captured output): any write changes its mtime from
        // the sentinel, while its ctime changes each time a workspace links it, so it is keyed by
        // its birth time instead, which also tells a reused inode number from the old file
        src = `${st.dev}:${st.ino}:${st.size}:${st.birthtimeNs}:stored`;
      } else {
        if (now - Number(st.mtimeMs) < RACY_MS || now - Number(st.ctimeMs) < RACY_MS) return null;
        src = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
      }
    }
    rows.push([e.path, e.type, e.mode, e.size, e.target ?? null, src]);
  }
  return sha256(canonicalJson({ v: 1, ...how, entries: rows }));
}

const recordPath = (dir: string, key: string) => join(dir, `${key}.json`);

const isSize = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/**
 * A layer's digests as some earlier pass recorded them (a layer record, a
 * snapshot's manifest), when well-formed: both sha256 digests and the tar's
 * size. Null for anything else.
 */
export function recordedDigests(r: unknown): { digest: string; diffId: string; uncompressedSize: number } | null {
  if (!r || typeof r !== 'object') return null;
  const { digest, diffId, uncompressedSize } = r as Record<string, unknown>;
  return isOciDigest(digest) && isOciDigest(diffId) && isSize(uncompressedSize) ? { digest, diffId, uncompressedSize } : null;
}

/** The record at `path` (a plain file of a well-formed layer record), or null. */
function readRecord(path: string): { digest: string; diffId: string; uncompressedSize: number; size: number } | null {
  try {
    if (!lstatSync(path).isFile()) return null;
    const r = JSON.parse(readFileSync(path, 'utf8')) as { size?: unknown };
    const d = recordedDigests(r);
    return d && isSize(r.size) ? { ...d, size: r.size } : null;
  } catch {
    return null;
  }
}

/** The layer remembered under `key`, when its record is sound and the store still has its blob. */
export function recallLayer(memo: LayerMemo, key: string): RecalledLayer | null {
  const r = readRecord(recordPath(memo.dir, key));
  const blob = r && memo.storedBlob(digestHex(r.digest), r.size);
  return blob ? { blob, recorded: { digest: r.digest, diffId: r.diffId, uncompressedSize: r.uncompressedSize, stored: true } } : null;
}

/**
 * Remove from `dir` the records whose blob `stored(hex)` says the store no
 * longer has, and everything that is not a record (temp files of runs that
 * died an hour ago or more): a record is only a pointer into the store
 * (`cache gc`). Returns how many went.
 */
export function pruneLayerRecords(dir: string, stored: (hex: string) => boolean): number {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const f of names) {
    const p = join(dir, f);
    let keep = false;
    if (f.endsWith('.json') && isSha256Hex(f.slice(0, -5))) {
      const r = readRecord(p);
      keep = !!r && stored(digestHex(r.digest));
    } else if (f.includes('.json.tmp-')) {
      const st = lstatSync(p, { throwIfNoEntry: false });
      keep = !!st?.isFile() && Date.now() - st.mtimeMs < 3600_000;
    }
    if (!keep) {
      rmSync(p, { recursive: true, force: true });
      removed++;
    }
  }
  return removed;
}

/** Remember a layer just written under `key` (atomically; a failure to write is not an error). */
export function rememberLayer(memo: LayerMemo, key: string, layer: Pick<LayerInfo, 'digest' | 'diffId' | 'size' | 'uncompressedSize'>): void {
  const dest = recordPath(memo.dir, key);
  const tmp = `${dest}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    mkdirSync(memo.dir, { recursive: true });
    const { digest, diffId, size, uncompressedSize } = layer;
    writeFileSync(tmp, JSON.stringify({ digest, diffId, size, uncompressedSize }) + '\n', { flag: 'wx', mode: 0o644 });
    renameSync(tmp, dest);
  } catch {
    try {
      rmSync(tmp, { force: true });
    } catch {}
  }
}
