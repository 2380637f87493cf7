/**
 * SHA-256 of many files on every core. Node's hash runs on the calling
 * thread, so a pool of worker threads (plain JS, no loader needed) each
 * reads and hashes batches of files with one reused buffer.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { createHash } from 'node:crypto';
import { openSync, readSync, closeSync } from 'node:fs';

const WORKER_SRC = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const buf = Buffer.allocUnsafe(1 << 20);
parentPort.on('message', ({ id, paths }) => {
  const out = [];
  for (const p of paths) {
    try {
      const fd = fs.openSync(typeof p === 'string' ? p : Buffer.from(p), 'r');
      const h = createHash('sha256');
      let n, size = 0;
      while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) { h.update(n === buf.length ? buf : buf.subarray(0, n)); size += n; }
      fs.closeSync(fd);
      out.push({ digest: h.digest('hex'), size });
    } catch (e) { out.push({ error: String(e && e.message || e) }); }
  }
  parentPort.postMessage({ id, out });
});
`;

export interface FileDigest {
  digest: string;
  size: number;
}

/** Hash one file on this thread (small sets, or when the pool is not worth starting). */
export function hashFileSync(path: string | Buffer, buf = Buffer.allocUnsafe(1 << 20)): FileDigest {
  const fd = openSync(path, 'r');
  try {
    const h = createHash('sha256');
    let n: number;
    let size = 0;
    while ((n = readSync(fd, buf, 0, buf.length, null)) > 0) {
      h.update(n === buf.length ? buf : buf.subarray(0, n));
      size += n;
    }
    return { digest: h.digest('hex'), size };
  } finally {
    closeSync(fd);
  }
}

/**
 * Hash `files` (with their sizes, for balancing) using up to `threads`
 * workers. `onProgress` gets bytes hashed so far.
 */
export async function hashFiles(
  files: readonly { path: string | Buffer; size: number }[],
  opts: { threads?: number; onProgress?: (bytes: number) => void } = {},
): Promise<FileDigest[]> {
  const total = files.reduce((a, f) => a + f.size, 0);
  const threads = Math.min(opts.threads ?? availableParallelism(), Math.max(1, Math.ceil(total / (32 << 20))), files.length);
  if (threads <= 1 || files.length === 0) {
    const buf = Buffer.allocUnsafe(1 << 20);
    let done = 0;
    return files.map((f) => {
      const d = hashFileSync(f.path, buf);
      done += d.size;
      opts.onProgress?.(done);
      return d;
    });
  }
  // batches of ~16 MB or 256 files keep messages few and work balanced
  const batches: number[][] = [];
  let cur: number[] = [];
  let curBytes = 0;
  files.forEach((f, i) => {
    cur.push(i);
    curBytes += f.size;
    if (curBytes >= 16 << 20 || cur.length >= 256) {
      batches.push(cur);
      cur = [];
      curBytes = 0;
    }
  });
  if (cur.length) batches.push(cur);
  const results: FileDigest[] = new Array(files.length);
  let next = 0;
  let done = 0;
  const workers = Array.from({ length: threads }, () => new Worker(WORKER_SRC, { eval: true }));
  try {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const send = () => {
              if (next >= batches.length) return resolve();
              const id = next++;
              w.postMessage({ id, paths: batches[id]!.map((i) => files[i]!.path) });
            };
            w.on('message', ({ id, out }: { id: number; out: ({ digest: string; size: number } | { error: string })[] }) => {
              const idx = batches[id]!;
              for (let k = 0; k < idx.length; k++) {
                const r = out[k]!;
                if ('error' in r) return reject(new Error(`${String(files[idx[k]!]!.path)}: ${r.error}`));
                results[idx[k]!] = r;
                done += r.size;
              }
              opts.onProgress?.(done);
              send();
            });
            w.on('error', reject);
            send();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}
