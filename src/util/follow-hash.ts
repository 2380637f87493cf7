/**
 * SHA-256 of a file while it is being written, on a worker thread: the
 * writer (another process, or this one's event loop) appends, and the
 * worker reads up to the current end, hashes, waits a moment when it has
 * caught up, and once told that the writer is done reads to the end once
 * more and answers. The bytes hashed are the bytes in the file, and the
 * writer's thread does no hashing at all.
 *
 * The worker reads through a descriptor the caller opened for reading
 * (threads share the process's descriptors) and keeps open until
 * `result` settles.
 */
import { Worker } from 'node:worker_threads';

const FOLLOW_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const h = require('node:crypto').createHash('sha256');
const flag = new Int32Array(workerData.flag);
const fd = workerData.fd;
const buf = Buffer.allocUnsafe(4 << 20);
let size = 0;
try {
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, size);
    if (n > 0) { h.update(buf.subarray(0, n)); size += n; continue; }
    const f = Atomics.load(flag, 0);
    if (f === 2) break;
    if (f === 1) {
      // the writer is done: what the file holds now is all of it
      const m = fs.readSync(fd, buf, 0, buf.length, size);
      if (m > 0) { h.update(buf.subarray(0, m)); size += m; continue; }
      parentPort.postMessage({ sha256: h.digest('hex'), size });
      break;
    }
    Atomics.wait(flag, 0, 0, 2);
  }
} catch (e) {
  parentPort.postMessage({ error: String(e && e.message || e) });
}
`;

export interface FileFollower {
  /** The file's SHA-256 (hex) and size, once `writerDone()` was called and the worker read to the end. */
  readonly result: Promise<{ sha256: string; size: number }>;
  /** Everything is written: read to the end and answer. */
  writerDone(): void;
  /** Stop without an answer (`result` rejects); the worker ends. */
  stop(): Promise<void>;
}

/** Start hashing the file open as `fd` (readable) from its start. */
export function followFile(fd: number): FileFollower {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(FOLLOW_SRC, { eval: true, workerData: { fd, flag: flag.buffer } });
  const set = (v: number) => {
    Atomics.store(flag, 0, v);
    Atomics.notify(flag, 0);
  };
  const result = new Promise<{ sha256: string; size: number }>((resolve, reject) => {
    worker.once('message', (m: { sha256: string; size: number; error?: string }) => (m.error ? reject(new Error(m.error)) : resolve(m)));
    worker.once('error', reject);
    worker.once('exit', () => reject(new Error('the hashing thread stopped before it answered')));
  });
  result.catch(() => {});
  return {
    result,
    writerDone: () => set(1),
    async stop() {
      set(2);
      await worker.terminate();
    },
  };
}
