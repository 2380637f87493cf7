/**
 * Clang offload bundles (`__CLANG_OFFLOAD_BUNDLE__`), the unit `.hip_fatbin`
 * is made of: 24-byte magic, u64 entry count, then per entry u64 offset
 * (from the bundle's start), u64 size, u64 id length and the id, e.g.
 * `hipv4-amdgcn-amd-amdhsa--gfx1100` or `host-x86_64-unknown-linux-gnu-`.
 * Little-endian on every host clang supports.
 */
import { malformed, type ByteSource } from './byte-source.js';

export const BUNDLE_MAGIC = Buffer.from('__CLANG_OFFLOAD_BUNDLE__', 'latin1');

/** Hard caps: far above anything clang writes, low enough to bound the work on hostile input. */
const MAX_ENTRIES = 1 << 16;
const MAX_ID = 4096;
const WINDOW = 64 << 10;

/** One entry of a bundle, as its header lists it. */
export interface BundleEntry {
  /** The bundle entry id, e.g. `hipv4-amdgcn-amd-amdhsa--gfx1100`. */
  id: string;
  /** Offset from the bundle's start. */
  offset: number;
  size: number;
}

/** A parsed bundle header. */
export interface ClangBundle {
  /** Where the bundle starts in its source. */
  at: number;
  /** Bytes of the header (magic, count, entry table). */
  headerSize: number;
  entries: BundleEntry[];
  /** Bundle length: the end of its furthest entry (or of the header). */
  length: number;
}

/** What a bundle entry id says. */
export interface BundleTarget {
  /** `host`, or the offload kind (`hipv4`, `hip`, `openmp`, ...). */
  kind: string;
  /** The target id: `gfx1100`, `gfx90a:xnack+`, `gfx11-generic`, `amdgcnspirv`; `host` for the host entry. */
  targetId: string;
  /** The target id without features: `gfx90a`. */
  processor: string;
}

/**
 * Split an entry id into kind, triple and target id. AMD triples are
 * `amdgcn-amd-amdhsa-` with an empty environment (so `--gfx1100` follows),
 * or the older three-part form (`hip-amdgcn-amd-amdhsa-gfx906`).
 */
export function parseBundleId(id: string): BundleTarget {
  const dash = id.indexOf('-');
  const kind = dash < 0 ? id : id.slice(0, dash);
  if (kind === 'host') return { kind, targetId: 'host', processor: 'host' };
  const rest = dash < 0 ? '' : id.slice(dash + 1);
  const m = /^(?:amdgcn|spirv64)-amd-amdhsa-(?:[^-]*-)?(.+)$/.exec(rest);
  const targetId = m ? m[1]! : rest.slice(rest.lastIndexOf('-') + 1) || rest;
  return { kind, targetId, processor: targetId.split(':')[0]! };
}

/** Does `buf` hold the bundle magic at `at`? */
export function isBundleAt(buf: Buffer, at = 0): boolean {
  return buf.length - at >= BUNDLE_MAGIC.length && buf.compare(BUNDLE_MAGIC, 0, BUNDLE_MAGIC.length, at, at + BUNDLE_MAGIC.length) === 0;
}

/**
 * Parse the bundle header at `at`; every entry must lie before `limit` (the
 * end of its section, or of the decompressed bundle). For a bundle inside a
 * compressed one, `base` names the compressed bundle's file offset, which
 * errors report instead of positions in the decompressed bytes.
 */
export async function readClangBundle(src: ByteSource, at: number, limit: number, base?: { offset: number; what: string }): Promise<ClangBundle> {
  const where = (pos: number) => (base ? base.offset : pos);
  const bad = (pos: number, why: string) => malformed(src.name, where(pos), base ? `${base.what}: ${why}` : why);
  const room = limit - at;
  // reads stop at the source's end; bounds checks use `limit` (a partial decompressed source is shorter than its bundle)
  const readable = Math.min(limit, src.size);
  if (room < 32) throw bad(at, `bundle header truncated: ${room} bytes before the end of its section`);
  const first = await src.read(at, 32);
  if (!isBundleAt(first)) throw bad(at, 'no __CLANG_OFFLOAD_BUNDLE__ magic');
  const count = Number(first.readBigUInt64LE(24));
  if (count > MAX_ENTRIES || count * 24 > room - 32) throw bad(at + 24, `bundle claims ${first.readBigUInt64LE(24)} entries, more than ${room - 32} bytes can hold`);

  // the entry table, read through a window so a long table costs bounded memory
  let win: Buffer = Buffer.alloc(0);
  let winAt = at + 32;
  let pos = at + 32;
  const take = async (n: number): Promise<Buffer> => {
    if (pos + n > limit) throw bad(pos, `bundle header truncated: entry table runs past the end of its section`);
    if (pos + n > winAt + win.length) {
      winAt = pos;
      win = await src.read(pos, Math.max(n, Math.min(WINDOW, readable - pos)));
    }
    const b = win.subarray(pos - winAt, pos - winAt + n);
    pos += n;
    return b;
  };
  const raw: Array<BundleEntry & { at: number }> = [];
  for (let i = 0; i < count; i++) {
    const entryAt = pos;
    const fixed = await take(24);
    const offset = fixed.readBigUInt64LE(0);
    const size = fixed.readBigUInt64LE(8);
    const idLen = fixed.readBigUInt64LE(16);
    if (idLen === 0n || idLen > BigInt(MAX_ID)) throw bad(entryAt + 16, `entry ${i}: id length ${idLen}`);
    const id = (await take(Number(idLen))).toString('latin1');
    if (offset > BigInt(room) || size > BigInt(room) || offset + size > BigInt(room))
      throw bad(entryAt, `entry ${i} (${id}): ${size} bytes at +${offset} run past the end of the ${room} bytes the bundle can have`);
    raw.push({ at: entryAt, id, offset: Number(offset), size: Number(size) });
  }
  const headerSize = pos - at;
  let length = headerSize;
  for (const e of raw) {
    if (e.size > 0 && e.offset < headerSize) throw bad(e.at, `entry ${e.id} at +${e.offset} overlaps the bundle header (${headerSize} bytes)`);
    length = Math.max(length, e.offset + e.size);
  }
  return { at, headerSize, entries: raw.map(({ id, offset, size }) => ({ id, offset, size })), length };
}

/** The bytes of a bundle header listing `entries` (offsets and sizes as given). */
export function encodeBundleHeader(entries: readonly BundleEntry[]): Buffer {
  const parts: Buffer[] = [BUNDLE_MAGIC, u64(entries.length)];
  for (const e of entries) {
    const id = Buffer.from(e.id, 'latin1');
    parts.push(u64(e.offset), u64(e.size), u64(id.length), id);
  }
  return Buffer.concat(parts);
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}
