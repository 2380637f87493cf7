import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** Feed a file into `hash` as a stream (files here are gigabytes: never read them whole). Returns the bytes read. */
export async function hashInto(hash: Hash, path: string, opts: { onProgress?: (done: number) => void; signal?: AbortSignal } = {}): Promise<number> {
  let n = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, signal: opts.signal })) {
    hash.update(chunk as Buffer);
    n += (chunk as Buffer).length;
    opts.onProgress?.(n);
  }
  return n;
}

/** Hex SHA-256 of a file, streamed; `onProgress(bytesDone)` is called per chunk. */
export async function sha256File(path: string, onProgress?: (done: number) => void, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  await hashInto(h, path, { onProgress, signal });
  return h.digest('hex');
}
