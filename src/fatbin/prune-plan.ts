/**
 * Plan a prune: from a file's containers and the arches to keep, which bytes
 * of the file are dropped (left as holes) and what is written instead. A
 * pure function of the listing, so the plan can be shown before anything is
 * written.
 *
 * - Plain bundle: the header is rewritten in place listing only the kept
 *   entries (and the host entry), whose offsets and bytes stay where they
 *   are; the dropped entries' bytes become holes. The loader finds the bundle
 *   through the host code's pointer and every kept entry by its offset, so
 *   nothing it reads moves.
 * - Compressed bundle (v2, v3): rebuilt from the kept entries, recompressed
 *   in place at the same start with its total size and hash updated; the rest
 *   of its old range becomes a hole. v1 records no total size, so a shorter
 *   v1 bundle could not be told from the padding after it: it stays whole.
 * - NVIDIA fatbin: rewritten at the same start with only the kept entries
 *   (headers and payloads byte-identical) one after another, its size field
 *   updated; the rest of its old range becomes a hole.
 * - Bare zstd cubin (one CUDA ELF compressed on its own, found in a data
 *   section): a dropped one becomes a hole. The library reaches it through a
 *   pointer to its first byte and decompresses it only to load that kernel,
 *   which it never does on a GPU of another arch.
 */
import { encodeBundleHeader } from './clang-bundle.js';
import type { FatbinContainer, FatbinEntry, FatbinFormat } from './types.js';

/** A byte range of the file. */
export interface ByteRange {
  offset: number;
  size: number;
}

/** One entry removed by the prune, and where it was. */
export interface PrunedEntry {
  /** Section and file offset of its container. */
  section: string;
  container: number;
  containerKind: FatbinContainer['kind'];
  arch: string;
  id: string;
  /** File offset and bytes of the code (inside a compressed bundle: its offset and size there). */
  offset: number;
  size: number;
}

/** Work done after the kept bytes are copied. */
export type PruneOp =
  | { kind: 'write'; offset: number; bytes: Buffer }
  | { kind: 'move'; from: number; to: number; size: number }
  | { kind: 'rebuild'; container: FatbinContainer; keep: FatbinEntry[] };

export interface PrunePlan {
  format: FatbinFormat;
  keep: string[];
  /** Ranges of the source not copied: they stay holes unless an op writes there. */
  drop: ByteRange[];
  ops: PruneOp[];
  /** What is removed, from where. */
  pruned: PrunedEntry[];
  /** Containers left as they were, and why. */
  leftWhole: Array<{ section: string; offset: number; reason: string }>;
  /** Bytes of code kept / dropped per arch (as `arches` counts them). */
  kept: Record<string, number>;
  dropped: Record<string, number>;
  /** Containers with device code of which none is kept (the target has no code there). */
  emptied: number;
}

/** Does `keep` keep this entry? Host entries always; AMD arches by processor too (`gfx1100` keeps `gfx1100:xnack-`). */
export function isKept(keep: ReadonlySet<string>, e: FatbinEntry): boolean {
  if (e.kind === 'host') return true;
  return keep.has(e.arch) || keep.has(e.arch.split(':')[0]!);
}

