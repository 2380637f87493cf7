/**
 * Hostile input: random and mutated bytes through every parser. Each one
 * either succeeds with every range inside the input, or throws one
 * E_FATBIN_MALFORMED naming the input and an offset; nothing else, and it
 * always ends. Run counts keep this file to seconds.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { readFatbins } from '../../src/fatbin/arches-of.js';
import { bufferSource } from '../../src/fatbin/byte-source.js';
import { BUNDLE_MAGIC, readClangBundle } from '../../src/fatbin/clang-bundle.js';
import { readCcobHeader } from '../../src/fatbin/ccob.js';
import { readElfSections } from '../../src/fatbin/elf-sections.js';
import { readNvFatbin } from '../../src/fatbin/nv-fatbin.js';
import { pruneFile } from '../../src/fatbin/prune-file.js';
import { isRocmflowError } from '../../src/errors.js';
import { cleanTemps, fixture, readelfSections, temp } from './helpers.js';

afterAll(cleanTemps);

const NAME = 'input.so';

/** Run `fn`; a throw must be E_FATBIN_MALFORMED naming the input and an offset inside it (or at its end). */
async function refusedCleanly<T>(fn: () => Promise<T>, size: number): Promise<T | null> {
  try {
    return await fn();
  } catch (e) {
    if (!isRocmflowError(e)) throw e;
    expect(e.code).toBe('E_FATBIN_MALFORMED');
    const m = /^input\.so: offset 0x([0-9a-f]+): ./.exec(e.message);
    expect(m, e.message).not.toBeNull();
    expect(parseInt(m![1]!, 16)).toBeLessThanOrEqual(size);
    return null;
  }
}

/** A fixture with `edits` applied (each writes one random byte at a position inside `span`). */
const mutations = (span: { from: number; to: number }) =>
  fc.array(fc.tuple(fc.integer({ min: span.from, max: span.to - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 });

function u64le(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

function mutate(base: Buffer, edits: Array<[number, number]>, cut?: number): Buffer {
  const b = Buffer.from(base);
  for (const [at, v] of edits) b[at] = v;
  return cut === undefined ? b : b.subarray(0, cut);
}

describe('parsers on random bytes', () => {
  it('readClangBundle: a random entry table after the magic', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 400 }), fc.bigInt({ min: 0n, max: 20n }), async (tail, count) => {
        const n = Buffer.alloc(8);
        n.writeBigUInt64LE(count);
        const buf = Buffer.concat([BUNDLE_MAGIC, n, Buffer.from(tail)]);
        const b = await refusedCleanly(() => readClangBundle(bufferSource(buf, NAME), 0, buf.length), buf.length);
        if (b) for (const e of b.entries) expect(e.offset + e.size).toBeLessThanOrEqual(buf.length);
      }),
      { numRuns: 500 },
    );
  });

  it('readClangBundle: well-formed tables with random offsets and sizes', async () => {
    const u64 = fc.oneof(fc.bigInt({ min: 0n, max: 5000n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
    const entry = fc.record({ offset: u64, size: u64, id: fc.string({ minLength: 1, maxLength: 40 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { maxLength: 6 }), fc.integer({ min: 0, max: 6000 }), async (entries, pad) => {
        const parts = [BUNDLE_MAGIC, u64le(BigInt(entries.length))];
        for (const e of entries) {
          const id = Buffer.from(e.id, 'latin1');
          parts.push(u64le(e.offset), u64le(e.size), u64le(BigInt(id.length)), id);
        }
        const buf = Buffer.concat([...parts, Buffer.alloc(pad)]);
        const b = await refusedCleanly(() => readClangBundle(bufferSource(buf, NAME), 0, buf.length), buf.length);
        if (b) {
          for (const e of b.entries) expect(e.offset + e.size).toBeLessThanOrEqual(buf.length);
          expect(b.length).toBeLessThanOrEqual(buf.length);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('readCcobHeader and readNvFatbin: random headers', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 200 }), async (tail) => {
        const ccob = Buffer.concat([Buffer.from('CCOB'), Buffer.from(tail)]);
        const h = await refusedCleanly(() => readCcobHeader(bufferSource(ccob, NAME), 0, ccob.length), ccob.length);
        if (h?.totalSize != null) expect(h.totalSize).toBeLessThanOrEqual(ccob.length);
        const nv = Buffer.concat([Buffer.from([0x50, 0xed, 0x55, 0xba]), Buffer.from(tail)]);
        const f = await refusedCleanly(() => readNvFatbin(bufferSource(nv, NAME), 0, nv.length, '.nv_fatbin'), nv.length);
        if (f) for (const e of f.entries) expect(e.offset + e.size).toBeLessThanOrEqual(nv.length);
      }),
      { numRuns: 500 },
    );
  });

  it('readElfSections: random bytes after an ELF ident', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.constantFrom(1, 2), async (tail, cls) => {
        const buf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, cls, 1, 1, 0]), Buffer.from(tail)]);
        const s = await refusedCleanly(() => readElfSections(bufferSource(buf, NAME)), buf.length);
        if (s) for (const x of s) expect(x.offset + x.size).toBeLessThanOrEqual(buf.length);
      }),
      { numRuns: 500 },
    );
  });
});

