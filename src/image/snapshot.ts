import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, rm, writeFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RocmflowError } from '../errors.js';
import { extract } from '../archive/extract.js';
import { EXPORT_ZSTD_LEVEL, LAYER_ZSTD_LEVEL } from './compress.js';
import { writeLayer, type LayerInfo } from './layer.js';
import {
  diffManifest, formatManifest, manifestFile, manifestPathFor, MANIFEST_FORMAT, readManifest, totalsOf,
  type ManifestFile, type SnapshotManifest,
} from './snapshot-manifest.js';
import { archivePath, collectTree, type TarEntry } from './tar-entries.js';
import { defaultMtime } from './tar-writer.js';

export { manifestPathFor, readManifest, type SnapshotManifest, type ManifestFile } from './snapshot-manifest.js';
export { EXPORT_ZSTD_LEVEL, LAYER_ZSTD_LEVEL };

export interface SnapshotOptions {
  /** The directory to snapshot. */
  source: string;
  /** The archive to write (`.tar.zst`). */
  out: string;
  /** Where the manifest goes. @default `out` with `.tar.zst` replaced by `.manifest.json` */
  manifestOut?: string;
  /** mtime of every entry. @default SOURCE_DATE_EPOCH, else 0 */
  mtime?: number;
  /** zstd level. @default 3 */
  level?: number;
  /** Worker threads and zstd processes at once; the archive does not depend on it. @default availableParallelism() */
  threads?: number;
  /**
   * A path the tree goes under inside the archive (e.g. `opt/rocm`, so the
   * archive is an image layer as is); its directories are entries too, the
   * last with the source directory's mode, the others 0755. @default none
   */
  prefix?: string;
  /** A version id recorded in the manifest (e.g. the ROCm build id). */
  version?: string;
  signal?: AbortSignal;
  /** Content bytes archived so far, and the total. */
  onProgress?(done: number, total: number): void;
}

/** A written snapshot; the archive doubles as an OCI layer (`diffId`, `digest`, `size`). */
export interface SnapshotInfo extends Pick<LayerInfo, 'mediaType' | 'digest' | 'size' | 'diffId' | 'uncompressedSize'> {
  archive: string;
  manifest: string;
  version: string | null;
  totals: SnapshotManifest['totals'];
}

/**
 * A deterministic tar.zst of `source` plus its manifest: entries sorted by
 * path bytes, owners 0/0, one fixed mtime, modes and links kept. The same
 * tree gives the same bytes wherever it lies and whatever its mtimes.
 */
export async function snapshot(opts: SnapshotOptions): Promise<SnapshotInfo> {
  const manifestOut = opts.manifestOut ?? manifestPathFor(opts.out);
  const mtime = opts.mtime ?? defaultMtime();
  await mkdir(dirname(opts.out), { recursive: true });
  await mkdir(dirname(manifestOut), { recursive: true });
  const hashes = new Map<string, string>();
  const layer = await writeLayer({
    from: opts.prefix ? { entries: await prefixed(opts.source, opts.prefix) } : opts.source,
    out: opts.out,
    compression: 'zstd',
    level: opts.level ?? LAYER_ZSTD_LEVEL,
    mtime,
    threads: opts.threads,
    signal: opts.signal,
    onProgress: opts.onProgress,
    onFile: (e, sha) => hashes.set(e.path, sha),
  });
  const files = layer.entries.map((e) => manifestFile(e, hashes.get(e.path)));
  const manifest: SnapshotManifest = {
    format: MANIFEST_FORMAT,
    version: opts.version ?? null,
    mtime,
    layer: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size, diffId: layer.diffId, uncompressedSize: layer.uncompressedSize },
    totals: totalsOf(files),
    files,
  };
  const tmp = `${manifestOut}.tmp-${process.pid}`;
  await writeFile(tmp, formatManifest(manifest));
  await rename(tmp, manifestOut);
  return infoOf(manifest, opts.out, manifestOut);
}

