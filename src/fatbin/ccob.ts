/**
 * Compressed clang offload bundles (`CCOB`): a header, then one zlib or zstd
 * stream whose contents are a plain `__CLANG_OFFLOAD_BUNDLE__` bundle.
 *
 *   v1: magic, u16 version, u16 method, u32 uncompressed size, u64 hash           (20 bytes)
 *   v2: magic, u16 version, u16 method, u32 total size, u32 uncompressed, u64 hash (24 bytes)
 *   v3: magic, u16 version, u16 method, u64 total size, u64 uncompressed, u64 hash (32 bytes)
 *
 * Method 0 is zlib, 1 zstd (LLVM's compression::Format). The hash is the
 * first 8 bytes of the MD5 of the uncompressed bundle (LLVM checks it only
 * when asked to be verbose). v1 has no total size: its end is found by
 * looking for the next bundle magic, as LLVM does.
 */
import type { Readable, Writable } from 'node:stream';
import { createDeflate, createInflate } from 'node:zlib';
import { isRocmflowError } from '../errors.js';
import { spawnZstd } from '../image/compress.js';
import { malformed, type ByteSource } from './byte-source.js';

export const CCOB_MAGIC = Buffer.from('CCOB', 'latin1');

export type CcobMethod = 'zlib' | 'zstd';

/** A compressed bundle's header. */
export interface CcobHeader {
  version: 1 | 2 | 3;
  method: CcobMethod;
  /** 20, 24 or 32. */
  headerSize: number;
  /** Header plus compressed bytes; null in v1, which does not record it. */
  totalSize: number | null;
  uncompressedSize: number;
  /** The truncated MD5 of the uncompressed bundle, as 16 hex digits (its bytes in file order). */
  hash: string;
}

const HEADER_SIZES = { 1: 20, 2: 24, 3: 32 } as const;
const METHODS: Record<number, CcobMethod> = { 0: 'zlib', 1: 'zstd' };

export function isCcobAt(buf: Buffer, at = 0): boolean {
  return buf.length - at >= 4 && buf.compare(CCOB_MAGIC, 0, 4, at, at + 4) === 0;
}

