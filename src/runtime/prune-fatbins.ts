/**
 * Prune the device code of an assembled root's GPU libraries to the target
 * (src/fatbin's prune: dropped code objects become holes, every offset the
 * loader reads stays where it was), then bring the manifest up to date and
 * record, per file, what was kept and dropped and the bytes before and after.
 * Run after stripping (strip rewrites a file densely, filling the holes) and
 * before verification, so the pruned root is the one proven to work.
 */
import { link, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { availableParallelism } from 'node:os';
import { archesOf } from '../fatbin/arches-of.js';
import { keepFor } from '../fatbin/coverage.js';
import { pruneFile } from '../fatbin/prune-file.js';
import type { FatbinFormat } from '../fatbin/types.js';
import type { ManifestEntry, RootManifest } from './assemble.js';
import { isRocmflowError } from '../errors.js';
import { sha256File } from '../util/sha256-file.js';
import { eachLimited } from '../util/limiter.js';

/** What to keep: the target's code (plus its generic ISA / PTX when `fallback`), or an explicit list of arches. */
export interface PruneRootOptions {
  /** The target: an AMD arch (`gfx1100`) or a CUDA capability (`9.0`, `sm_90`). */
  target: string;
  /** Keep exactly these arches instead of what covers the target. */
  keep?: readonly string[];
  /** Keep the generic ISA (gfx11-generic) or the newest PTX that covers the target. @default true */
  fallback?: boolean;
  signal?: AbortSignal;
  onProgress?(done: number, total: number): void;
}

/** One file's prune, or why it was left alone. */
export interface PrunedFile {
  /** In-root path. */
  path: string;
  format: FatbinFormat;
  /** Arches the file had, with their bytes of code. */
  arches: Record<string, number>;
  /** Arches kept; empty when the file was left alone. */
  keep: string[];
  /** Bytes of code dropped per arch. */
  dropped: Record<string, number>;
  /** Apparent size (unchanged by pruning: offsets do not move) and bytes allocated on disk before and after. */
  apparent: number;
  allocatedBefore: number;
  allocatedAfter: number;
  /** Containers left whole (a recompressed bundle that would not fit). */
  leftWhole: number;
  /** Set when the file was not pruned, and why. */
  skipped?: string;
}

const SHARED_LIB = /\.so(\.\d+)*$/;

const PRUNE_CONCURRENCY = Math.min(4, availableParallelism());

/** Prune every shared library of `rootfs` with device code; returns the updated manifest (also written to `manifestPath`) and what was done per file. */
export async function pruneRootFatbins(
  rootfs: string, manifest: RootManifest, manifestPath: string, opts: PruneRootOptions,
): Promise<{ manifest: RootManifest; files: PrunedFile[]; /** Libraries left whole because their ELF or device code could not be parsed: the error of each. */ unreadable: string[] }> {
  const linksTo = new Map<string, string[]>();
  for (const e of manifest.entries) if (e.hardlinkOf) linksTo.set(e.hardlinkOf, [...(linksTo.get(e.hardlinkOf) ?? []), e.path]);
  const candidates = manifest.entries.filter((e) => e.type === 'file' && !e.hardlinkOf && SHARED_LIB.test(e.path));
  const total = candidates.reduce((n, e) => n + e.size, 0);
  let done = 0;
  const updated = new Map<string, ManifestEntry>();
  // the files are independent: a few at a time, as each is mostly reading and writing one large file
  const results: Array<PrunedFile | undefined> = [];
  const unreadableAt: Array<string | undefined> = [];
  const one = async (e: ManifestEntry, i: number): Promise<void> => {
    opts.signal?.throwIfAborted();
    const file = posix.join(rootfs, e.path);
    let listing;
    try {
      listing = await archesOf(file, { signal: opts.signal });
    } catch (err) {
      // a library rocmflow cannot parse is shipped as it is, and said so
      if (!isRocmflowError(err) || err.code !== 'E_FATBIN_MALFORMED') throw err;
      unreadableAt[i] = err.message;
      return;
    }
    if (!listing.format) return;
    const found = Object.keys(listing.arches);
    const before = await stat(file);
    const base = { path: e.path, format: listing.format, arches: listing.arches, apparent: before.size, allocatedBefore: before.blocks * 512, allocatedAfter: before.blocks * 512, leftWhole: 0, dropped: {} };
    const keep = opts.keep ? found.filter((a) => opts.keep!.some((k) => a === k || a.startsWith(`${k}:`))) : keepFor(found, opts.target, { generic: opts.fallback ?? true, ptx: opts.fallback ?? true });
    if (found.length === 0) {
      results[i] = { ...base, keep: [], skipped: 'no code objects (device code elsewhere, e.g. in .kpack archives)' };
      return;
    }
    if (keep.length === 0) {
      // pruning would remove every code object: leave it as shipped, the coverage check names it
      results[i] = { ...base, keep: [], skipped: `no code for ${opts.keep ? opts.keep.join(',') : opts.target}: left whole` };
      return;
    }
    if (keep.length === found.length) {
      results[i] = { ...base, keep, skipped: 'carries only kept arches' };
      return;
    }
    // hard links of this file: pruning writes a new file under the old name, so link them again afterwards
    const r = await pruneFile(file, file, { keep, signal: opts.signal, listing });
    for (const other of linksTo.get(e.path) ?? []) {
      const to = posix.join(rootfs, other);
      const tmp = `${to}.rocmflow-link-${process.pid}`;
      await link(file, tmp);
      await rename(tmp, to).catch(async (err) => {
        await unlink(tmp).catch(() => {});
        throw err;
      });
    }
    results[i] = { ...base, keep: r.keep, dropped: r.dropped, allocatedAfter: r.sizes.allocated, leftWhole: r.leftWhole.length };
    updated.set(e.path, {
      ...e, size: r.sizes.apparent, sha256: await sha256File(file),
      pruned: { keep: r.keep, dropped: r.dropped, allocatedBefore: before.blocks * 512, allocatedAfter: r.sizes.allocated },
    });
  };
  // every file in flight finishes (or fails) before the first failure is reported: nothing is left writing
  await eachLimited(candidates, PRUNE_CONCURRENCY, async (e, i) => {
    await one(e, i);
    opts.onProgress?.((done += e.size), total);
  });
  const files = results.filter((r): r is PrunedFile => !!r);
  const unreadable = unreadableAt.filter((u): u is string => !!u);
  const entries = manifest.entries.map((e) => updated.get(e.path) ?? e);
  const primaries = entries.filter((e) => e.type === 'file' && !e.hardlinkOf);
  const result: RootManifest = { entries, files: primaries.length, bytes: primaries.reduce((n, e) => n + e.size, 0) };
  await writeFile(manifestPath, JSON.stringify(result, null, 2) + '\n');
  return { manifest: result, files, unreadable };
}

/** Bytes allocated on disk (st_blocks × 512) by a root's regular files, hard links counted once. */
export async function allocatedBytes(rootfs: string, manifest: RootManifest): Promise<number> {
  let n = 0;
  for (const e of manifest.entries) if (e.type === 'file' && !e.hardlinkOf) n += (await stat(posix.join(rootfs, e.path))).blocks * 512;
  return n;
}