/** The tree's entries under `prefix`, with the prefix's own directories first. */
async function prefixed(source: string, prefix: string): Promise<TarEntry[]> {
  const base = archivePath(prefix);
  const entries = await collectTree(source);
  const parts = base.split('/');
  const dirs: TarEntry[] = parts.map((_, i) => ({ path: parts.slice(0, i + 1).join('/'), type: 'dir', mode: 0o755, size: 0 }));
  dirs[dirs.length - 1]!.mode = (await lstat(source)).mode & 0o7777;
  // hardlink targets are archive paths too; symlink targets stay as they are
  return [...dirs, ...entries.map((e) => ({ ...e, path: `${base}/${e.path}`, ...(e.type === 'hardlink' ? { target: `${base}/${e.target}` } : {}) }))];
}

/** Read a snapshot's manifest (next to it unless given). */
export async function snapshotInfo(archive: string, manifestPath = manifestPathFor(archive)): Promise<SnapshotInfo> {
  return infoOf(await readManifest(manifestPath), archive, manifestPath);
}

export interface RestoreOptions {
  /** @default next to the snapshot */
  manifest?: string;
  signal?: AbortSignal;
  onProgress?(done: number, total: number): void;
}

/**
 * Extract a snapshot into `destDir` (new or empty) and verify it against its
 * manifest: the archive's digest and diff_id, and every path's type, mode,
 * size, sha256 and link target. On any mismatch the restored tree is removed
 * and a RocmflowError lists the differences.
 */
export async function restoreSnapshot(archive: string, destDir: string, opts: RestoreOptions = {}): Promise<SnapshotInfo> {
  const manifestPath = opts.manifest ?? manifestPathFor(archive);
  const manifest = await readManifest(manifestPath);
  const existed = await readdir(destDir).then(() => true, () => false);
  const hashes = new Map<string, string>();
  const cleanup = async () => {
    if (!existed) await rm(destDir, { recursive: true, force: true });
    else for (const name of await readdir(destDir).catch(() => [])) await rm(`${destDir}/${name}`, { recursive: true, force: true });
  };
  // the one safe extractor: a staging directory renamed into place, so a failure leaves nothing behind
  const x = await extract({
    archive, dest: destDir, stripTopDir: false, keepSetuid: true, signal: opts.signal,
    onFile: (e, sha) => hashes.set(e.path, sha),
    onProgress: opts.onProgress && ((read, total) => opts.onProgress!(Math.round((read / Math.max(1, total)) * manifest.totals.bytes), manifest.totals.bytes)),
  }).catch((e) => {
    if (e instanceof RocmflowError && e.code === 'E_DEST_NOT_EMPTY')
      throw new RocmflowError('E_DEST_NOT_EMPTY', `${destDir} is not empty; restore into a new or empty directory`, { exitCode: 2 });
    throw e;
  });
  const digests = x.digests;
  const entries = x.entries;
  const problems: string[] = [];
  if (digests.compressed.digest !== manifest.layer.digest)
    problems.push(`archive digest ${digests.compressed.digest}, manifest says ${manifest.layer.digest}`);
  if (digests.uncompressed.digest !== manifest.layer.diffId)
    problems.push(`tar digest (diff_id) ${digests.uncompressed.digest}, manifest says ${manifest.layer.diffId}`);
  problems.push(...diffManifest(manifest.files, entries.map((e) => manifestFile(e, hashes.get(e.path)))));
  if (problems.length) {
    await cleanup();
    throw new RocmflowError('E_SNAPSHOT_MISMATCH', `${archive} does not match ${manifestPath} (${problems.length} difference${problems.length > 1 ? 's' : ''})`, { details: problems.slice(0, 50) });
  }
  return infoOf(manifest, archive, manifestPath);
}

/**
 * Check a directory on disk against a snapshot manifest (e.g. a restored
 * tree later on). Returns the differences, one line each; empty when equal.
 */
export async function verifyTree(dir: string, manifest: SnapshotManifest): Promise<string[]> {
  const entries = await collectTree(dir);
  const actual: ManifestFile[] = [];
  for (const e of entries) actual.push(manifestFile(e, e.type === 'file' ? await fileSha256(e.source!) : undefined));
  return diffManifest(manifest.files, actual);
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function infoOf(m: SnapshotManifest, archive: string, manifest: string): SnapshotInfo {
  return { archive, manifest, version: m.version, totals: m.totals, ...m.layer };
}