/** Parse the header at `at`; `room` is how many bytes the bundle may span (to its section's end). */
export async function readCcobHeader(src: ByteSource, at: number, room: number): Promise<CcobHeader> {
  const bad = (pos: number, why: string) => malformed(src.name, pos, `compressed bundle: ${why}`);
  if (room < 8) throw bad(at, 'header truncated');
  const common = await src.read(at, 8);
  if (!isCcobAt(common)) throw bad(at, 'no CCOB magic');
  const version = common.readUInt16LE(4);
  const methodId = common.readUInt16LE(6);
  if (version !== 1 && version !== 2 && version !== 3) throw bad(at + 4, `unknown version ${version} (1-3 are known)`);
  const method = METHODS[methodId];
  if (!method) throw bad(at + 6, `unknown compression method ${methodId} (0 zlib, 1 zstd)`);
  const headerSize = HEADER_SIZES[version];
  if (room < headerSize) throw bad(at, `v${version} header (${headerSize} bytes) truncated: ${room} bytes left in its section`);
  const h = await src.read(at, headerSize);
  let totalSize: number | null = null;
  let uncompressed: bigint;
  if (version === 1) uncompressed = BigInt(h.readUInt32LE(8));
  else if (version === 2) {
    totalSize = h.readUInt32LE(8);
    uncompressed = BigInt(h.readUInt32LE(12));
  } else {
    const t = h.readBigUInt64LE(8);
    if (t > BigInt(room)) throw bad(at + 8, `total size ${t} runs past the end of its section (${room} bytes left)`);
    totalSize = Number(t);
    uncompressed = h.readBigUInt64LE(16);
  }
  if (totalSize !== null) {
    if (totalSize > room) throw bad(at + 8, `total size ${totalSize} runs past the end of its section (${room} bytes left)`);
    if (totalSize < headerSize) throw bad(at + 8, `total size ${totalSize} is smaller than its ${headerSize}-byte header`);
  }
  if (uncompressed > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(at + 8, `uncompressed size ${uncompressed}`);
  return { version, method, headerSize, totalSize, uncompressedSize: Number(uncompressed), hash: h.subarray(headerSize - 8, headerSize).toString('hex') };
}

/** A compressed bundle header with these fields (the hash given as the MD5 digest, of which the first 8 bytes are kept). */
export function encodeCcobHeader(h: { version: 2 | 3; method: CcobMethod; totalSize: number; uncompressedSize: number; md5: Buffer }): Buffer {
  const b = Buffer.alloc(HEADER_SIZES[h.version]);
  CCOB_MAGIC.copy(b, 0);
  b.writeUInt16LE(h.version, 4);
  b.writeUInt16LE(h.method === 'zlib' ? 0 : 1, 6);
  if (h.version === 2) {
    b.writeUInt32LE(h.totalSize, 8);
    b.writeUInt32LE(h.uncompressedSize, 12);
  } else {
    b.writeBigUInt64LE(BigInt(h.totalSize), 8);
    b.writeBigUInt64LE(BigInt(h.uncompressedSize), 16);
  }
  h.md5.copy(b, b.length - 8, 0, 8);
  return b;
}

/** A streaming codec: write into `input`, read from `output`; `stop()` abandons it early. */
export interface Codec {
  input: Writable;
  output: Readable;
  /** Settles when the codec has finished (rejects on corrupt data, or after stop()). */
  done: Promise<void>;
  stop(): void;
}

/** A decompressor for `method` (zlib in-process, zstd as a child process). */
export function decoder(method: CcobMethod, signal?: AbortSignal): Codec {
  if (method === 'zlib') return zlibCodec(createInflate());
  const { child, exit } = spawnZstd(['-dc', '-q'], 'zstd -d', signal);
  return childCodec(child, exit);
}

/** A compressor for `method`. zstd level 9: fast enough for a kept arch of a large library, and what is kept is a fraction of what was there. */
export function encoder(method: CcobMethod, signal?: AbortSignal): Codec {
  if (method === 'zlib') return zlibCodec(createDeflate({ level: 9 }));
  const { child, exit } = spawnZstd(['-q', '-c', '-9'], 'zstd', signal);
  return childCodec(child, exit);
}

function zlibCodec(z: ReturnType<typeof createInflate>): Codec {
  const done = new Promise<void>((resolve, reject) => {
    z.once('end', resolve);
    z.once('error', reject);
    z.once('close', () => resolve());
  });
  done.catch(() => {});
  return { input: z, output: z, done, stop: () => z.destroy() };
}

function childCodec(child: ReturnType<typeof spawnZstd>['child'], exit: Promise<void>): Codec {
  exit.catch(() => {});
  // a child we stop (or that dies) closes its pipes: writes after that are not our errors
  child.stdin!.on('error', () => {});
  return { input: child.stdin!, output: child.stdout!, done: exit, stop: () => child.kill('SIGKILL') };
}

/** Bytes of src[at, at+len) as chunks of at most 1 MiB. */
export async function* readRange(src: ByteSource, at: number, len: number, chunk = 1 << 20): AsyncGenerator<Buffer> {
  for (let p = at; p < at + len; p += chunk) yield await src.read(p, Math.min(chunk, at + len - p));
}

/** Feed `input` into a codec, respecting backpressure; ends the codec's input when done or stopped. */
async function feed(codec: Codec, input: AsyncIterable<Buffer>, stopped: () => boolean): Promise<void> {
  for await (const c of input) {
    if (stopped() || codec.input.destroyed) break;
    if (!codec.input.write(c))
      await new Promise<void>((r) => {
        codec.input.once('drain', r);
        codec.input.once('close', r);
      });
  }
  if (!codec.input.destroyed) codec.input.end();
}

/**
 * The first `need` bytes of the decompressed stream (fewer only when the
 * stream is shorter), decompressing no more than that: the bundle header
 * at its start is all a listing needs. Corrupt data throws `bad(why)`.
 */
export async function decompressHead(method: CcobMethod, input: AsyncIterable<Buffer>, need: number, bad: (why: string) => Error, signal?: AbortSignal): Promise<Buffer> {
  const codec = decoder(method, signal);
  const parts: Buffer[] = [];
  let got = 0;
  let enough = false;
  const feeding = feed(codec, input, () => enough);
  feeding.catch(() => {});
  try {
    for await (const c of codec.output) {
      parts.push(c as Buffer);
      got += (c as Buffer).length;
      if (got >= need) break;
    }
  } catch (e) {
    throw codecError(e, bad);
  } finally {
    enough = true;
    if (got >= need) codec.stop();
  }
  if (got < need) {
    await feeding;
    await codec.done.catch((e: unknown) => {
      throw codecError(e, bad);
    });
  }
  return Buffer.concat(parts).subarray(0, need);
}

/** Pipe `input` through a codec and yield its output; corrupt data throws `bad(why)`. */
export async function* transcode(codec: Codec, input: AsyncIterable<Buffer>, bad: (why: string) => Error): AsyncGenerator<Buffer> {
  let stopped = false;
  const feeding = feed(codec, input, () => stopped);
  feeding.catch(() => {});
  try {
    for await (const c of codec.output) yield c as Buffer;
    await feeding;
    await codec.done;
  } catch (e) {
    // a failed read of the input explains the codec's failure better than the codec does
    stopped = true;
    codec.stop();
    const readError = await feeding.then(() => null, (f: unknown) => f);
    if (isRocmflowError(readError)) throw readError;
    throw codecError(e, bad);
  } finally {
    stopped = true;
    codec.stop();
  }
}

/** A missing zstd stays a missing-tool error; anything else the codec says is bad data at the bundle. */
function codecError(e: unknown, bad: (why: string) => Error): Error {
  if (isRocmflowError(e) && e.code === 'E_MISSING_TOOL') return e;
  return bad(`compressed data: ${(e as Error).message}`);
}
