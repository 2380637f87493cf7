/**
 * Cache maintenance: listing, verification (re-hash every blob, evict bad
 * ones and the entries that need them) and garbage collection down to a
 * size (least recently used entries first, then unreferenced blobs).
 */
import { lstatSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ActionEntry } from './action-entry.js';
import type { CacheIndex } from './cache-index.js';
import type { ContentStore } from './content-store.js';
import { isSha256Hex } from '../util/canonical.js';
import { pruneLayerRecords } from '../image/layer-memo.js';

export interface BlobInfo {
  digest: string;
  size: number;
}

const SHARD = /^[0-9a-f]{2}$/;

/**
 * Every blob in the store. Anything else under `cas/` (a stray file, a
 * misnamed directory, a blob in the wrong shard) is not a blob: it is left
 * alone and reported through `onStray` with its path.
 */
export function listBlobs(store: ContentStore, onStray?: (path: string) => void): BlobInfo[] {
  const out: BlobInfo[] = [];
  let dirs: string[] = [];
  try {
    dirs = readdirSync(store.dir);
  } catch {
    return out;
  }
  for (const d of dirs) {
    const dir = join(store.dir, d);
    if (!SHARD.test(d) || !lstatSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
      onStray?.(dir);
      continue;
    }
    for (const f of readdirSync(dir)) {
      if (!isSha256Hex(f) || f.slice(0, 2) !== d) {
        onStray?.(join(dir, f));
        continue;
      }
      try {
        out.push({ digest: f, size: lstatSync(join(dir, f)).size });
      } catch {}
    }
  }
  return out;
}

/** The one-line warning for a stray path under `cas/`. */
export function strayWarning(path: string): string {
  return `warning: ${path} is not a cache blob; ignored (remove it, or run \`rocmflow cache gc\` after moving it away)`;
}

export async function verifyCache(
  index: CacheIndex,
  store: ContentStore,
  onProgress?: (done: number, total: number) => void,
  onStray?: (path: string) => void,
): Promise<{ blobs: number; bad: string[]; entriesDropped: string[]; statesDropped: string[] }> {
  const blobs = listBlobs(store, onStray);
  const bad: string[] = [];
  const badInodes = new Set<number>();
  blobs.forEach((b, i) => {
    const ino = lstatSync(store.path(b.digest), { throwIfNoEntry: false })?.ino;
    if (!store.verify(b.digest)) {
      bad.push(b.digest);
      if (ino !== undefined) badInodes.add(ino);
    }
    onProgress?.(i + 1, blobs.length);
  });
  const entriesDropped = await dropEntriesMissingBlobs(index, store);
  const statesDropped = badInodes.size ? await dropStatesSharing(index, badInodes) : [];
  return { blobs: blobs.length, bad, entriesDropped, statesDropped };
}

/**
 * Outputs restored or captured as hard links share their blob's inode: when
 * that blob was corrupt, so are they. The workspace states recording such
 * an inode are dropped, so the next run does not call those outputs fresh.
 */
async function dropStatesSharing(index: CacheIndex, inodes: Set<number>): Promise<string[]> {
  const dropped: string[] = [];
  for (const [key, st] of await index.entries<{ disk?: Record<string, string> }>('state')) {
    const shares = Object.values(st?.disk ?? {}).some((stamp) => stamp.startsWith('f:') && inodes.has(Number(stamp.slice(stamp.lastIndexOf(':') + 1))));
    if (shares) {
      await index.delete('state', key);
      dropped.push(key);
    }
  }
  return dropped;
}

async function dropEntriesMissingBlobs(index: CacheIndex, store: ContentStore): Promise<string[]> {
  const dropped: string[] = [];
  for (const [key, e] of await index.entries<ActionEntry>('action')) {
    if (e.manifest.entries.some((x) => x.type === 'file' && !store.has(x.sha256!))) {
      await index.delete('action', key);
      dropped.push(key);
    }
  }
  return dropped;
}

export async function gcCache(
  index: CacheIndex,
  store: ContentStore,
  maxBytes: number,
  onStray?: (path: string) => void,
): Promise<{ before: number; after: number; entriesRemoved: number; blobsRemoved: number; layerRecordsRemoved: number }> {
  // temp files of runs that died
  try {
    for (const f of readdirSync(join(store.dir, '..', 'tmp'))) {
      const p = join(store.dir, '..', 'tmp', f);
      if (Date.now() - statSync(p).mtimeMs > 3600_000) rmSync(p, { recursive: true, force: true });
    }
  } catch {}
  const blobs = new Map(listBlobs(store, onStray).map((b) => [b.digest, b.size]));
  const before = [...blobs.values()].reduce((a, b) => a + b, 0);
  const entries = await index.entries<ActionEntry>('action');
  const used = new Map((await index.entries<number>('stats')).filter(([k]) => k.startsWith('used:')).map(([k, v]) => [k.slice(5), v]));
  const lastUse = (key: string, e: ActionEntry) => used.get(key) ?? Date.parse(e.createdAt);
  entries.sort((a, b) => lastUse(b[0], b[1]) - lastUse(a[0], a[1]));
  // keep the most recently used entries whose blobs fit; a blob shared by kept entries counts once
  const kept = new Set<string>();
  let size = 0;
  let entriesRemoved = 0;
  for (const [key, e] of entries) {
    const need = e.manifest.entries.filter((x) => x.type === 'file' && !kept.has(x.sha256!));
    const extra = [...new Set(need.map((x) => x.sha256!))].reduce((a, d) => a + (blobs.get(d) ?? 0), 0);
    if (size + extra <= maxBytes) {
      size += extra;
      for (const x of need) kept.add(x.sha256!);
      if (e.log) kept.add(e.log);
    } else {
      await index.delete('action', key);
      entriesRemoved++;
    }
  }
  let blobsRemoved = 0;
  for (const d of blobs.keys())
    if (!kept.has(d)) {
      store.evict(d);
      blobsRemoved++;
    }
  const after = listBlobs(store).reduce((a, b) => a + b.size, 0);
  return { before, after, entriesRemoved, blobsRemoved, layerRecordsRemoved: pruneLayerRecords(join(store.dir, '..', 'layers'), (hex) => store.has(hex)) };
}
