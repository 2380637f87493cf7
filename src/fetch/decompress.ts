/**
 * Opens a possibly compressed archive as a stream of decompressed bytes.
 * The format is told by magic bytes, not the file name (download caches
 * name files by hash). gzip runs in-process (zlib); xz and zstd through
 * `xz -dc` / `zstd -dc` child processes fed from our own read stream, so
 * progress counts the compressed bytes read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { Transform, type Readable } from 'node:stream';
import { RocmflowError, missingTool } from '../errors.js';

export type Compression = 'gzip' | 'xz' | 'zstd' | 'bzip2' | 'none';

/** Tell the compression from the first bytes of a file. */
export function detectCompression(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return 'none';
}

const TOOLS: Partial<Record<Compression, { cmd: string; install: string }>> = {
  xz: { cmd: 'xz', install: 'apt install xz-utils (or dnf install xz)' },
  zstd: { cmd: 'zstd', install: 'apt install zstd (or dnf install zstd)' },
  bzip2: { cmd: 'bzip2', install: 'apt install bzip2' },
};

/** A decompressed byte stream; `finished()` resolves once the decompressor exited cleanly. */
export interface DecompressedStream {
  readonly compression: Compression;
  readonly stream: Readable;
  /** Wait for the decompressor and report its failure (corrupt data) as an error. */
  finished(): Promise<void>;
  /** Stop everything (on error or cancel). */
  destroy(): void;
}

/** Open `archive` for streaming decompression. */
export async function openDecompressed(archive: string, opts: { onProgress?(read: number, total: number): void } = {}): Promise<DecompressedStream> {
  const total = (await stat(archive)).size;
  const fh = await open(archive, 'r');
  const head = Buffer.alloc(6);
  try {
    await fh.read(head, 0, 6, 0);
  } finally {
    await fh.close();
  }
  const compression = detectCompression(head);
  let read = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      read += chunk.length;
      opts.onProgress?.(read, total);
      cb(null, chunk);
    },
  });
  const file = createReadStream(archive, { highWaterMark: 1 << 20 });
  file.on('error', (e) => counter.destroy(e));
  file.pipe(counter);

  if (compression === 'none') {
    return { compression, stream: counter, finished: async () => {}, destroy: () => (file.destroy(), counter.destroy()) };
  }
  if (compression === 'gzip') {
    const gunzip = createGunzip();
    counter.on('error', (e) => gunzip.destroy(e));
    counter.pipe(gunzip);
    return { compression, stream: gunzip, finished: async () => {}, destroy: () => (file.destroy(), counter.destroy(), gunzip.destroy()) };
  }

  const tool = TOOLS[compression]!;
  const child: ChildProcess = spawn(tool.cmd, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? missingTool(tool.cmd, tool.install) : e));
    child.on('close', (code, sig) => {
      if (code === 0) resolve();
      else reject(new RocmflowError('E_BAD_ARCHIVE', `${tool.cmd} failed on ${archive}: ${stderr.trim().split('\n').pop() || `exit ${code ?? sig}`}`));
    });
  });
  exited.catch(() => {}); // observed through finished()
  // a decompressor that dies early closes its stdin: that is reported by finished(), not as EPIPE
  child.stdin!.on('error', () => {});
  counter.pipe(child.stdin!);
  child.on('error', (e) => child.stdout!.destroy(e));
  return {
    compression,
    stream: child.stdout!,
    finished: () => exited,
    destroy: () => {
      file.destroy();
      counter.destroy();
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
