/**
 * A tar.zst written on every core. The tar stream is laid out up front from
 * the sorted entries and cut into segments at fixed offsets; a pool of
 * worker threads reads the files of each segment into shared buffers (and
 * hashes each file from those same bytes); the main thread passes the
 * filled segments, in order, to one `zstd -T<threads>` process, while one
 * more worker hashes them in order (the diff_id). zstd writes the file
 * itself, and a last worker follows the file as it grows and hashes it (the
 * blob digest): no compressed byte passes through the main thread. zstd's multithreaded
 * output does not depend on the thread count, so the archive has the same
 * bytes on 2 cores and on 64.
 *
 * Buffers are allocated once and reused in turn: fresh memory is what costs
 * most on some virtual machines (every first touch of a page is a fault).
 *
 * A file that fits in the segment it starts in is hashed there, from the
 * bytes that go into the archive; a file split over segments is hashed by a
 * separate job of the same pool, which reads it once more (from the page
 * cache, usually) and checks its size again.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { closeSync, openSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { RocmflowError } from '../errors.js';
import { followFile, type FileFollower } from '../util/follow-hash.js';
import { spawnZstd } from './compress.js';
import type { Digest } from './digest-stream.js';
import type { TarEntry } from './tar-entries.js';
import { BLOCK, defaultMtime, entryHeaders, MAX_OCTAL_SIZE } from './tar-writer.js';

/** Most reader threads (their buffers: (readers + 4) × SEGMENT). */
const MAX_READERS = 16;

/** Bytes of tar per segment read by one worker. */
export const SEGMENT = 8 << 20;

export interface WriteTarZstdOptions {
  /** zstd level 1..22. */
  level: number;
  /** mtime of every entry. @default SOURCE_DATE_EPOCH, else 0 */
  mtime?: number;
  /** Reader threads, and zstd's own threads. The archive does not depend on it. @default availableParallelism() */
  threads?: number;
  signal?: AbortSignal;
  /** Hash every regular file (sha256 hex) and report it here; costs one more pass over each file's bytes. */
  onFile?(entry: TarEntry, sha256: string): void;
  /** Content bytes archived so far. */
  onProgress?(bytes: number): void;
  /** Tar bytes per segment. The archive does not depend on it. @default SEGMENT */
  segment?: number;
}

/** Both digests of the written archive. */
export interface TarZstdResult {
  uncompressed: Digest;
  compressed: Digest;
}

type Piece = { h: Uint8Array } | { p: string; pos: number; len: number; file: number; whole: boolean };
interface Segment { size: number; pieces: Piece[]; content: number }

/** The tar stream's layout: segments of headers and file ranges, plus the files too big for one segment. */
function layout(entries: readonly TarEntry[], mtime: number, SEGMENT: number): { segments: Segment[]; split: number[] } {
  const segments: Segment[] = [];
  const split: number[] = [];
  let cur: Segment = { size: 0, pieces: [], content: 0 };
  const flush = () => {
    if (cur.size) segments.push(cur);
    cur = { size: 0, pieces: [], content: 0 };
  };
  const bytes = (b: Buffer) => {
    // headers are never cut: a segment may run a few blocks over SEGMENT instead
    cur.pieces.push({ h: b });
    cur.size += b.length;
  };
  entries.forEach((e, i) => {
    const hs = entryHeaders(e, mtime);
    const pad = e.type === 'file' ? (BLOCK - (e.size % BLOCK)) % BLOCK : 0;
    const data = e.type === 'file' ? e.size : 0;
    const need = hs.reduce((n, h) => n + h.length, 0) + data + pad;
    if (cur.size && cur.size + need > SEGMENT) flush();
    for (const h of hs) bytes(h);
    if (!data) return;
    const whole = cur.size + data <= SEGMENT;
    if (!whole) split.push(i);
    for (let pos = 0; pos < data;) {
      if (cur.size >= SEGMENT) flush();
      const len = Math.min(data - pos, SEGMENT - cur.size);
      cur.pieces.push({ p: e.source!, pos, len, file: i, whole });
      cur.size += len;
      cur.content += len;
      pos += len;
    }
    if (pad) bytes(Buffer.alloc(pad));
  });
  bytes(Buffer.alloc(BLOCK * 2));
  flush();
  return { segments, split };
}

