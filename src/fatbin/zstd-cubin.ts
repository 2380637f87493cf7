/**
 * CUDA cubins stored as bare zstd frames in a library's data, outside any
 * fatbin. cuBLASLt 13 keeps 387 of them in `.ldata` (96 MB): its
 * code finds each by a pointer (a relocation) to the frame's first byte and
 * decompresses it only when it loads that kernel. Each frame holds one CUDA
 * ELF, whose header names its arch.
 *
 * A frame's extent is read from its own structure (RFC 8878): the frame
 * header, then blocks of at most 128 KiB, each with a 3-byte header giving
 * its type and size, the last one flagged, then the optional checksum. Only
 * the first block is decompressed, to read the ELF header. Candidates are
 * found by scanning for the magic, so a candidate that is not a
 * well-formed frame, or not a CUDA ELF, is chance data and left alone.
 */
import { Decompress } from 'fzstd';
import type { ByteSource } from './byte-source.js';
import type { FatbinContainer } from './types.js';

const MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const MAX_BLOCK = 128 << 10;
const SCAN_CHUNK = 1 << 20;
/** ELF e_machine of NVIDIA CUDA. */
const EM_CUDA = 190;

/** A zstd frame's layout: where its blocks start and how far it reaches. */
export interface ZstdFrame {
  /** Bytes from the magic to the end of the checksum (or last block). */
  size: number;
  /** Frame_Content_Size, when the header records it. */
  contentSize: number | null;
  /** Bytes of the frame header (magic included). */
  headerSize: number;
  /** Bytes from the magic to the end of the first block. */
  firstBlockEnd: number;
  /** The frame needs a dictionary (its header names one). */
  dictionary: boolean;
}

/** The frame at `at`, which must end by `end`; null when it is not a well-formed zstd frame. */
export async function readZstdFrame(src: ByteSource, at: number, end: number): Promise<ZstdFrame | null> {
  if (end - at < 6) return null;
  const h = await src.read(at, Math.min(18, end - at));
  if (!h.subarray(0, 4).equals(MAGIC)) return null;
  const fhd = h[4]!;
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  const checksum = (fhd >> 2) & 1;
  const dictFlag = fhd & 3;
  if (fhd & 0x08) return null; // reserved bit
  const dictBytes = [0, 1, 2, 4][dictFlag]!;
  const fcsBytes = fcsFlag === 0 ? single : [0, 2, 4, 8][fcsFlag]!;
  const headerSize = 5 + (single ? 0 : 1) + dictBytes + fcsBytes;
  if (headerSize > h.length) return null;
  let contentSize: number | null = null;
  const fo = headerSize - fcsBytes;
  if (fcsBytes === 1) contentSize = h[fo]!;
  else if (fcsBytes === 2) contentSize = h.readUInt16LE(fo) + 256;
  else if (fcsBytes === 4) contentSize = h.readUInt32LE(fo);
  else if (fcsBytes === 8) contentSize = Number(h.readBigUInt64LE(fo));
  let p = at + headerSize;
  let firstBlockEnd = 0;
  for (;;) {
    if (end - p < 3) return null;
    const b = await src.read(p, 3);
    const bh = b[0]! | (b[1]! << 8) | (b[2]! << 16);
    const last = bh & 1;
    const type = (bh >> 1) & 3;
    const size = bh >>> 3;
    if (type === 3 || size > MAX_BLOCK) return null;
    const stored = type === 1 ? 1 : size; // an RLE block stores its one byte
    p += 3 + stored;
    if (p > end) return null;
    if (!firstBlockEnd) firstBlockEnd = p - at;
    if (last) break;
  }
  if (checksum) p += 4;
  if (p > end) return null;
  return { size: p - at, contentSize, headerSize, firstBlockEnd, dictionary: dictFlag !== 0 };
}

/**
 * The CUDA arch an ELF header names (`sm_90`), or null when it is no CUDA
 * ELF. ABI version 8 and later (every cubin of CUDA 13, and sm_100 and newer
 * before it) keep the arch in bits 8-15 of e_flags, earlier ones in bits
 * 0-7. The header does not tell an arch-specific cubin from a plain one
 * (nvcc 13 writes the same e_flags for sm_90 and sm_90a), so the name is the
 * number alone; a plain name is kept for every target an `a` one is.
 */
export function cudaElfArch(head: Uint8Array): string | null {
  if (head.length < 52) return null;
  const b = Buffer.from(head.buffer, head.byteOffset, head.length);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) return null;
  if (b.readUInt16LE(18) !== EM_CUDA) return null;
  const flags = b.readUInt32LE(48);
  const sm = b[8]! >= 8 ? (flags >> 8) & 0xff : flags & 0xff;
  return sm >= 10 ? `sm_${sm}` : null;
}

/**
 * The first decompressed bytes of a frame (its first block), or null when
 * they do not decode. The block is decoded as a frame of its own: a header
 * with a 128 KiB window (all a first block can refer back to) and no content
 * size, then the block marked last. The decoder then needs 128 KiB, not the
 * frame's own window (megabytes, for each of hundreds of frames).
 */
export async function zstdFrameHead(src: ByteSource, at: number, f: ZstdFrame): Promise<Uint8Array | null> {
  if (f.dictionary) return null; // a frame that needs a dictionary is not one rocmflow can read
  const block = Buffer.from(await src.read(at + f.headerSize, f.firstBlockEnd - f.headerSize));
  block[0] = block[0]! | 1;
  // magic, descriptor (no content size, not single-segment, no checksum, no dictionary), window 2^17
  const mini = Buffer.concat([MAGIC, Buffer.from([0x00, 0x38]), block]);
  let head: Uint8Array | null = null;
  try {
    const d = new Decompress((chunk) => {
      if (!head) head = chunk;
    });
    d.push(mini, true);
  } catch {
    return null;
  }
  return head;
}

/**
 * The zstd-compressed cubins in `sec`, skipping ranges already taken by
 * other containers (a fatbin's compressed entries are zstd frames too).
 */
export async function readZstdCubins(
  src: ByteSource,
  sec: { name: string; offset: number; size: number },
  taken: readonly { offset: number; size: number }[],
  signal?: AbortSignal,
): Promise<FatbinContainer[]> {
  const end = sec.offset + sec.size;
  const inside = (p: number) => taken.some((t) => p >= t.offset && p < t.offset + t.size);
  const out: FatbinContainer[] = [];
  let at = sec.offset;
  while (at + 6 <= end) {
    signal?.throwIfAborted();
    const next = await findMagic(src, at, end);
    if (next < 0) break;
    at = next + 1;
    if (inside(next)) continue;
    const f = await readZstdFrame(src, next, end);
    if (!f) continue;
    const head = await zstdFrameHead(src, next, f);
    const arch = head && cudaElfArch(head);
    if (!arch) continue;
    out.push({
      format: 'cuda',
      kind: 'zstd-cubin',
      section: sec.name,
      offset: next,
      size: f.size,
      headerSize: f.headerSize,
      entries: [{ arch, id: `ELF ${arch}`, kind: 'code', offset: next, size: f.size, compression: 'zstd', ...(f.contentSize !== null ? { uncompressedSize: f.contentSize } : {}) }],
    });
    at = next + f.size;
  }
  return out;
}

async function findMagic(src: ByteSource, from: number, end: number): Promise<number> {
  for (let p = from; p < end; p += SCAN_CHUNK) {
    const buf = await src.read(p, Math.min(SCAN_CHUNK + 3, end - p));
    const i = buf.indexOf(MAGIC);
    if (i >= 0 && i < SCAN_CHUNK) return p + i;
  }
  return -1;
}