describe('whole files with mutated headers', () => {
  /** Mutations aimed at the ELF section table and at the device-code section's headers, plus truncation anywhere. */
  function spansOf(file: string, section: string) {
    const buf = readFileSync(file);
    const sec = readelfSections(file).get(section)!;
    const shoff = Number(buf.readBigUInt64LE(40));
    return { buf, sec: { from: sec.offset, to: Math.min(sec.offset + 1024, sec.offset + sec.size) }, table: { from: shoff, to: buf.length } };
  }

  it.each([
    ['libtiny-hip.so', '.hip_fatbin', 300],
    ['libtiny-cuda.so', '.nv_fatbin', 300],
    ['libtiny-cuda-variants.so', '.nv_fatbin', 200],
    ['libtiny-hip-ccob3.so', '.hip_fatbin', 40],
  ] as const)('%s: every mutation parses in bounds or is refused at an offset', async (name, section, runs) => {
    const { buf, sec, table } = spansOf(fixture(name), section);
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutations(sec), mutations(table)), fc.option(fc.integer({ min: 0, max: buf.length }), { nil: undefined }), async (edits, cut) => {
        const b = mutate(buf, edits, cut);
        const r = await refusedCleanly(() => readFatbins(bufferSource(b, NAME)), b.length);
        if (!r) return;
        for (const c of r.containers) {
          expect(c.offset + c.size).toBeLessThanOrEqual(b.length);
          for (const e of c.entries) {
            const limit = c.kind === 'compressed-bundle' ? c.compressed!.uncompressedSize : b.length;
            expect(e.offset + e.size).toBeLessThanOrEqual(limit);
          }
        }
      }),
      { numRuns: runs },
    );
  });

  it('prune of a mutated plain bundle: refused with nothing written, or an output that lists only the kept arch', async () => {
    const { buf, sec } = spansOf(fixture('libtiny-hip.so'), '.hip_fatbin');
    const dir = temp();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(mutations(sec), async (edits) => {
        const src = join(dir, `in${n}.so`);
        const out = join(dir, `out${n++}.so`);
        writeFileSync(src, mutate(buf, edits));
        try {
          await pruneFile(src, out, { keep: ['gfx1100'] });
        } catch (e) {
          if (!isRocmflowError(e) || e.code !== 'E_FATBIN_MALFORMED') throw e;
          expect(readdirSync(dir).filter((f) => f.startsWith('out') || f.startsWith('.out'))).toEqual([]);
          return;
        }
        const after = await readFatbins(bufferSource(readFileSync(out), NAME));
        for (const c of after.containers) for (const e of c.entries) expect(e.kind === 'host' || e.arch.split(':')[0] === 'gfx1100').toBe(true);
        expect(readFileSync(out).length).toBe(buf.length);
        rmSync(out);
      }),
      { numRuns: 60 },
    );
  });
});