/** Plan the prune of `containers` (a file's listing) down to `keep`. */
export function planPrune(format: FatbinFormat, containers: readonly FatbinContainer[], keep: readonly string[]): PrunePlan {
  const want = new Set(keep);
  const plan: PrunePlan = { format, keep: [...keep], drop: [], ops: [], pruned: [], leftWhole: [], kept: {}, dropped: {}, emptied: 0 };
  const add = (m: Record<string, number>, e: FatbinEntry) => e.kind !== 'host' && (m[e.arch] = (m[e.arch] ?? 0) + e.size);
  for (const c of containers) {
    const kept = c.entries.filter((e) => isKept(want, e));
    const gone = c.entries.filter((e) => !isKept(want, e));
    if (gone.length === 0) {
      kept.forEach((e) => add(plan.kept, e));
      continue;
    }
    if (c.kind === 'compressed-bundle' && c.compressed?.totalSize === null) {
      plan.leftWhole.push({ section: c.section, offset: c.offset, reason: `compressed bundle v1 (no total size in its header): left whole` });
      c.entries.forEach((e) => add(plan.kept, e));
      continue;
    }
    kept.forEach((e) => add(plan.kept, e));
    gone.forEach((e) => add(plan.dropped, e));
    if (c.entries.some((e) => e.kind !== 'host') && !kept.some((e) => e.kind !== 'host')) plan.emptied++;
    for (const e of gone)
      plan.pruned.push({ section: c.section, container: c.offset, containerKind: c.kind, arch: e.arch, id: e.id, offset: e.offset, size: e.size });
    if (c.kind === 'bundle') planBundle(plan, c, kept, gone);
    else if (c.kind === 'compressed-bundle') {
      plan.drop.push({ offset: c.offset, size: c.size });
      plan.ops.push({ kind: 'rebuild', container: c, keep: kept });
    } else if (c.kind === 'zstd-cubin') plan.drop.push({ offset: c.offset, size: c.size });
    else planNvFatbin(plan, c, kept);
  }
  plan.drop = normalize(plan.drop);
  return plan;
}

function planBundle(plan: PrunePlan, c: FatbinContainer, kept: FatbinEntry[], gone: FatbinEntry[]): void {
  const header = encodeBundleHeader(kept.map((e) => ({ id: e.id, offset: e.offset - c.offset, size: e.size })));
  // the new header is shorter than the old one; zeros fill the rest of the old header's bytes
  const bytes = Buffer.alloc(c.headerSize);
  header.copy(bytes);
  plan.ops.push({ kind: 'write', offset: c.offset, bytes });
  // a dropped entry's bytes are a hole, except where a kept entry (or the header) shares them
  const keepRanges = normalize([{ offset: c.offset, size: c.headerSize }, ...kept.map((e) => ({ offset: e.offset, size: e.size }))]);
  for (const e of gone) plan.drop.push(...subtract({ offset: e.offset, size: e.size }, keepRanges));
}

function planNvFatbin(plan: PrunePlan, c: FatbinContainer, kept: FatbinEntry[]): void {
  plan.drop.push({ offset: c.offset, size: c.size });
  // the fatbin header (its first headerSize bytes) is copied, then its size field at +8 is set
  plan.ops.push({ kind: 'move', from: c.offset, to: c.offset, size: c.headerSize });
  let to = c.offset + c.headerSize;
  for (const e of kept) {
    const start = e.offset - e.headerSize!;
    const size = e.headerSize! + e.size;
    plan.ops.push({ kind: 'move', from: start, to, size });
    to += size;
  }
  const fatSize = Buffer.alloc(8);
  fatSize.writeBigUInt64LE(BigInt(to - c.offset - c.headerSize));
  plan.ops.push({ kind: 'write', offset: c.offset + 8, bytes: fatSize });
}

/** Sorted, merged, non-empty ranges. */
export function normalize(ranges: readonly ByteRange[]): ByteRange[] {
  const sorted = ranges.filter((r) => r.size > 0).sort((a, b) => a.offset - b.offset);
  const out: ByteRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.offset <= last.offset + last.size) last.size = Math.max(last.size, r.offset + r.size - last.offset);
    else out.push({ ...r });
  }
  return out;
}

/** `r` minus the sorted, merged `holes`. */
function subtract(r: ByteRange, holes: readonly ByteRange[]): ByteRange[] {
  const out: ByteRange[] = [];
  let at = r.offset;
  const end = r.offset + r.size;
  for (const h of holes) {
    if (h.offset + h.size <= at || h.offset >= end) continue;
    if (h.offset > at) out.push({ offset: at, size: h.offset - at });
    at = Math.max(at, h.offset + h.size);
  }
  if (at < end) out.push({ offset: at, size: end - at });
  return out;
}
