import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { RocmflowError } from '../errors.js';
import { finished } from 'node:stream/promises';
import { createCompressor, LAYER_ZSTD_LEVEL, type Compression } from './compress.js';
import { collectTree, planEntries, type TarEntry, type TarSource } from './tar-entries.js';
import { writeTar } from './tar-writer.js';
import { writeTarZstd } from './tar-zstd-writer.js';

/** OCI media type of a layer blob for each compression. */
export const LAYER_MEDIA_TYPES: Record<Compression, string> = {
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  none: 'application/vnd.oci.image.layer.v1.tar',
};

/** A written layer blob: what an OCI manifest and config need about it. */
export interface LayerInfo {
  /** The blob file. */
  path: string;
  mediaType: string;
  compression: Compression;
  /** sha256 of the blob (the compressed bytes). */
  digest: string;
  /** Size of the blob in bytes. */
  size: number;
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: string;
  /** Size of the uncompressed tar. */
  uncompressedSize: number;
}

export interface WriteLayerOptions {
  /** A directory to archive whole, or an explicit list of entries. */
  from: string | readonly TarSource[] | { entries: readonly TarEntry[] };
  /** The blob to write (written to a temp name and renamed when complete). */
  out: string;
  compression?: Compression;
  level?: number;
  mtime?: number;
  signal?: AbortSignal;
  onFile?(entry: TarEntry, sha256: string): void;
  /** Threads for zstd layers (see writeTarZstd). @default availableParallelism() */
  threads?: number;
  /** Content bytes archived so far, and the total. */
  onProgress?(done: number, total: number): void;
}

/** Resolve a layer's source into the sorted entry list it will hold. */
export async function layerEntries(from: WriteLayerOptions['from']): Promise<readonly TarEntry[]> {
  if (typeof from === 'string') return collectTree(from);
  if (Array.isArray(from)) return planEntries(from as readonly TarSource[]);
  return (from as { entries: readonly TarEntry[] }).entries;
}

/**
 * tar + compress a tree in one streaming pass, hashing both sides; zstd
 * layers on every core (writeTarZstd), gzip and plain tar as one stream. The blob
 * appears at `out` only once it is complete; a failed or cancelled run leaves
 * nothing behind.
 */
export async function writeLayer(opts: WriteLayerOptions): Promise<LayerInfo & { entries: readonly TarEntry[] }> {
  const entries = await layerEntries(opts.from);
  const total = entries.reduce((n, e) => n + e.size, 0);
  const compression = opts.compression ?? 'zstd';
  const tmp = `${opts.out}.tmp-${process.pid}`;
  if (compression === 'zstd') {
    try {
      const r = await writeTarZstd(entries, tmp, {
        level: opts.level ?? LAYER_ZSTD_LEVEL,
        mtime: opts.mtime,
        threads: opts.threads,
        signal: opts.signal,
        onFile: opts.onFile,
        onProgress: opts.onProgress && ((done) => opts.onProgress!(done, total)),
      });
      await rename(tmp, opts.out);
      return { path: opts.out, mediaType: LAYER_MEDIA_TYPES.zstd, compression, digest: r.compressed.digest, size: r.compressed.size, diffId: r.uncompressed.digest, uncompressedSize: r.uncompressed.size, entries };
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }
  const file = createWriteStream(tmp);
  const c = createCompressor(file, { format: compression, level: opts.level, signal: opts.signal });
  try {
    await writeTar(entries, c.input, {
      mtime: opts.mtime,
      signal: opts.signal,
      onFile: opts.onFile,
      onProgress: opts.onProgress && ((done) => opts.onProgress!(done, total)),
    });
    c.input.end();
    const r = await c.done;
    await finished(file);
    await rename(tmp, opts.out);
    return {
      path: opts.out,
      mediaType: LAYER_MEDIA_TYPES[compression],
      compression,
      digest: r.compressed.digest,
      size: r.compressed.size,
      diffId: r.uncompressed.digest,
      uncompressedSize: r.uncompressed.size,
      entries,
    };
  } catch (e) {
    c.input.destroy();
    file.destroy();
    const why = await c.done.then(() => null, (err: unknown) => err);
    await rm(tmp, { force: true });
    // the compressor's own failure (e.g. zstd missing) explains a write error (EPIPE) better
    throw why instanceof RocmflowError && !(e instanceof RocmflowError) ? why : e;
  }
}
