/**
 * Cubins stored as bare zstd frames in a data section (as cuBLASLt keeps
 * kernels in `.ldata`): found, named by their ELF header, pruned to holes.
 * The fixture's frames were made by the zstd command from the cubins nvcc
 * wrote (test/fixtures/fatbin/make-zstd-cubins.py); the zstd command, not
 * rocmflow, decompresses them here.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { archesOf } from '../../src/fatbin/arches-of.js';
import { bufferSource } from '../../src/fatbin/byte-source.js';
import { pruneFile } from '../../src/fatbin/prune-file.js';
import { readZstdFrame, zstdFrameHead } from '../../src/fatbin/zstd-cubin.js';
import { rocmflow } from '../helpers/cli.js';
import { cleanTemps, fixture, readelfSections, sha256, temp } from './helpers.js';

afterAll(cleanTemps);

interface Frame { offset: number; size: number; cubinSha256: string; cubinSize: number }
const expected = JSON.parse(readFileSync(fixture('expected-zstd.json'), 'utf8')) as { frames: Record<string, Frame>; text: { offset: number; size: number } };
const LIB = fixture('libtiny-cuda-zstd.so');
const unzstd = (b: Buffer) => execFileSync('zstd', ['-dc', '-q'], { input: b });
const slice = (b: Buffer, f: { offset: number; size: number }) => b.subarray(f.offset, f.offset + f.size);

describe('zstd-compressed cubins in a data section', () => {
  it('lists every cubin frame at its offset and size, named by its ELF header; the text frame is not one', async () => {
    const l = await archesOf(LIB);
    const frames = l.containers.filter((c) => c.kind === 'zstd-cubin');
    expect(frames.map((c) => ({ section: c.section, offset: c.offset, size: c.size, arch: c.entries[0]!.arch }))).toEqual(
      // the ELF header does not tell sm_90a from sm_90, nor sm_100f from sm_100: the number alone names them
      [['sm_80', 'sm_80'], ['sm_90', 'sm_90'], ['sm_90a', 'sm_90'], ['sm_100f', 'sm_100']].map(([k, arch]) => ({ section: '.ldata', offset: expected.frames[k!]!.offset, size: expected.frames[k!]!.size, arch })),
    );
    expect(frames.some((c) => c.offset === expected.text.offset)).toBe(false);
    // the fatbin's entries are counted as before, the frames beside them
    expect(l.arches).toEqual({ sm_80: 4712 + expected.frames.sm_80!.size, sm_90: 5384 + expected.frames.sm_90!.size + expected.frames.sm_90a!.size, sm_100: expected.frames.sm_100f!.size, compute_90: 368 });
    const bytes = readFileSync(LIB);
    // the frames written from a file record their content size; the one written from a pipe (sm_90) cannot
    for (const c of frames) expect(c.entries[0]!.uncompressedSize).toBe(c.offset === expected.frames.sm_90!.offset ? undefined : unzstd(slice(bytes, c)).length);
  });

  it('prunes to sm_90: the other frames become holes, the kept ones and every other byte stay', async () => {
    const dir = temp();
    const out = join(dir, 'out.so');
    const r = JSON.parse(rocmflow(dir, ['fatbin', 'prune', LIB, '--keep', 'sm_90', '--out', out, '--json']).stdout);
    expect(r.pruned.filter((p: { containerKind: string }) => p.containerKind === 'zstd-cubin').map((p: { arch: string; offset: number }) => [p.arch, p.offset])).toEqual([
      ['sm_80', expected.frames.sm_80!.offset],
      ['sm_100', expected.frames.sm_100f!.offset],
    ]);
    const a = readFileSync(LIB);
    const b = readFileSync(out);
    expect(b.length).toBe(a.length);
    for (const k of ['sm_80', 'sm_100f']) expect(slice(b, expected.frames[k]!).every((x) => x === 0)).toBe(true);
    for (const k of ['sm_90', 'sm_90a']) {
      const f = expected.frames[k]!;
      expect(slice(b, f).equals(slice(a, f))).toBe(true);
      expect(sha256(unzstd(slice(b, f)))).toBe(f.cubinSha256);
    }
    expect(slice(b, expected.text).equals(slice(a, expected.text))).toBe(true);
    // outside the fatbin section and the dropped frames, nothing changed
    const fat = readelfSections(LIB).get('.nv_fatbin')!;
    const changed = [fat, expected.frames.sm_80!, expected.frames.sm_100f!].sort((x, y) => x.offset - y.offset);
    let at = 0;
    for (const c of changed) {
      expect(b.subarray(at, c.offset).equals(a.subarray(at, c.offset))).toBe(true);
      at = c.offset + c.size;
    }
    expect(b.subarray(at).equals(a.subarray(at))).toBe(true);
    expect((await archesOf(out)).arches).toEqual({ sm_90: 5384 + expected.frames.sm_90!.size + expected.frames.sm_90a!.size });
  });

  it('a frame with a damaged block header or one running past its section is not taken for a cubin, and stays as it was', async () => {
    const a = readFileSync(LIB);
    const f80 = expected.frames.sm_80!;
    const f100 = expected.frames.sm_100f!;
    const b = Buffer.from(a);
    // where the first block header is: after the magic, the descriptor, the window byte (unless single-segment), the dictionary id and the content size
    const firstBlock = (at: number) => {
      const d = b[at + 4]!;
      const single = (d >> 5) & 1;
      return at + 5 + (single ? 0 : 1) + [0, 1, 2, 4][d & 3]! + (d >> 6 === 0 ? single : [0, 2, 4, 8][d >> 6]!);
    };
    // the sm_80 frame: its first block made reserved type 3
    b[firstBlock(f80.offset)] = b[firstBlock(f80.offset)]! | 0x06;
    // the sm_100f frame: its first block claims 128 KiB (compressed, not last), past the end of .ldata
    const big = ((128 << 10) << 3) | 4;
    b.writeUIntLE(big, firstBlock(f100.offset), 3);
    const dir = temp();
    const file = join(dir, 'in.so');
    writeFileSync(file, b);
    const l = await archesOf(file);
    expect(l.containers.filter((c) => c.kind === 'zstd-cubin').map((c) => c.offset)).toEqual([expected.frames.sm_90!.offset, expected.frames.sm_90a!.offset]);
    const r = await pruneFile(file, join(dir, 'out.so'), { keep: ['sm_90'] });
    expect(r.pruned.every((p) => p.containerKind !== 'zstd-cubin')).toBe(true);
    const out = readFileSync(join(dir, 'out.so'));
    expect(slice(out, f80).equals(slice(b, f80))).toBe(true);
    expect(slice(out, f100).equals(slice(b, f100))).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['in.so', 'out.so']);
  });

  it('readZstdFrame measures frames the zstd command writes, and refuses every cut-short one', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 300_000 }), fc.constantFrom('-1', '-3', '-19'), fc.boolean(), fc.boolean(), async (data, level, check, repetitive) => {
        const input = repetitive ? Buffer.from(data.map((x) => x & 3)) : Buffer.from(data);
        const frame = execFileSync('zstd', ['-q', '-c', level, check ? '--check' : '--no-check'], { input, maxBuffer: 1 << 24 });
        const padded = Buffer.concat([frame, Buffer.alloc(16, 0xab)]);
        const f = await readZstdFrame(bufferSource(padded, 'frame'), 0, padded.length);
        expect(f?.size).toBe(frame.length);
        expect(f?.contentSize === null || f?.contentSize === input.length).toBe(true);
        expect(await readZstdFrame(bufferSource(frame, 'frame'), 0, frame.length - 1)).toBeNull();
        // the first block, decoded alone with a small window, is the input's start
        const head = await zstdFrameHead(bufferSource(padded, 'frame'), 0, f!);
        if (input.length) expect(head && head.length > 0 && Buffer.from(head).equals(input.subarray(0, head.length))).toBe(true);
      }),
      { numRuns: 25 },
    );
  });

  it('the first block of a large frame with a window of megabytes decodes alone', async () => {
    const input = readFileSync(new URL('../../node_modules/typescript/lib/typescript.js', import.meta.url)).subarray(0, 3 << 20);
    for (const level of ['-19', '-3']) {
      // from a pipe: zstd cannot shrink the window to the input's size, so the frame asks for its level's full window
      const frame = execFileSync('zstd', ['-q', '-c', level], { input, maxBuffer: 64 << 20 });
      expect(frame[4]! & 0x20).toBe(0); // a window descriptor, not single-segment: the frame's window is its own
      const f = (await readZstdFrame(bufferSource(frame, 'frame'), 0, frame.length))!;
      expect(f.size).toBe(frame.length);
      const head = (await zstdFrameHead(bufferSource(frame, 'frame'), 0, f))!;
      expect(head.length).toBeGreaterThan(1000);
      expect(Buffer.from(head).equals(input.subarray(0, head.length))).toBe(true);
    }
  });
});
