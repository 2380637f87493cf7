/**
 * Positional, bounded reads from a file (or from a buffer, for tests and for
 * decompressed bundles), and the one error every fat-binary parser raises:
 * a RocmflowError naming the file and the offset where the input went wrong.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { RocmflowError } from '../errors.js';

const SMALL_READ = 16 << 10;
const WINDOW = 256 << 10;

/** The most one read may ask for: parsers read headers, never payloads, in one go. */
export const MAX_READ = 16 << 20;

/** Bytes read by positional reads, each checked against the size. */
export interface ByteSource {
  /** The name used in errors (the file path). */
  readonly name: string;
  readonly size: number;
  /** Exactly `len` bytes at `pos`; a range past the end is a malformed-input error at `pos`. */
  read(pos: number, len: number): Promise<Buffer>;
  /** Up to `len` bytes at `pos` (fewer at the end of the source). */
  readUpTo(pos: number, len: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** Malformed or truncated input at a file offset. */
export function malformed(name: string, offset: number, why: string): RocmflowError {
  return new RocmflowError('E_FATBIN_MALFORMED', `${name}: offset 0x${offset.toString(16)}: ${why}`);
}

function check(name: string, size: number, pos: number, len: number, exact: boolean): void {
  if (!Number.isSafeInteger(pos) || !Number.isSafeInteger(len) || pos < 0 || len < 0)
    throw malformed(name, Number.isSafeInteger(pos) && pos >= 0 ? pos : 0, `bad range (${pos}, ${len} bytes)`);
  if (len > MAX_READ) throw new Error(`internal: read of ${len} bytes at ${pos} exceeds MAX_READ`);
  if (exact && pos + len > size) throw malformed(name, pos, `truncated: ${len} bytes wanted, ${Math.max(0, size - pos)} left in the file`);
}

/** Open `file` for positional reads. A missing or unreadable file is E_FATBIN_READ. */
export async function openFileSource(file: string): Promise<ByteSource> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw new RocmflowError('E_FATBIN_READ', `cannot read ${file}: ${(e as Error).message}`);
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new RocmflowError('E_FATBIN_READ', `${file} is not a regular file`);
  }
  const size = st.size;
  // parsers walk headers with many small reads in file order: each small read
  // that misses loads a window, and the next ones are served from it (a new
  // buffer per window, so bytes handed out earlier stay valid)
  let window: { pos: number; buf: Buffer } | null = null;
  const readUpTo = async (pos: number, len: number) => {
    check(file, size, pos, len, false);
    const n = Math.max(0, Math.min(len, size - pos));
    if (n <= SMALL_READ) {
      if (!window || pos < window.pos || pos + n > window.pos + window.buf.length) window = { pos, buf: await readAt(pos, Math.min(WINDOW, size - pos)) };
      const at = pos - window.pos;
      return window.buf.subarray(at, Math.min(at + n, window.buf.length));
    }
    return readAt(pos, n);
  };
  const readAt = async (pos: number, n: number) => {
    const buf = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const { bytesRead } = await fh.read(buf, got, n - got, pos + got);
      if (bytesRead === 0) break; // the file shrank under us
      got += bytesRead;
    }
    return buf.subarray(0, got);
  };
  return {
    name: file,
    size,
    readUpTo,
    async read(pos, len) {
      check(file, size, pos, len, true);
      const b = await readUpTo(pos, len);
      if (b.length < len) throw malformed(file, pos + b.length, 'file shrank while being read');
      return b;
    },
    close: () => fh.close(),
  };
}

/** A source over bytes in memory (tests, and bundles after decompression). */
export function bufferSource(buf: Buffer, name: string): ByteSource {
  return {
    name,
    size: buf.length,
    async read(pos, len) {
      check(name, buf.length, pos, len, true);
      return buf.subarray(pos, pos + len);
    },
    async readUpTo(pos, len) {
      check(name, buf.length, pos, len, false);
      return buf.subarray(pos, Math.min(buf.length, pos + len));
    },
    close: async () => {},
  };
}

/** Run `fn` with `file` open, closing it afterwards whatever happens. */
export async function withFileSource<T>(file: string, fn: (src: ByteSource) => Promise<T>): Promise<T> {
  const src = await openFileSource(file);
  try {
    return await fn(src);
  } finally {
    await src.close();
  }
}
