/**
 * gzip on every core: the input is cut into 4 MiB pieces, worker threads
 * compress each into a gzip member of its own, and the members are written
 * in order. A run of members is one gzip file to every reader (RFC 1952;
 * gzip -d, Go's compress/gzip, which docker and podman use, Python, zlib's
 * gunzip). The output depends on the bytes and the level only, never on the
 * thread count, so it stays reproducible. Splitting costs the dictionary at
 * each cut: a few hundred bytes per 4 MiB.
 */
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';

const PIECE = 4 << 20;

const WORKER_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
const zlib = require('node:zlib');
parentPort.on('message', ({ id, buf }) => {
  try {
    const out = zlib.gzipSync(Buffer.from(buf), { level: workerData.level, memLevel: 9 });
    parentPort.postMessage({ id, out }, [out.buffer]);
  } catch (e) {
    parentPort.postMessage({ id, error: String(e && e.message || e) });
  }
});
`;

/** gzip options shared by the workers and the in-process path: the bytes depend on these alone. */
const gzipPiece = (b: Buffer, level: number) => gzipSync(b, { level, memLevel: 9 });

export interface ParallelGzipOptions {
  level: number;
  /** @default availableParallelism() */
  threads?: number;
}

/** A Transform that gzips what is written to it on up to `threads` worker threads. */
export class ParallelGzip extends Transform {
  private readonly level: number;
  private readonly threads: number;
  private workers: Worker[] = [];
  private idle: Worker[] = [];
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private nextId = 0;
  private nextOut = 0;
  private readonly results = new Map<number, Buffer>();
  private queue: Array<{ id: number; buf: Buffer }> = [];
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(opts: ParallelGzipOptions) {
    super();
    this.level = opts.level;
    this.threads = Math.max(1, opts.threads ?? availableParallelism());
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const pieces: Buffer[] = [];
    if (this.pendingBytes >= PIECE) {
      const all = Buffer.concat(this.pending, this.pendingBytes);
      let at = 0;
      for (; all.length - at >= PIECE; at += PIECE) pieces.push(all.subarray(at, at + PIECE));
      this.pending = at < all.length ? [all.subarray(at)] : [];
      this.pendingBytes = all.length - at;
    }
    for (const p of pieces) this.dispatch(p);
    // backpressure: no more than threads + 2 pieces in flight
    this.drainUntil(this.threads + 2).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    const rest = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    if (this.nextId === 0) {
      // one piece or less: not worth a thread; an empty input is still one (empty) gzip member
      try {
        this.push(gzipPiece(rest, this.level));
        cb();
      } catch (e) {
        cb(e as Error);
      }
      return;
    }
    if (rest.length) this.dispatch(rest);
    this.drainUntil(0).then(() => cb(), cb).finally(() => this.stop());
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.stop();
    cb(err);
  }

  private stop(): void {
    for (const w of this.workers) void w.terminate();
    this.workers = [];
    this.idle = [];
  }

  private dispatch(piece: Buffer): void {
    // a copy in memory of its own, which the worker takes over: the piece may share memory with
    // the writer's buffers, and a small Buffer.from() copy would lie in Node's shared pool
    const own = Buffer.allocUnsafeSlow(piece.length);
    piece.copy(own);
    this.queue.push({ id: this.nextId++, buf: own });
    this.pump();
  }

  private pump(): void {
    while (this.queue.length) {
      let w = this.idle.pop();
      if (!w && this.workers.length < this.threads) w = this.spawn();
      if (!w) return;
      const job = this.queue.shift()!;
      w.postMessage({ id: job.id, buf: job.buf.buffer }, [job.buf.buffer as ArrayBuffer]);
    }
  }

  private spawn(): Worker {
    const w = new Worker(WORKER_SRC, { eval: true, workerData: { level: this.level } });
    w.on('message', (m: { id: number; out?: Uint8Array; error?: string }) => {
      if (m.error) this.fail(new Error(`gzip: ${m.error}`));
      else this.results.set(m.id, Buffer.from(m.out!.buffer, m.out!.byteOffset, m.out!.byteLength));
      this.idle.push(w);
      this.pump();
      this.flushResults();
    });
    w.on('error', (e) => this.fail(e));
    this.workers.push(w);
    return w;
  }

  private flushResults(): void {
    while (this.results.has(this.nextOut)) {
      const b = this.results.get(this.nextOut)!;
      this.results.delete(this.nextOut++);
      this.push(b);
    }
    this.wake?.();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.wake?.();
  }

  /** Wait until no more than `n` pieces are unwritten. */
  private async drainUntil(n: number): Promise<void> {
    while (this.nextId - this.nextOut > n) {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
    if (this.failure) throw this.failure;
  }
}
