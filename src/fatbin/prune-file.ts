/**
 * Prune a file's device code to the kept arches. The whole file is parsed
 * and the plan made before anything is written; the output is created at
 * its full size (ftruncate), only kept bytes that are not zero are written,
 * so every dropped range is a hole, and it replaces `dest` by rename only
 * once complete. The source is never written (pruning in place writes a new
 * file over the old name, so hard links to the old one keep their bytes).
 */
import { createHash, randomBytes } from 'node:crypto';
import { lstat, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { RocmflowError } from '../errors.js';
import { readFatbins, sortArches } from './arches-of.js';
import { malformed, withFileSource, type ByteSource } from './byte-source.js';
import { decoder, encodeCcobHeader, encoder, readRange, transcode } from './ccob.js';
import { encodeBundleHeader } from './clang-bundle.js';
import { planPrune, type ByteRange, type PrunePlan, type PrunedEntry } from './prune-plan.js';
import type { FatbinContainer, FatbinEntry, FatbinFormat } from './types.js';

export interface PruneOptions {
  /**
   * Arches to keep: AMD processors (`gfx1100` keeps every feature variant,
   * e.g. `gfx1100:xnack-`) or generic ISAs (`gfx11-generic`); CUDA `sm_90`,
   * `sm_90a`, `compute_90`. `keepFor()` picks them for a target.
   */
  keep: readonly string[];
  signal?: AbortSignal;
  /** The file's containers, when the caller has just read them (archesOf): not parsed a second time. */
  listing?: { format: FatbinFormat | null; containers: FatbinContainer[] };
}

/** What a prune did: sizes, and what was removed from where. */
export interface PruneResult {
  file: string;
  dest: string;
  format: FatbinFormat;
  keep: string[];
  /** Bytes of code per arch in the output / removed (see FatbinListing.arches). */
  kept: Record<string, number>;
  dropped: Record<string, number>;
  /** Every removed entry: container (section, offset), arch, id, offset, size. */
  pruned: PrunedEntry[];
  /** Containers left as they were, and why. */
  leftWhole: Array<{ section: string; offset: number; reason: string }>;
  /** Containers with device code of which none was kept. */
  emptied: number;
  containers: number;
  sizes: {
    /** st_size of the source and of the output (the same: offsets do not move). */
    apparent: number;
    /** st_blocks × 512 of the source. */
    sourceAllocated: number;
    /** st_blocks × 512 of the output: what it takes on disk. */
    allocated: number;
  };
}

const BLOCK = 4096;
const CHUNK = 1 << 20;
const ZERO = Buffer.alloc(BLOCK);

/** Prune `file` to `opts.keep`, writing `dest` (which may be `file` itself). */
export async function pruneFile(file: string, dest: string, opts: PruneOptions): Promise<PruneResult> {
  if (opts.keep.length === 0) throw new RocmflowError('E_USAGE', 'fatbin prune: nothing to keep (give at least one arch)', { exitCode: 2 });
  // renaming over a link would replace the link, not prune what it points to
  const existing = await lstat(dest).catch(() => null);
  if (existing?.isSymbolicLink()) throw new RocmflowError('E_FATBIN_DEST', `${dest} is a symbolic link: prune the file it points to`);
  return withFileSource(file, async (src) => {
    const { format, containers } = opts.listing ?? (await readFatbins(src, opts.signal));
    if (!format) throw new RocmflowError('E_FATBIN_NONE', `${file}: no device code (.hip_fatbin or .nv_fatbin) to prune`);
    const plan = planPrune(format, containers, opts.keep);
    const srcStat = await stat(file);
    const tmp = join(dirname(dest), `.${basename(dest)}.rocmflow-${process.pid}-${randomBytes(4).toString('hex')}`);
    const out = await open(tmp, 'wx', srcStat.mode & 0o7777);
    try {
      await out.truncate(src.size);
      await copyKept(src, out, plan.drop, opts.signal);
      const leftWhole = await applyOps(src, out, plan, opts.signal);
      plan.leftWhole.push(...leftWhole);
      await out.sync();
      await out.close();
      await rename(tmp, dest);
    } catch (e) {
      await out.close().catch(() => {});
      await rm(tmp, { force: true });
      throw e;
    }
    const d = await stat(dest);
    return {
      file,
      dest,
      format,
      keep: plan.keep,
      kept: sortArches(plan.kept),
      dropped: sortArches(plan.dropped),
      pruned: plan.pruned,
      leftWhole: plan.leftWhole,
      emptied: plan.emptied,
      containers: containers.length,
      sizes: { apparent: d.size, sourceAllocated: srcStat.blocks * 512, allocated: d.blocks * 512 },
    };
  });
}

/**
 * Write `buf` at `pos` of a file that reads as zeros there, skipping the
 * pieces (split at 4 KiB file-offset boundaries) that are all zero, so they
 * stay holes. Runs of non-zero pieces go out as one write.
 */
async function writeSparse(out: FileHandle, buf: Buffer, pos: number): Promise<void> {
  let run = -1;
  let i = 0;
  while (i < buf.length) {
    const end = Math.min(buf.length, (Math.floor((pos + i) / BLOCK) + 1) * BLOCK - pos);
    const zero = buf.subarray(i, end).equals(ZERO.subarray(0, end - i));
    if (zero && run >= 0) {
      await writeAll(out, buf.subarray(run, i), pos + run);
      run = -1;
    } else if (!zero && run < 0) run = i;
    i = end;
  }
  if (run >= 0) await writeAll(out, buf.subarray(run), pos + run);
}

async function writeAll(out: FileHandle, buf: Buffer, pos: number): Promise<void> {
  let done = 0;
  while (done < buf.length) done += (await out.write(buf, done, buf.length - done, pos + done)).bytesWritten;
}

/** Copy every byte of `src` outside `drop` (sorted, merged) to the same offsets. */
async function copyKept(src: ByteSource, out: FileHandle, drop: readonly ByteRange[], signal?: AbortSignal): Promise<void> {
  let at = 0;
  const copy = async (from: number, to: number) => {
    for (let p = from; p < to; p += CHUNK) {
      signal?.throwIfAborted();
      await writeSparse(out, await src.read(p, Math.min(CHUNK, to - p)), p);
    }
  };
  for (const d of drop) {
    await copy(at, d.offset);
    at = Math.max(at, d.offset + d.size);
  }
  await copy(at, src.size);
}

/** Run the plan's writes, moves and rebuilds; returns the compressed bundles that had to stay whole. */
async function applyOps(src: ByteSource, out: FileHandle, plan: PrunePlan, signal?: AbortSignal): Promise<PrunePlan['leftWhole']> {
  const leftWhole: PrunePlan['leftWhole'] = [];
  for (const op of plan.ops) {
    signal?.throwIfAborted();
    if (op.kind === 'write') await writeAll(out, op.bytes, op.offset);
    else if (op.kind === 'move') {
      for (let p = 0; p < op.size; p += CHUNK) await writeAll(out, await src.read(op.from + p, Math.min(CHUNK, op.size - p)), op.to + p);
    } else if (!(await rebuildCompressed(src, out, op.container, op.keep, signal))) {
      // the rebuilt bundle would not fit where the old one was: restore the old one, byte for byte
      for (let p = 0; p < op.container.size; p += CHUNK)
        await writeAll(out, await src.read(op.container.offset + p, Math.min(CHUNK, op.container.size - p)), op.container.offset + p);
      leftWhole.push({ section: op.container.section, offset: op.container.offset, reason: 'recompressed bundle larger than the original: left whole' });
    }
  }
  return leftWhole;
}

/** The alignment a code object had in its bundle (its offset's lowest set bit, at most 4 KiB). */
function alignmentOf(offset: number): number {
  let a = 1;
  while (a < BLOCK && offset % (a * 2) === 0) a *= 2;
  return a;
}

/**
 * Rebuild a compressed bundle with only `keep`: decompress it as a stream,
 * lay the kept code objects out after a new header (each at its old
 * alignment), compress again with the same method and version, and write it
 * at the old start. False when it does not fit in the old bundle's bytes.
 */
async function rebuildCompressed(src: ByteSource, out: FileHandle, c: FatbinContainer, keep: FatbinEntry[], signal?: AbortSignal): Promise<boolean> {
  const h = c.compressed!;
  const bad = (why: string) => malformed(src.name, c.offset, `compressed bundle: ${why}`);
  const moves = [...keep].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < moves.length; i++)
    if (moves[i]!.size > 0 && moves[i - 1]!.offset + moves[i - 1]!.size > moves[i]!.offset) throw bad(`entries ${moves[i - 1]!.id} and ${moves[i]!.id} overlap`);
  const headerLen = encodeBundleHeader(moves.map((e) => ({ id: e.id, offset: 0, size: 0 }))).length;
  let cursor = headerLen;
  const layout = moves.map((e) => {
    if (e.size === 0) return { e, to: cursor };
    const a = alignmentOf(e.offset);
    cursor = Math.ceil(cursor / a) * a;
    const to = cursor;
    cursor += e.size;
    return { e, to };
  });
  const header = encodeBundleHeader(layout.map(({ e, to }) => ({ id: e.id, offset: to, size: e.size })));
  const total = cursor;
  const digest = createHash('md5');
  const decompressed = transcode(decoder(h.method, signal), readRange(src, c.offset + h.headerSize, c.size - h.headerSize), bad);
  async function* rebuilt(): AsyncGenerator<Buffer> {
    for await (const b of select(decompressed, header, layout, h.uncompressedSize, bad)) {
      digest.update(b);
      yield b;
    }
  }
  const room = c.size - h.headerSize;
  let written = 0;
  for await (const b of transcode(encoder(h.method, signal), rebuilt(), bad)) {
    if (written + b.length > room) return false;
    await writeAll(out, b, c.offset + h.headerSize + written);
    written += b.length;
  }
  const version = h.version === 2 ? 2 : 3;
  await writeAll(out, encodeCcobHeader({ version, method: h.method, totalSize: h.headerSize + written, uncompressedSize: total, md5: digest.digest() }), c.offset);
  return true;
}

