/**
 * The section headers of an ELF file, read with a few positional reads (the
 * header, the section header table, the section-name table), so a 1 GB
 * library costs kilobytes.
 */
import { decodeElfHeader, ELF_HEADER_BYTES, isElf } from '../util/elf-header.js';
import { malformed, type ByteSource } from './byte-source.js';

/** One section: where its bytes are in the file. */
export interface ElfSection {
  index: number;
  name: string;
  /** sh_type (1 PROGBITS, 8 NOBITS, ...). */
  type: number;
  /** sh_flags (2 ALLOC, 4 EXECINSTR, ...). */
  flags: number;
  /** Virtual address (0 in relocatable objects). */
  addr: number;
  /** File offset of the section's bytes. */
  offset: number;
  /** Bytes in the file (0 for NOBITS sections, which occupy none). */
  size: number;
  align: number;
}

export const SHT_NOBITS = 8;
export const SHF_EXECINSTR = 4;

/** Section tables beyond this are refused (ELF's own limit with extended numbering is far above any real file). */
const MAX_SECTIONS = 1 << 20;
const MAX_NAMES = 16 << 20;

/** The sections of an ELF file; null when `src` is not an ELF file. Any header that points outside the file is E_FATBIN_MALFORMED. */
export async function readElfSections(src: ByteSource): Promise<ElfSection[] | null> {
  const head = await src.readUpTo(0, ELF_HEADER_BYTES);
  if (!isElf(head)) return null;
  const h = decodeElfHeader(head, (why) => malformed(src.name, 0, `ELF header: ${why}`));
  const is64 = h.class === 64;
  const entsize = is64 ? 64 : 40;
  if (h.shoff === 0) return [];
  if (h.shentsize < entsize) throw malformed(src.name, is64 ? 58 : 46, `e_shentsize ${h.shentsize} is below ${entsize}`);
  if (h.shoff > src.size) throw malformed(src.name, is64 ? 40 : 32, `section headers at 0x${h.shoff.toString(16)} are past the end of the file`);
  const shdr = (b: Buffer, o: number) =>
    is64
      ? { name: h.u32(b, o), type: h.u32(b, o + 4), flags: h.u64(b, o + 8), addr: h.u64(b, o + 16), offset: h.u64(b, o + 24), size: h.u64(b, o + 32), link: h.u32(b, o + 40), align: h.u64(b, o + 48) }
      : { name: h.u32(b, o), type: h.u32(b, o + 4), flags: h.u32(b, o + 8), addr: h.u32(b, o + 12), offset: h.u32(b, o + 16), size: h.u32(b, o + 20), link: h.u32(b, o + 24), align: h.u32(b, o + 32) };

  // extended numbering: the real count and name-table index live in section 0
  let count = h.shnum;
  let strndx = h.shstrndx;
  if (count === 0 || strndx === 0xffff) {
    const s0 = shdr(await src.read(h.shoff, h.shentsize), 0);
    if (count === 0) count = s0.size;
    if (strndx === 0xffff) strndx = s0.link;
  }
  if (count > MAX_SECTIONS) throw malformed(src.name, h.shoff, `${count} sections`);
  const tableBytes = count * h.shentsize;
  if (h.shoff + tableBytes > src.size) throw malformed(src.name, h.shoff, `section header table (${count} × ${h.shentsize} bytes) runs past the end of the file`);
  const table = await src.read(h.shoff, tableBytes);
  const raw = Array.from({ length: count }, (_, i) => ({ i, at: h.shoff + i * h.shentsize, ...shdr(table, i * h.shentsize) }));

  for (const s of raw) {
    if (s.type === SHT_NOBITS) continue;
    if (!Number.isSafeInteger(s.offset + s.size) || s.offset + s.size > src.size)
      throw malformed(src.name, s.at, `section ${s.i} (0x${s.offset.toString(16)} + ${s.size} bytes) runs past the end of the file (${src.size} bytes)`);
  }
  let names: Buffer | null = null;
  if (strndx !== 0 && strndx < count) {
    const st = raw[strndx]!;
    if (st.type === SHT_NOBITS || st.size > MAX_NAMES) throw malformed(src.name, st.at, 'section-name table is not a readable string table');
    names = await src.read(st.offset, st.size);
  }
  const nameAt = (s: (typeof raw)[number]) => {
    if (!names) return '';
    if (s.name >= names.length) throw malformed(src.name, s.at, `section ${s.i}: name offset ${s.name} is outside the section-name table`);
    const end = names.indexOf(0, s.name);
    return names.toString('latin1', s.name, end < 0 ? names.length : end);
  };
  return raw.map((s) => ({
    index: s.i,
    name: nameAt(s),
    type: s.type,
    flags: s.flags,
    addr: s.addr,
    offset: s.offset,
    size: s.type === SHT_NOBITS ? 0 : s.size,
    align: s.align,
  }));
}
