import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobDownload } from './backend.js';

/**
 * Write `source` to `dest` while hashing it: a multi-GB blob passes through
 * in chunks, never held whole. The file is fsynced before it is reported
 * complete, since it will be renamed into the store.
 */
export async function streamToFile(source: Readable, dest: string): Promise<BlobDownload> {
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
  });
  const out = createWriteStream(dest, { flush: true });
  await pipeline(source, tap, out);
  return { bytes, sha256: hash.digest('hex') };
}
