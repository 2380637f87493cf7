/**
 * Which GPU arches a library (or executable, or object) carries device code
 * for, and how many bytes each takes, read from its ELF sections with
 * bounded positional reads.
 */
import { withFileSource, type ByteSource } from './byte-source.js';
import { readElfSections, SHF_EXECINSTR, type ElfSection } from './elf-sections.js';
import { readHipSection } from './hip-fatbin.js';
import { readNvSection } from './nv-fatbin.js';
import { readZstdCubins } from './zstd-cubin.js';
import type { FatbinContainer, FatbinFormat } from './types.js';

/** The device code of one file. */
export interface FatbinListing {
  file: string;
  /** `hip` or `cuda`; null when the file has no device code (or is not ELF). */
  format: FatbinFormat | null;
  /** The file's size in bytes. */
  fileBytes: number;
  /**
   * Bytes of code per arch, summed over every container (host entries left
   * out). Entries inside compressed bundles count their decompressed size
   * (the format records no per-entry compressed size); CUDA entries count
   * their payload as stored, compressed or not.
   */
  arches: Record<string, number>;
  /** Every container, in file order. */
  containers: FatbinContainer[];
}

const SHT_PROGBITS = 1;
/** Sections that may hold CUDA fatbins (or bare compressed cubins) besides `.nv_fatbin`: data, not code, symbols or debug info. */
function mayHoldNvFatbins(s: ElfSection): boolean {
  return s.type === SHT_PROGBITS && !(s.flags & SHF_EXECINSTR) && s.size >= 80 && s.name !== '.nv_fatbin' && s.name !== '.hip_fatbin' && !s.name.startsWith('.debug');
}

/** Read every container of `src`. */
export async function readFatbins(src: ByteSource, signal?: AbortSignal): Promise<{ format: FatbinFormat | null; containers: FatbinContainer[] }> {
  const sections = await readElfSections(src);
  if (!sections) return { format: null, containers: [] };
  const containers: FatbinContainer[] = [];
  for (const s of sections.filter((x) => x.name === '.hip_fatbin')) containers.push(...(await readHipSection(src, s, signal)));
  const isCuda = sections.some((x) => x.name === '.nv_fatbin' || x.name === '.nvFatBinSegment');
  if (isCuda) {
    for (const s of sections.filter((x) => x.name === '.nv_fatbin')) containers.push(...(await readNvSection(src, s, true, signal)));
    for (const s of sections.filter(mayHoldNvFatbins)) {
      const fatbins = await readNvSection(src, s, false, signal);
      containers.push(...fatbins, ...(await readZstdCubins(src, s, fatbins, signal)));
    }
  }
  containers.sort((a, b) => a.offset - b.offset);
  const format = containers.length === 0 ? null : containers.some((c) => c.format === 'hip') ? 'hip' : 'cuda';
  return { format, containers };
}

/** Sum entry sizes per arch (host entries left out). */
export function archBytes(containers: readonly FatbinContainer[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of containers) for (const e of c.entries) if (e.kind !== 'host') out[e.arch] = (out[e.arch] ?? 0) + e.size;
  return sortArches(out);
}

/** The same record with its arches in version order (gfx803, gfx90a, gfx1010, gfx11-generic; sm_80, sm_100, then PTX). */
export function sortArches(m: Record<string, number>): Record<string, number> {
  // AMD processors are gfx<major><minor hex><stepping hex>; generic ISAs sort after their line
  const key = (a: string) => {
    const p = /^gfx(\d+)([0-9a-f])([0-9a-f])(:.*)?$/.exec(a);
    if (p) return `gfx${p[1]!.padStart(3, '0')}${p[2]}${p[3]}${p[4] ?? ''}`;
    const g = /^gfx(\d+)(-.*)$/.exec(a);
    if (g) return `gfx${g[1]!.padStart(3, '0')}~${g[2]}`;
    const c = /^(sm|compute)_(\d+)(.*)$/.exec(a);
    if (c) return `~${c[1] === 'sm' ? 0 : 1}${c[2]!.padStart(4, '0')}${c[3]}`;
    return a.replace(/\d+/g, (d) => d.padStart(6, '0'));
  };
  return Object.fromEntries(Object.entries(m).sort(([a], [b]) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)));
}

/** The arches `file` carries code for, with their bytes and containers. */
export async function archesOf(file: string, opts: { signal?: AbortSignal } = {}): Promise<FatbinListing> {
  return withFileSource(file, async (src) => {
    const { format, containers } = await readFatbins(src, opts.signal);
    return { file, format, fileBytes: src.size, arches: archBytes(containers), containers };
  });
}
