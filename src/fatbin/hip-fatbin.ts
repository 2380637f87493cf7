/**
 * `.hip_fatbin`: a run of clang offload bundles, plain or compressed, one per
 * translation unit (or one per link with -fgpu-rdc), each 4 KiB-aligned with
 * zero padding between them. The host code finds each through its
 * `__hip_fatbin_wrapper` pointer, so a bundle never moves.
 */
import { malformed, type ByteSource } from './byte-source.js';
import { decompressHead, readCcobHeader, readRange, isCcobAt, CCOB_MAGIC, type CcobHeader } from './ccob.js';
import { BUNDLE_MAGIC, isBundleAt, parseBundleId, readClangBundle, type ClangBundle } from './clang-bundle.js';
import type { ElfSection } from './elf-sections.js';
import type { FatbinContainer, FatbinEntry } from './types.js';

/** Padding between bundles is under 4 KiB: scan in small windows first, growing to 1 MiB for odd files. */
const SCAN_FIRST = 16 << 10;
const SCAN_MAX = 1 << 20;
/** The decompressed prefix read first to find a compressed bundle's entry table; grown when the table is longer. */
const HEAD_FIRST = 64 << 10;
const HEAD_MAX = 16 << 20;

/** The first bundle magic (plain or compressed) at or after `from`, before `end`; -1 when none. */
export async function findBundleMagic(src: ByteSource, from: number, end: number): Promise<number> {
  const overlap = BUNDLE_MAGIC.length - 1;
  let chunk = SCAN_FIRST;
  for (let p = from; p < end; p += chunk - overlap, chunk = Math.min(chunk * 4, SCAN_MAX)) {
    const buf = await src.read(p, Math.min(chunk, end - p));
    const hits = [buf.indexOf(BUNDLE_MAGIC), buf.indexOf(CCOB_MAGIC)].filter((x) => x >= 0);
    if (hits.length) return p + Math.min(...hits);
    if (p + buf.length >= end) break;
  }
  return -1;
}

/** Every bundle of a `.hip_fatbin` section, in file order. */
export async function readHipSection(src: ByteSource, section: ElfSection, signal?: AbortSignal): Promise<FatbinContainer[]> {
  const end = section.offset + section.size;
  const out: FatbinContainer[] = [];
  let at = section.offset;
  while (at < end) {
    signal?.throwIfAborted();
    const head = await src.readUpTo(at, Math.min(32, end - at));
    if (isBundleAt(head)) {
      const b = await readClangBundle(src, at, end);
      out.push(plainContainer(b, section.name));
      at += b.length;
    } else if (isCcobAt(head)) {
      const c = await readCompressed(src, at, end, section.name, signal);
      out.push(c);
      at += c.size;
    } else {
      // padding between bundles (zeros, up to the next 4 KiB boundary)
      const next = await findBundleMagic(src, at + 1, end);
      if (next < 0) break;
      at = next;
    }
  }
  return out;
}

function entryOf(id: string, offset: number, size: number): FatbinEntry {
  const t = parseBundleId(id);
  return { arch: t.targetId, id, kind: t.kind === 'host' ? 'host' : 'code', offset, size };
}

function plainContainer(b: ClangBundle, section: string): FatbinContainer {
  return {
    format: 'hip',
    kind: 'bundle',
    section,
    offset: b.at,
    size: b.length,
    headerSize: b.headerSize,
    entries: b.entries.map((e) => entryOf(e.id, b.at + e.offset, e.size)),
  };
}

/**
 * A compressed bundle: its header, and the entry table of the bundle inside,
 * read by decompressing only the first bytes of the stream.
 */
async function readCompressed(src: ByteSource, at: number, end: number, section: string, signal?: AbortSignal): Promise<FatbinContainer> {
  const h = await readCcobHeader(src, at, end - at);
  let size = h.totalSize;
  if (size === null) {
    // v1 records no size: it runs to the next bundle, as LLVM reads it
    const next = await findBundleMagic(src, at + 4, end);
    size = (next < 0 ? end : next) - at;
  }
  const inner = await readInnerBundle(src, at, size, h, signal);
  return {
    format: 'hip',
    kind: 'compressed-bundle',
    section,
    offset: at,
    size,
    headerSize: inner.headerSize,
    entries: inner.entries.map((e) => entryOf(e.id, e.offset, e.size)),
    compressed: h,
  };
}

/** Thrown by a partial source when the entry table runs past the bytes decompressed so far. */
class NeedMore {
  constructor(readonly bytes: number) {}
}

/** The entry table of the bundle inside a compressed one (offsets relative to the decompressed bundle). */
export async function readInnerBundle(src: ByteSource, at: number, size: number, h: CcobHeader, signal?: AbortSignal): Promise<ClangBundle> {
  const bad = (why: string) => malformed(src.name, at, `compressed bundle: ${why}`);
  const what = `compressed bundle (v${h.version}, ${h.method})`;
  if (h.uncompressedSize < 32) throw bad(`uncompressed size ${h.uncompressedSize} cannot hold a bundle header`);
  let need = Math.min(h.uncompressedSize, HEAD_FIRST);
  for (;;) {
    const head = await decompressHead(h.method, readRange(src, at + h.headerSize, size - h.headerSize), need, bad, signal);
    if (head.length < need) throw bad(`decompresses to ${head.length} bytes or fewer, header says ${h.uncompressedSize}`);
    const partial: ByteSource = {
      name: src.name,
      size: head.length,
      read: async (pos, len) => {
        if (pos + len > head.length) throw new NeedMore(pos + len);
        return head.subarray(pos, pos + len);
      },
      readUpTo: async (pos, len) => head.subarray(pos, pos + len),
      close: async () => {},
    };
    try {
      return await readClangBundle(partial, 0, h.uncompressedSize, { offset: at, what });
    } catch (e) {
      if (!(e instanceof NeedMore)) throw e;
      if (need >= h.uncompressedSize || need >= HEAD_MAX) throw bad(`entry table is longer than ${HEAD_MAX} bytes`);
      need = Math.min(h.uncompressedSize, HEAD_MAX, Math.max(e.bytes, need * 4));
    }
  }
}
