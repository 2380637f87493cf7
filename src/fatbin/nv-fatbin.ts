/**
 * NVIDIA fatbins: a 16-byte header (u32 magic 0xBA55ED50, u16 version,
 * u16 header size, u64 size of the entries that follow), then entries, each
 * a header and a payload:
 *
 *   0x00 u16 kind (1 PTX, 2 ELF cubin)   0x02 u16 version   0x04 u32 header size
 *   0x08 u64 payload size (padded to 8)  0x10 u32 compressed size
 *   0x18 u16, 0x1a u16 (ELF ABI / PTX ISA version)          0x1c u32 arch (90 = sm_90)
 *   0x28 u64 flags: 0x2000 LZ4, 0x8000 zstd, 0x100000 "a" (sm_90a), 0x200000 "f" (sm_100f)
 *   0x38 u64 decompressed size
 *
 * `.nv_fatbin` holds a run of them (one per registered module); other
 * sections can hold more (cuBLASLt's `.cask_resource`), found by scanning
 * for the magic at 8-byte-aligned offsets. Little-endian.
 */
import { malformed, type ByteSource } from './byte-source.js';
import type { FatbinContainer, FatbinEntry } from './types.js';

export const NV_FATBIN_MAGIC = 0xba55ed50;
const MAGIC_BYTES = Buffer.from([0x50, 0xed, 0x55, 0xba]);
/** The smallest entry header seen (64 bytes; PTX and newer cubins have 80-112). */
const MIN_ENTRY_HEADER = 64;
const MAX_HEADER = 4096;
const SCAN_CHUNK = 1 << 20;

const FLAG_LZ4 = 0x2000n;
const FLAG_ZSTD = 0x8000n;
const FLAG_OLD_COMPRESS = 0x1000n;
const FLAG_ARCH_SPECIFIC = 0x100000n;
const FLAG_FAMILY_SPECIFIC = 0x200000n;

/** Is there a fatbin magic at `at` of `buf`? */
export function isNvFatbinAt(buf: Buffer, at = 0): boolean {
  return buf.length - at >= 4 && buf.readUInt32LE(at) === NV_FATBIN_MAGIC;
}

/** The arch key of an entry: `sm_90`, `sm_90a`, `sm_100f` for cubins, `compute_90` for PTX. */
export function nvArchName(kind: number, arch: number, flags: bigint): string {
  const suffix = flags & FLAG_ARCH_SPECIFIC ? 'a' : flags & FLAG_FAMILY_SPECIFIC ? 'f' : '';
  return `${kind === 1 ? 'compute' : 'sm'}_${arch}${suffix}`;
}

/**
 * Parse the fatbin at `at`, which must end by `end`. Errors are
 * E_FATBIN_MALFORMED at the offending offset.
 */
export async function readNvFatbin(src: ByteSource, at: number, end: number, section: string): Promise<FatbinContainer> {
  const bad = (pos: number, why: string) => malformed(src.name, pos, `CUDA fatbin: ${why}`);
  if (end - at < 16) throw bad(at, 'header truncated');
  const h = await src.read(at, 16);
  if (!isNvFatbinAt(h)) throw bad(at, 'no fatbin magic');
  const headerSize = h.readUInt16LE(6);
  const fatSize = h.readBigUInt64LE(8);
  if (headerSize < 16 || headerSize > MAX_HEADER) throw bad(at + 6, `header size ${headerSize}`);
  if (BigInt(at + headerSize) + fatSize > BigInt(end))
    throw bad(at + 8, `${fatSize} bytes of entries run past the end of section ${section} (${Math.max(0, end - at - headerSize)} bytes left)`);
  const stop = at + headerSize + Number(fatSize);
  const entries: FatbinEntry[] = [];
  let p = at + headerSize;
  // every entry takes at least MIN_ENTRY_HEADER bytes, so this loop is bounded by fatSize / 64
  while (p < stop) {
    if (stop - p < MIN_ENTRY_HEADER) {
      const rest = await src.read(p, stop - p);
      if (rest.every((b) => b === 0)) break; // padding
      throw bad(p, `${stop - p} bytes left in the fatbin, too few for an entry header`);
    }
    const e = await src.read(p, MIN_ENTRY_HEADER);
    const kind = e.readUInt16LE(0);
    if (kind === 0 && e.every((b) => b === 0)) break; // zero padding to the end
    const ehs = e.readUInt32LE(4);
    const size = e.readBigUInt64LE(8);
    if (kind !== 1 && kind !== 2 && kind !== 4) throw bad(p, `entry kind ${kind} (1 PTX, 2 ELF)`);
    if (ehs < MIN_ENTRY_HEADER || ehs > MAX_HEADER) throw bad(p + 4, `entry header size ${ehs}`);
    if (BigInt(p + ehs) + size > BigInt(stop)) throw bad(p + 8, `entry payload (${size} bytes after a ${ehs}-byte header) runs past the end of its fatbin`);
    const arch = e.readUInt32LE(0x1c);
    const flags = e.readBigUInt64LE(0x28);
    const name = nvArchName(kind, arch, flags);
    const compression = flags & FLAG_ZSTD ? 'zstd' : flags & FLAG_LZ4 ? 'lz4' : flags & FLAG_OLD_COMPRESS ? 'unknown' : undefined;
    const entry: FatbinEntry = {
      arch: name,
      id: `${kind === 1 ? 'PTX' : 'ELF'} ${name}`,
      kind: kind === 1 ? 'ptx' : 'code',
      offset: p + ehs,
      size: Number(size),
      headerSize: ehs,
    };
    if (compression) {
      entry.compression = compression;
      entry.uncompressedSize = Number(e.readBigUInt64LE(0x38));
    }
    entries.push(entry);
    p += ehs + Number(size);
  }
  return { format: 'cuda', kind: 'nv-fatbin', section, offset: at, size: stop - at, headerSize, entries };
}

/**
 * The fatbins of a section. In `.nv_fatbin` (`strict`) they follow each
 * other with zero padding, and a damaged one is an error. Elsewhere the
 * magic may be chance data: a candidate that does not parse is skipped.
 */
export async function readNvSection(src: ByteSource, sec: { name: string; offset: number; size: number }, strict: boolean, signal?: AbortSignal): Promise<FatbinContainer[]> {
  const end = sec.offset + sec.size;
  const out: FatbinContainer[] = [];
  let at = alignUp(sec.offset, 8);
  while (at + 16 <= end) {
    signal?.throwIfAborted();
    const next = await findAlignedMagic(src, at, end);
    if (next < 0) break;
    try {
      const f = await readNvFatbin(src, next, end, sec.name);
      out.push(f);
      at = alignUp(next + f.size, 8);
    } catch (e) {
      if (strict) throw e;
      at = next + 8;
    }
  }
  return out;
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** The first fatbin magic at an 8-byte-aligned file offset in [from, end); -1 when none. */
async function findAlignedMagic(src: ByteSource, from: number, end: number): Promise<number> {
  for (let p = from; p < end; p += SCAN_CHUNK) {
    const buf = await src.read(p, Math.min(SCAN_CHUNK + 3, end - p));
    let i = buf.indexOf(MAGIC_BYTES);
    while (i >= 0 && i < SCAN_CHUNK) {
      if ((p + i) % 8 === 0) return p + i;
      i = buf.indexOf(MAGIC_BYTES, i + 1);
    }
  }
  return -1;
}