/** The new uncompressed bundle: `header`, then each kept code object's bytes (taken from the decompressed stream) at its new offset. */
async function* select(input: AsyncIterable<Buffer>, header: Buffer, layout: Array<{ e: FatbinEntry; to: number }>, expected: number, bad: (why: string) => Error): AsyncGenerator<Buffer> {
  yield header;
  let out = header.length;
  let inPos = 0;
  let i = 0;
  let done = 0; // bytes of layout[i] emitted
  const skipEmpty = () => {
    while (i < layout.length && layout[i]!.e.size === 0) i++;
  };
  skipEmpty();
  for await (const chunk of input) {
    const cStart = inPos;
    inPos += chunk.length;
    if (inPos > expected) throw bad(`decompresses to more than the ${expected} bytes its header says`);
    while (i < layout.length) {
      const { e, to } = layout[i]!;
      const need = e.offset + done;
      if (need >= inPos) break;
      if (need < cStart) throw new Error('internal: compressed-bundle entries out of order');
      if (out < to) {
        yield Buffer.alloc(to - out);
        out = to;
      }
      const piece = chunk.subarray(need - cStart, Math.min(chunk.length, e.offset + e.size - cStart));
      yield piece;
      out += piece.length;
      done += piece.length;
      if (done === e.size) {
        i++;
        done = 0;
        skipEmpty();
      }
    }
  }
  if (inPos !== expected) throw bad(`decompresses to ${inPos} bytes, its header says ${expected}`);
  if (i < layout.length) throw bad(`entry ${layout[i]!.e.id} lies beyond the decompressed bundle`);
}