/** The pool's worker: `seg` jobs fill, hash and compress one segment; `hash` jobs hash one whole file. Plain JS, no loader needed. */
const WORKER_SRC = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const fail = (id, code, message) => parentPort.postMessage({ id, error: { code, message } });
function fill(buf, pieces, hashWhole) {
  const shas = [];
  let off = 0;
  for (const pc of pieces) {
    if (pc.h) { buf.set(pc.h, off); off += pc.h.length; continue; }
    const fd = fs.openSync(pc.p, 'r');
    try {
      let got = 0;
      while (got < pc.len) {
        const n = fs.readSync(fd, buf, off + got, pc.len - got, pc.pos + got);
        if (n === 0) break;
        got += n;
      }
      if (got !== pc.len) throw Object.assign(new Error(pc.p + ' changed size while being archived (shorter than ' + (pc.pos + pc.len) + ' bytes)'), { code: 'E_TREE_CHANGED' });
      if (pc.whole) {
        if (fs.fstatSync(fd).size !== pc.len) throw Object.assign(new Error(pc.p + ' changed size while being archived (' + pc.len + ' → ' + fs.fstatSync(fd).size + ' bytes)'), { code: 'E_TREE_CHANGED' });
        if (hashWhole) shas.push([pc.file, createHash('sha256').update(buf.subarray(off, off + pc.len)).digest('hex')]);
      }
    } finally { fs.closeSync(fd); }
    off += pc.len;
  }
  return shas;
}
parentPort.on('message', (m) => {
  try {
    if (m.type === 'hash') {
      const buf = Buffer.allocUnsafe(1 << 20);
      const fd = fs.openSync(m.path, 'r');
      const h = createHash('sha256');
      let n, size = 0;
      try { while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) { h.update(buf.subarray(0, n)); size += n; } } finally { fs.closeSync(fd); }
      if (size !== m.size) return fail(m.id, 'E_TREE_CHANGED', m.path + ' changed size while being archived (' + m.size + ' → ' + size + ' bytes)');
      return parentPort.postMessage({ id: m.id, sha: h.digest('hex') });
    }
    parentPort.postMessage({ id: m.id, shas: fill(Buffer.from(m.raw, 0, m.size), m.pieces, m.hashFiles) });
  } catch (e) {
    fail(m.id, e.code || 'E_ARCHIVE', String(e && e.message || e));
  }
});
`;

/** Hashes the tar bytes in order, off the main thread. */
const DIGEST_SRC = `
const { parentPort } = require('node:worker_threads');
const h = require('node:crypto').createHash('sha256');
let size = 0;
parentPort.on('message', (m) => {
  if (m === 'end') return parentPort.postMessage({ digest: 'sha256:' + h.digest('hex'), size });
  h.update(new Uint8Array(m.buf, 0, m.size));
  size += m.size;
  parentPort.postMessage({ seg: m.seg });
});
`;

interface Job { id: number; kind: 'seg' | 'hash'; seg?: number; file?: number }
interface Reply { id: number; error?: { code: string; message: string }; sha?: string; shas?: [number, string][] }

/**
 * Write `entries` (sorted, see collectTree/planEntries) as a tar.zst to
 * `path` (created or truncated) and return both digests. Rejects on the
 * first failure; the caller removes the partial file.
 */
export async function writeTarZstd(entries: readonly TarEntry[], path: string, opts: WriteTarZstdOptions): Promise<TarZstdResult> {
  const mtime = opts.mtime ?? defaultMtime();
  if (!Number.isInteger(mtime) || mtime < 0 || mtime > MAX_OCTAL_SIZE)
    throw new RocmflowError('E_BAD_MTIME', `mtime must be whole seconds since the epoch (got ${mtime})`, { exitCode: 2 });
  const level = opts.level;
  const { segments, split } = layout(entries, mtime, opts.segment ?? SEGMENT);
  const hashFiles = !!opts.onFile;
  const jobs: Job[] = [];
  const firstSeg = new Map<number, number>();
  segments.forEach((sg, k) => sg.pieces.forEach((p) => 'p' in p && !firstSeg.has(p.file) && firstSeg.set(p.file, k)));
  const splitAt = new Map<number, number[]>();
  if (hashFiles) for (const i of split) splitAt.set(firstSeg.get(i)!, [...(splitAt.get(firstSeg.get(i)!) ?? []), i]);
  segments.forEach((_, k) => {
    for (const f of splitAt.get(k) ?? []) jobs.push({ id: jobs.length, kind: 'hash', file: f });
    jobs.push({ id: jobs.length, kind: 'seg', seg: k });
  });
  const cores = Math.max(1, opts.threads ?? availableParallelism());
  // reading from the page cache saturates long before 16 threads; zstd still gets every core
  const readers = Math.min(cores, MAX_READERS, jobs.length);
  // a segment is read only when the one `slots` before it has gone to zstd and been hashed
  const slots = Math.min(segments.length, readers + 4);
  const maxSeg = segments.reduce((n, sg) => Math.max(n, sg.size), 0);
  const raw = Array.from({ length: slots }, () => new SharedArrayBuffer(maxSeg));

  // zstd writes the archive itself; the follower hashes it as it grows,
  // reading through this same descriptor until it has answered
  const fd = openSync(path, 'w+');
  let zstd: ReturnType<typeof spawnZstd>;
  try {
    zstd = spawnZstd(['-q', `-T${cores}`, `-${level}`, '-c', ...(level > 19 ? ['--ultra'] : [])], 'zstd', opts.signal, fd);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  let follower: FileFollower;
  try {
    follower = followFile(fd);
  } catch (e) {
    zstd.child.kill('SIGTERM');
    closeSync(fd);
    throw e;
  }
  const packed = follower.result.then(
    (r): Digest => ({ digest: `sha256:${r.sha256}`, size: r.size }),
    (e: Error) => {
      throw new RocmflowError('E_ARCHIVE', `${path}: ${e.message}`);
    },
  );
  packed.catch(() => {});
  const output = zstd.exit.then(() => follower.writerDone());
  output.catch(() => {});
  const workers = Array.from({ length: readers }, () => new Worker(WORKER_SRC, { eval: true }));
  const digester = new Worker(DIGEST_SRC, { eval: true });
  const filled = new Set<number>();
  const hashed = new Set<number>();
  const written = new Set<number>();
  let nextWrite = 0;
  let released = 0;
  let nextJob = 0;
  let content = 0;
  let fault: (e: unknown) => void = () => {};
  const onAbort = () => fault(opts.signal!.reason ?? new Error('aborted'));
  try {
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      fault = (e: unknown) => {
        if (!failed) (failed = true), reject(e);
      };
      opts.signal?.throwIfAborted();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      output.catch(fault);
      zstd.child.stdin!.on('error', () => {}); // the exit status says why
      const busy = new Set<Worker>();
      const dispatch = () => {
        while (released < nextWrite && hashed.has(released) && written.has(released)) released++;
        for (const w of workers) {
          if (failed || busy.has(w) || nextJob >= jobs.length) continue;
          const job = jobs[nextJob]!;
          if (job.kind === 'seg' && job.seg! >= released + slots) break;
          nextJob++;
          busy.add(w);
          if (job.kind === 'hash') {
            const e = entries[job.file!]!;
            w.postMessage({ type: 'hash', id: job.id, path: e.source, size: e.size });
          } else {
            const sg = segments[job.seg!]!;
            w.postMessage({ type: 'seg', id: job.id, size: sg.size, pieces: sg.pieces, hashFiles, raw: raw[job.seg! % slots] });
          }
        }
        if (released === segments.length && busy.size === 0 && nextJob >= jobs.length) resolve();
      };
      const send = () => {
        // in order: to zstd, and to the digest worker, which reads the same shared slot
        while (filled.has(nextWrite)) {
          const seg = nextWrite++;
          filled.delete(seg);
          const sg = segments[seg]!;
          const buf = raw[seg % slots]!;
          digester.postMessage({ seg, buf, size: sg.size });
          zstd.child.stdin!.write(Buffer.from(buf, 0, sg.size), (err) => {
            if (err) return fault(err);
            written.add(seg);
            content += sg.content;
            opts.onProgress?.(content);
            dispatch();
          });
        }
      };
      for (const w of workers) {
        w.on('error', fault);
        w.on('message', (r: Reply) => {
          busy.delete(w);
          if (r.error) return fault(workerError(r.error));
          const job = jobs[r.id]!;
          if (job.kind === 'hash') opts.onFile?.(entries[job.file!]!, r.sha!);
          else {
            for (const [i, sha] of r.shas ?? []) opts.onFile?.(entries[i]!, sha);
            filled.add(job.seg!);
            send();
          }
          dispatch();
        });
      }
      digester.on('error', fault);
      digester.on('message', (m: { seg?: number }) => {
        if (m.seg === undefined) return;
        hashed.add(m.seg);
        dispatch();
      });
      dispatch();
    });
    zstd.child.stdin!.end();
    await output;
    const uncompressed = await new Promise<Digest>((resolve, reject) => {
      digester.removeAllListeners('message');
      digester.once('message', resolve).once('error', reject);
      digester.postMessage('end');
    });
    // empty files are in no segment's hashes
    if (hashFiles) for (const e of entries) if (e.type === 'file' && e.size === 0) opts.onFile!(e, EMPTY_SHA256);
    return { uncompressed, compressed: await packed };
  } catch (e) {
    zstd.child.kill('SIGTERM');
    await follower.stop();
    // zstd's own failure (e.g. not installed) explains a broken pipe better
    const why = await output.then(() => null, (err: unknown) => err);
    throw why instanceof RocmflowError && !(e instanceof RocmflowError) ? why : e;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await Promise.all([...workers, digester].map((w) => w.terminate()));
    await follower.stop();
    closeSync(fd);
  }
}

const EMPTY_SHA256 = createHash('sha256').digest('hex');

function workerError(e: { code: string; message: string }): Error {
  if (e.code === 'ENOENT' || e.code === 'EACCES') return new RocmflowError('E_TREE_CHANGED', e.message);
  return new RocmflowError(e.code.startsWith('E_') ? e.code : 'E_ARCHIVE', e.message);
}
