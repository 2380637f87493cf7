import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** Feed a file into `hash` as a stream (files here are gigabytes: never read them whole). */
export async function hashInto(hash: Hash, path: string): Promise<number> {
  let n = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    n += (chunk as Buffer).length;
  }
  return n;
}

/** Hex SHA-256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await hashInto(h, path);
  return h.digest('hex');
}
