/**
 * The ELF file header, decoded once for every reader of ELF files (the
 * closure's dynamic-section reader and the fat-binary section reader), with
 * field readers for the file's class and byte order.
 */

/** Readers of fixed-size fields in the file's byte order; `word` is 4 or 8 bytes by class. */
export interface ElfFields {
  u16(b: Buffer, o: number): number;
  u32(b: Buffer, o: number): number;
  /** A u64 as a number; values above 2^53 lose precision, which every bounds check then refuses. */
  u64(b: Buffer, o: number): number;
  word(b: Buffer, o: number): number;
  sword(b: Buffer, o: number): number;
}

/** The e_* fields of an ELF header that locate everything else. */
export interface ElfHeader extends ElfFields {
  class: 32 | 64;
  endian: 'little' | 'big';
  /** e_type: 1 rel, 2 exec, 3 dyn, 4 core. */
  etype: number;
  /** e_machine (62 = x86-64, 183 = AArch64, 3 = i386). */
  machine: number;
  phoff: number;
  phentsize: number;
  phnum: number;
  shoff: number;
  shentsize: number;
  /** e_shnum as stored: 0 with shoff set means the count is in section 0's sh_size. */
  shnum: number;
  /** e_shstrndx as stored: 0xffff means the index is in section 0's sh_link. */
  shstrndx: number;
}

/** Bytes to read from offset 0 to decode any ELF header. */
export const ELF_HEADER_BYTES = 64;

/** Is this the start of an ELF file? */
export function isElf(head: Buffer): boolean {
  return head.length >= 16 && head.readUInt32BE(0) === 0x7f454c46;
}

/**
 * Decode the header from the first bytes of an ELF file (at least 64, or the
 * whole file when shorter). `bad(why)` makes the caller's error.
 */
export function decodeElfHeader(head: Buffer, bad: (why: string) => Error): ElfHeader {
  const cls = head[4] === 1 ? 32 : head[4] === 2 ? 64 : null;
  const endian = head[5] === 1 ? 'little' : head[5] === 2 ? 'big' : null;
  if (!cls) throw bad(`unknown class ${head[4]}`);
  if (!endian) throw bad(`unknown data encoding ${head[5]}`);
  const is64 = cls === 64;
  if (head.length < (is64 ? 64 : 52)) throw bad('truncated header');
  const le = endian === 'little';
  const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u64 = (b: Buffer, o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  const fields: ElfFields = {
    u16,
    u32,
    u64,
    word: (b, o) => (is64 ? u64(b, o) : u32(b, o)),
    sword: (b, o) => (is64 ? Number(le ? b.readBigInt64LE(o) : b.readBigInt64BE(o)) : le ? b.readInt32LE(o) : b.readInt32BE(o)),
  };
  return {
    ...fields,
    class: cls,
    endian,
    etype: u16(head, 16),
    machine: u16(head, 18),
    phoff: is64 ? u64(head, 32) : u32(head, 28),
    shoff: is64 ? u64(head, 40) : u32(head, 32),
    phentsize: u16(head, is64 ? 54 : 42),
    phnum: u16(head, is64 ? 56 : 44),
    shentsize: u16(head, is64 ? 58 : 46),
    shnum: u16(head, is64 ? 60 : 48),
    shstrndx: u16(head, is64 ? 62 : 50),
  };
}
