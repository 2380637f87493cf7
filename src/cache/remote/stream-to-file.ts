import { createHash } from 'node:crypto';
import { closeSync, createWriteStream, openSync } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { followFile, type FileFollower } from '../../util/follow-hash.js';
import type { BlobDownload } from './backend.js';

/**
 * From this size up, a blob is hashed by a worker that follows the file as
 * it is written: receiving, writing and hashing then run side by side. A
 * thread costs a few milliseconds to start, so small blobs (most outputs
 * have thousands of them) are hashed on the way, inline.
 */
export const FOLLOW_FROM = 16 << 20;

/** A blob that is longer than the entry naming it says: refused before it fills the disk. */
export class OversizeBlob extends Error {
  constructor(readonly limit: number) {
    super(`longer than the ${limit} bytes its entry gives`);
    this.name = 'OversizeBlob';
  }
}

/** Counts what passes and stops the stream past `limit` bytes. */
function capped(limit: number, onChunk?: (chunk: Buffer) => void): Transform {
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (bytes > limit) return cb(new OversizeBlob(limit));
      onChunk?.(chunk);
      cb(null, chunk);
    },
  });
}

/**
 * Write `source` to `dest` while hashing it: a multi-GB blob passes through
 * in chunks, never held whole. The file is fsynced before it is reported
 * complete, since it will be renamed into the store. `expectedSize` (the
 * size the manifest or the server gives) picks how it is hashed; past
 * `limit` bytes (the size the entry gives) the download stops with
 * OversizeBlob, so a server that never ends its body cannot fill the disk.
 * The caller checks the digest and the size.
 */
export async function streamToFile(source: Readable, dest: string, expectedSize = 0, limit = Number.MAX_SAFE_INTEGER): Promise<BlobDownload> {
  if (expectedSize >= FOLLOW_FROM) return streamFollowed(source, dest, limit);
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = capped(limit, (chunk) => {
    hash.update(chunk);
    bytes += chunk.length;
  });
  const out = createWriteStream(dest, { flush: true });
  try {
    await pipeline(source, tap, out);
  } catch (e) {
    // the stream opens its file asynchronously: wait until it is closed, so that the caller's
    // removal of `dest` cannot come before the file is made
    if (!out.closed) await new Promise<void>((r) => out.once('close', () => r()));
    throw e;
  }
  return { bytes, sha256: hash.digest('hex') };
}

async function streamFollowed(source: Readable, dest: string, limit: number): Promise<BlobDownload> {
  // the follower reads through a descriptor of its own, which only this
  // function closes: the write stream owns (and on an error closes) its own,
  // so no descriptor number is ever closed twice or handed to another file
  const rfd = openSync(dest, 'w+');
  let follower: FileFollower | undefined;
  try {
    follower = followFile(rfd);
    // a deep write queue lets the stream gather the socket's small chunks
    // into one writev while the previous write is still in the kernel;
    // `flush` fsyncs before the stream closes, and the pipeline ends after that
    const out = createWriteStream(dest, { flags: 'r+', flush: true, highWaterMark: 8 << 20 });
    await pipeline(source, capped(limit), out);
    follower.writerDone();
    const { sha256, size } = await follower.result;
    return { bytes: size, sha256 };
  } finally {
    await follower?.stop();
    closeSync(rfd);
  }
}
