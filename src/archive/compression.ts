/**
 * The one decompression helper: opens a possibly compressed archive as a
 * stream of decompressed bytes. The format is told by magic bytes, not the
 * file name (download caches name files by hash). gzip runs in-process
 * (zlib); xz, zstd and bzip2 through `xz -dc` / `zstd -dc` / `bzip2 -dc`
 * child processes fed from our own read stream, so progress counts the
 * compressed bytes read. Both sides are hashed on the way (an OCI layer's
 * blob digest and diff_id come out of the same pass).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { Transform, type Readable } from 'node:stream';
import { RocmflowError, missingTool } from '../errors.js';
import { DigestStream, type Digest } from '../image/digest-stream.js';

export type Compression = 'gzip' | 'xz' | 'zstd' | 'bzip2' | 'none';

/** Tell the compression from the first bytes of a file. */
export function detectCompression(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return 'none';
}

/** The compression of a file, by its first bytes. */
export async function detectFileCompression(path: string): Promise<Compression> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(6);
    const { bytesRead } = await fh.read(head, 0, 6, 0);
    return detectCompression(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

const TOOLS: Partial<Record<Compression, { cmd: string; install: string }>> = {
  xz: { cmd: 'xz', install: 'apt install xz-utils (or dnf install xz)' },
  zstd: { cmd: 'zstd', install: 'apt install zstd (or dnf install zstd)' },
  bzip2: { cmd: 'bzip2', install: 'apt install bzip2' },
};

/** The digests of one pass through an archive. */
export interface StreamDigests {
  /** sha256 + size of the bytes of the file as stored. */
  compressed: Digest;
  /** sha256 + size of the decompressed bytes. */
  uncompressed: Digest;
}

/** A decompressed byte stream; `finished()` resolves once the decompressor exited cleanly. */
export interface DecompressedStream {
  readonly compression: Compression;
  readonly stream: Readable;
  /** Wait for the decompressor and report its failure (corrupt data) as an error; then both digests. */
  finished(): Promise<StreamDigests>;
  /** Stop everything (on error or cancel). */
  destroy(): void;
  /** The decompressor's own failure, if it had one (waits briefly for it to exit); null when none. */
  failure(): Promise<unknown>;
}

/** Open `archive` for streaming decompression; `signal` stops the reading and the decompressor. */
export async function openDecompressed(
  archive: string,
  opts: { onProgress?(read: number, total: number): void; signal?: AbortSignal } = {},
): Promise<DecompressedStream> {
  const total = (await stat(archive)).size;
  const compression = await detectFileCompression(archive);
  let read = 0;
  const packed = new DigestStream();
  const raw = new DigestStream();
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      read += chunk.length;
      opts.onProgress?.(read, total);
      cb(null, chunk);
    },
  });
  const file = createReadStream(archive, { highWaterMark: 1 << 20 });
  file.on('error', (e) => counter.destroy(e));
  file.pipe(counter).pipe(packed);
  packed.on('error', () => {});
  counter.on('error', (e) => packed.destroy(e));
  const digests = (): StreamDigests => ({ compressed: packed.result(), uncompressed: raw.result() });
  const ended = new Promise<void>((resolve, reject) => {
    raw.on('end', resolve);
    raw.on('error', reject);
  });
  ended.catch(() => {});

  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  if (compression === 'none') {
    packed.pipe(raw);
  } else if (compression === 'gzip') {
    const gunzip = createGunzip();
    packed.on('error', (e) => gunzip.destroy(e));
    gunzip.on('error', (e) => raw.destroy(e));
    packed.pipe(gunzip).pipe(raw);
  } else {
    const tool = TOOLS[compression]!;
    const c = spawn(tool.cmd, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child = c;
    let stderr = '';
    c.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    exited = new Promise<void>((resolve, reject) => {
      c.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? missingTool(tool.cmd, tool.install) : e));
      c.on('close', (code, sig) => {
        if (code === 0) resolve();
        else if (opts.signal?.aborted) reject(opts.signal.reason ?? new Error('aborted'));
        else reject(new RocmflowError('E_BAD_ARCHIVE', `${tool.cmd} failed on ${archive}: ${stderr.trim().split('\n').pop() || `exit ${code ?? sig}`}`));
      });
    });
    exited.catch(() => {}); // observed through finished()
    // a decompressor that dies early closes its stdin: that is reported by finished(), not as EPIPE
    c.stdin!.on('error', () => {});
    packed.pipe(c.stdin!);
    c.on('error', (e) => raw.destroy(e));
    c.stdout!.pipe(raw);
  }
  const destroy = () => {
    file.destroy();
    counter.destroy();
    packed.destroy();
    raw.destroy();
    if (child && child.exitCode === null) child.kill('SIGKILL');
  };
  const onAbort = () => destroy();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  return {
    compression,
    stream: raw,
    finished: async () => {
      try {
        await exited;
        if (!raw.readableEnded && !raw.destroyed) await ended;
        return digests();
      } finally {
        opts.signal?.removeEventListener('abort', onAbort);
      }
    },
    destroy,
    failure: () =>
      child ? Promise.race([exited.then(() => null, (x: unknown) => x), new Promise((r) => setTimeout(r, 2000, null))]) : Promise.resolve(null),
  };
}
