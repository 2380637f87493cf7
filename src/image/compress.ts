import { spawn, type ChildProcess } from 'node:child_process';
import { open } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { ParallelGzip } from './gzip-parallel.js';
import { RocmflowError, missingTool } from '../errors.js';
import { openDecompressed as openArchive } from '../archive/compression.js';
import { DigestStream, type Digest } from './digest-stream.js';

export { EXPORT_ZSTD_LEVEL, LAYER_ZSTD_LEVEL, type Compression } from './levels.js';
import { LAYER_ZSTD_LEVEL, type Compression } from './levels.js';

export interface CompressOptions {
  format: Compression;
  /** zstd 1..22 (default 3), gzip 1..9 (default 6). */
  level?: number;
  signal?: AbortSignal;
}

/** Both digests of one pass: the uncompressed input and the compressed output. */
export interface CompressResult {
  format: Compression;
  /** sha256 + size of the uncompressed bytes (an OCI layer's diff_id). */
  uncompressed: Digest;
  /** sha256 + size of the bytes written to `out` (an OCI layer's blob digest). */
  compressed: Digest;
}

export interface Compressor {
  /** Write the uncompressed bytes here (respect backpressure) and end it. */
  readonly input: Writable;
  /** Settles once `out` has everything; rejects if the compressor or `out` fails. */
  readonly done: Promise<CompressResult>;
}

/**
 * Compress into `out` while hashing both sides. zstd runs as a child process
 * (`zstd -T0`: multithreaded zstd output does not depend on the thread count,
 * so it stays reproducible across machines); gzip runs on every core as a
 * run of members (ParallelGzip), each with zlib's header, which
 * carries no file name and a zero mtime, so it is deterministic too.
 */
export function createCompressor(out: Writable, opts: CompressOptions): Compressor {
  const raw = new DigestStream();
  const packed = new DigestStream();
  const signal = opts.signal;
  let work: Promise<unknown>;
  if (opts.format === 'gzip') {
    const level = checkLevel(opts.level ?? 6, 1, 9, 'gzip');
    work = pipeline(raw, new ParallelGzip({ level }), packed, out, { signal });
  } else if (opts.format === 'zstd') {
    const level = checkLevel(opts.level ?? LAYER_ZSTD_LEVEL, 1, 22, 'zstd');
    const args = ['-T0', '-q', `-${level}`, '-c', ...(level > 19 ? ['--ultra'] : [])];
    const { child, exit } = spawnZstd(args, 'zstd', signal);
    work = Promise.all([pipeline(raw, child.stdin!, { signal }), pipeline(child.stdout!, packed, out, { signal }), exit]);
  } else {
    work = pipeline(raw, packed, out, { signal });
  }
  // the caller may never await `done` if writing to `input` fails first
  const done = work.then(() => ({ format: opts.format, uncompressed: raw.result(), compressed: packed.result() }));
  done.catch(() => {});
  return { input: raw, done };
}

/**
 * A readable of the decompressed contents of `path` (format detected from its
 * magic bytes), plus the digests of both sides once it has been read through.
 * The archive module's decompression helper does the work.
 */
export async function openDecompressed(path: string, signal?: AbortSignal): Promise<{ stream: Readable; format: Compression; done: Promise<CompressResult> }> {
  const d = await openArchive(path, { signal });
  if (d.compression !== 'zstd' && d.compression !== 'gzip' && d.compression !== 'none') {
    d.destroy();
    throw new RocmflowError('E_COMPRESSION', `${path} is ${d.compression}-compressed; layers are zstd, gzip or plain tar`);
  }
  const format: Compression = d.compression;
  const done = d.finished().then((g) => ({ format, uncompressed: g.uncompressed, compressed: g.compressed }));
  done.catch(() => {});
  return { stream: d.stream, format, done };
}

/** Compression of a file by its magic bytes. */
export async function detectCompression(path: string): Promise<Compression> {
  const fh = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(4), 0, 4, 0);
    if (bytesRead >= 4 && buffer.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    if (bytesRead >= 2 && buffer[0] === 0x1f && buffer[1] === 0x8b) return 'gzip';
    return 'none';
  } finally {
    await fh.close();
  }
}

function checkLevel(level: number, min: number, max: number, what: string): number {
  if (!Number.isInteger(level) || level < min || level > max)
    throw new RocmflowError('E_COMPRESSION_LEVEL', `${what} level must be an integer from ${min} to ${max} (got ${level})`, { exitCode: 2 });
  return level;
}

/**
 * A zstd child process: write to its stdin, read its stdout (or give it a
 * file descriptor, `stdout`, to write to itself). `exit` settles
 * when it ends: a missing zstd is a missing-tool error, a failure an
 * E_COMPRESS naming `what`. The one place rocmflow runs zstd.
 */
export function spawnZstd(args: string[], what: string, signal?: AbortSignal, stdout?: number): { child: ChildProcess; exit: Promise<void> } {
  const child = spawn('zstd', args, { stdio: ['pipe', stdout ?? 'pipe', 'pipe'] });
  return { child, exit: exited(child, what, signal) };
}

/** Resolves when the child exits 0; a missing binary becomes a missing-tool error. */
function exited(child: ChildProcess, what: string, signal?: AbortSignal): Promise<void> {
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
  const onAbort = () => child.kill('SIGTERM');
  signal?.addEventListener('abort', onAbort, { once: true });
  return new Promise<void>((resolve, reject) => {
    child.once('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'ENOENT' ? missingTool('zstd', 'apt install zstd (or dnf install zstd)') : e);
    });
    child.once('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      if (code === 0) resolve();
      else if (signal?.aborted) reject(signal.reason ?? new Error('aborted'));
      else reject(new RocmflowError('E_COMPRESS', `${what} failed (${sig ?? `exit ${code}`}): ${stderr.trim().split('\n').pop() ?? ''}`));
    });
  });
}
