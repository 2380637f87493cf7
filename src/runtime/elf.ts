/**
 * Just enough of an ELF reader for closures: the program interpreter and the
 * dynamic section (needed libraries, rpath/runpath, soname). Reads only the
 * header, the program headers and the string table, so a 1 GB library with
 * device code costs a few small reads.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { RocmflowError } from '../errors.js';
import { decodeElfHeader, ELF_HEADER_BYTES, isElf } from '../util/elf-header.js';

/** What a closure needs to know about an ELF file. */
export interface ElfInfo {
  /** 32 or 64. */
  class: 32 | 64;
  /** 'little' or 'big'. */
  endian: 'little' | 'big';
  /** e_machine (62 = x86-64, 183 = AArch64, 3 = i386). */
  machine: number;
  /** e_type: 'exec', 'dyn' (shared object or PIE), 'rel', 'core' or 'other'. */
  type: 'exec' | 'dyn' | 'rel' | 'core' | 'other';
  /** PT_INTERP, e.g. `/lib64/ld-linux-x86-64.so.2`; null for shared libraries and static programs. */
  interp: string | null;
  /** DT_NEEDED entries, in order. */
  needed: string[];
  /** DT_RPATH split on ':' (empty when absent). */
  rpath: string[];
  /** DT_RUNPATH split on ':' (empty when absent). */
  runpath: string[];
  /** DT_SONAME, if any. */
  soname: string | null;
}

const PT_LOAD = 1, PT_DYNAMIC = 2, PT_INTERP = 3;
const DT_NULL = 0, DT_NEEDED = 1, DT_STRTAB = 5, DT_STRSZ = 10, DT_SONAME = 14, DT_RPATH = 15, DT_RUNPATH = 29;
const TYPES = { 1: 'rel', 2: 'exec', 3: 'dyn', 4: 'core' } as const;

/** Read `file`'s ELF facts; null when it is not an ELF file. A damaged ELF throws E_ELF naming the file. */
export async function readElf(file: string): Promise<ElfInfo | null> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw new RocmflowError('E_ELF', `cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    const size = (await fh.stat()).size;
    const head = await readAt(fh, 0, ELF_HEADER_BYTES);
    if (!isElf(head)) return null;
    return await parse(fh, file, size, head);
  } finally {
    await fh.close();
  }
}

async function readAt(fh: FileHandle, pos: number, len: number): Promise<Buffer> {
  const buf = Buffer.alloc(len);
  const { bytesRead } = await fh.read(buf, 0, len, pos);
  return buf.subarray(0, bytesRead);
}

async function parse(fh: FileHandle, file: string, size: number, head: Buffer): Promise<ElfInfo> {
  const bad = (why: string) => new RocmflowError('E_ELF', `malformed ELF file ${file}: ${why}`);
  const h = decodeElfHeader(head, bad);
  const { class: cls, endian, u32, u64, word, sword, etype, machine, phoff, phentsize, phnum } = h;
  const is64 = cls === 64;
  const info: ElfInfo = {
    class: cls, endian, machine, type: TYPES[etype as keyof typeof TYPES] ?? 'other',
    interp: null, needed: [], rpath: [], runpath: [], soname: null,
  };
  if (phnum === 0) return info; // relocatable objects have no program headers
  if (phentsize < (is64 ? 56 : 32) || phoff + phnum * phentsize > size) throw bad('program headers out of bounds');
  const ph = await readAt(fh, phoff, phnum * phentsize);

  const loads: { vaddr: number; offset: number; filesz: number }[] = [];
  let dyn: { offset: number; filesz: number } | null = null;
  for (let i = 0; i < phnum; i++) {
    const o = i * phentsize;
    const type = u32(ph, o);
    const offset = is64 ? u64(ph, o + 8) : u32(ph, o + 4);
    const vaddr = is64 ? u64(ph, o + 16) : u32(ph, o + 8);
    const filesz = is64 ? u64(ph, o + 32) : u32(ph, o + 16);
    if (type === PT_LOAD) loads.push({ vaddr, offset, filesz });
    else if (type === PT_DYNAMIC) dyn = { offset, filesz };
    else if (type === PT_INTERP) {
      if (offset + filesz > size || filesz === 0) throw bad('PT_INTERP out of bounds');
      const s = await readAt(fh, offset, filesz);
      const nul = s.indexOf(0);
      info.interp = s.subarray(0, nul < 0 ? s.length : nul).toString('utf8');
    }
  }
  if (!dyn) return info; // static program
  if (dyn.offset + dyn.filesz > size) throw bad('PT_DYNAMIC out of bounds');
  const d = await readAt(fh, dyn.offset, dyn.filesz);
  const entsz = is64 ? 16 : 8;
  let strtab = -1, strsz = -1, soname = -1;
  const needed: number[] = [], rpath: number[] = [], runpath: number[] = [];
  for (let o = 0; o + entsz <= d.length; o += entsz) {
    const tag = sword(d, o);
    const val = word(d, o + entsz / 2);
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED) needed.push(val);
    else if (tag === DT_STRTAB) strtab = val;
    else if (tag === DT_STRSZ) strsz = val;
    else if (tag === DT_SONAME) soname = val;
    else if (tag === DT_RPATH) rpath.push(val);
    else if (tag === DT_RUNPATH) runpath.push(val);
  }
  if (needed.length + rpath.length + runpath.length === 0 && soname < 0) return info;
  if (strtab < 0 || strsz < 0) throw bad('dynamic section without DT_STRTAB/DT_STRSZ');
  // DT_STRTAB is a virtual address: map it to a file offset through the PT_LOAD that contains it
  const seg = loads.find((l) => strtab >= l.vaddr && strtab < l.vaddr + l.filesz);
  if (!seg) throw bad(`DT_STRTAB 0x${strtab.toString(16)} is not inside any PT_LOAD segment`);
  const stroff = seg.offset + (strtab - seg.vaddr);
  if (stroff + strsz > size) throw bad('string table out of bounds');
  const strs = await readAt(fh, stroff, strsz);
  const str = (off: number) => {
    if (off >= strs.length) throw bad(`string offset ${off} beyond DT_STRSZ ${strsz}`);
    const end = strs.indexOf(0, off);
    return strs.subarray(off, end < 0 ? strs.length : end).toString('utf8');
  };
  info.needed = needed.map(str);
  info.rpath = rpath.flatMap((o) => str(o).split(':')).filter(Boolean);
  info.runpath = runpath.flatMap((o) => str(o).split(':')).filter(Boolean);
  info.soname = soname >= 0 ? str(soname) : null;
  return info;
}
