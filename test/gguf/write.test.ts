import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RocmflowError } from '../../src/errors.js';
import { f16ToF32, f32ToF16 } from '../../src/gguf/encode.js';
import { readGguf } from '../../src/gguf/read.js';
import type { GgufKv } from '../../src/gguf/types.js';
import { writeGguf } from '../../src/gguf/write.js';
import { vocabFile } from '../helpers/llama.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'rocmflow-gguf-write-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const every: Array<[string, GgufKv]> = [
  ['u8', { type: 'uint8', value: 255 }],
  ['i8', { type: 'int8', value: -128 }],
  ['u16', { type: 'uint16', value: 65535 }],
  ['i16', { type: 'int16', value: -32768 }],
  ['u32', { type: 'uint32', value: 4294967295 }],
  ['i32', { type: 'int32', value: -2147483648 }],
  ['f32', { type: 'float32', value: 0.5 }],
  ['f64', { type: 'float64', value: Math.PI }],
  ['yes', { type: 'bool', value: true }],
  ['no', { type: 'bool', value: false }],
  ['text', { type: 'string', value: 'héllo ▁ 世界 \u0000 end' }],
  ['empty', { type: 'string', value: '' }],
  ['u64.small', { type: 'uint64', value: 123456789012 }],
  ['u64.big', { type: 'uint64', value: 0xffffffffffffffffn }],
  ['i64.neg', { type: 'int64', value: -(1n << 63n) }],
  ['arr.i32', { type: 'array', value: { itemType: 'int32', length: 3, values: [1, -2, 3] } }],
  ['arr.str', { type: 'array', value: { itemType: 'string', length: 2, values: ['a', 'bc'] } }],
  ['arr.empty', { type: 'array', value: { itemType: 'float32', length: 0, values: [] } }],
  ['arr.nested', {
    type: 'array',
    value: {
      itemType: 'array', length: 2, values: [
        { itemType: 'uint8', length: 2, values: [1, 2] },
        { itemType: 'array', length: 1, values: [{ itemType: 'string', length: 1, values: ['deep'] }] },
      ],
    },
  }],
];

describe('writeGguf', () => {
  it('round-trips every metadata type, nested arrays and 64-bit extremes', async () => {
    const p = join(tmp, 'kv.gguf');
    await writeGguf(p, { metadata: every });
    const g = await readGguf(p);
    expect(g.version).toBe(3);
    expect([...g.metadata.entries()]).toEqual(every);
  });

  it('writes F32, F16 and Q8_0 tensors at aligned offsets with their exact bytes', async () => {
    const p = join(tmp, 'tensors.gguf');
    const a = Float32Array.from({ length: 6 }, (_, i) => i * 1.25 - 3);
    const b = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * 10);
    const c = Float32Array.from({ length: 7 }, (_, i) => 1 / (i + 1));
    const raw = Uint8Array.from({ length: 10 }, (_, i) => i);
    const metadata: Array<[string, GgufKv]> = [['general.alignment', { type: 'uint32', value: 64 }]];
    await writeGguf(p, {
      metadata,
      tensors: [
        { name: 'a', dims: [3, 2], type: 'F32', data: a },
        { name: 'b', dims: [32, 2], type: 'Q8_0', data: b },
        { name: 'c', dims: [7], type: 'F16', data: c },
        { name: 'raw', dims: [10], type: 'I8', data: raw },
      ],
    });
    const g = await readGguf(p);
    const file = readFileSync(p);
    expect(g.alignment).toBe(64);
    expect(g.dataOffset % 64).toBe(0);
    expect(g.tensors.map((t) => [t.name, t.dims, t.bytes])).toEqual([['a', [3, 2], 24], ['b', [32, 2], 68], ['c', [7], 14], ['raw', [10], 10]]);
    for (const t of g.tensors) expect(t.offset % 64).toBe(0);
    const data = (name: string) => {
      const t = g.tensors.find((x) => x.name === name)!;
      return file.subarray(g.dataOffset + t.offset, g.dataOffset + t.offset + t.bytes);
    };
    const fa = data('a');
    expect(Array.from({ length: 6 }, (_, i) => fa.readFloatLE(i * 4))).toEqual(Array.from(a));
    const fc = data('c');
    Array.from(c).forEach((v, i) => expect(f16ToF32(fc.readUInt16LE(i * 2))).toBeCloseTo(v, 3));
    // Q8_0: per 32 values an f16 scale then int8s; dequantised values are within half a step
    const fb = data('b');
    for (let blk = 0; blk < 2; blk++) {
      const d = f16ToF32(fb.readUInt16LE(blk * 34));
      for (let i = 0; i < 32; i++) expect(Math.abs(fb.readInt8(blk * 34 + 2 + i) * d - b[blk * 32 + i]!)).toBeLessThanOrEqual(d * 0.51);
    }
    expect([...data('raw')]).toEqual([...raw]);
    // every tensor (the last too) is padded to the alignment
    expect(file.length).toBe(g.dataOffset + 4 * 64 + 64);
  });

  it('rewrites a real vocab file byte for byte', async () => {
    const src = await vocabFile('ggml-vocab-llama-bpe.gguf');
    const g = await readGguf(src);
    const p = join(tmp, 'vocab-copy.gguf');
    await writeGguf(p, { metadata: g.metadata });
    expect(readFileSync(p).equals(readFileSync(src))).toBe(true);
  });

  it('refuses values that do not fit their type, naming the key, and leaves no file', async () => {
    const p = join(tmp, 'bad.gguf');
    const bad = (kv: GgufKv) => writeGguf(p, { metadata: [['k.bad', kv]] });
    await expect(bad({ type: 'uint8', value: 256 })).rejects.toThrow(/metadata "k\.bad": expected uint8, got 256/);
    await expect(bad({ type: 'int32', value: 1.5 })).rejects.toThrow(RocmflowError);
    await expect(bad({ type: 'array', value: { itemType: 'string', length: 3 } })).rejects.toThrow(/skipArrays/);
    await expect(writeGguf(p, { metadata: [], tensors: [{ name: 't', dims: [4], type: 'F32', data: new Float32Array(3) }] })).rejects.toThrow(/tensor "t": data does not match/);
    await expect(writeGguf(p, { metadata: [], tensors: [{ name: 'q', dims: [16], type: 'Q8_0', data: new Float32Array(16) }] })).rejects.toThrow(/block size 32/);
    expect(readdirSync(tmp).filter((f) => f.startsWith('bad.gguf'))).toEqual([]);
  });

  it('tensor data cut off at the end of the file is reported with the tensor name', async () => {
    const p = join(tmp, 'short.gguf');
    await writeGguf(p, { metadata: [], tensors: [{ name: 'w', dims: [32, 4], type: 'F32', data: new Float32Array(128) }] });
    const { truncate } = await import('node:fs/promises');
    await truncate(p, readFileSync(p).length - 100);
    await expect(readGguf(p)).rejects.toThrow(/tensor "w" data \(512 bytes\) ends past the end of the file .* at byte \d+/);
  });
});

describe('f16 conversion', () => {
  it('rounds to nearest even and keeps specials', () => {
    for (const [x, bits] of [[0, 0], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65520, 0x7c00], [Infinity, 0x7c00],
      [2 ** -24, 0x0001], [2 ** -25, 0], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [0.1, 0x2e66]] as const)
      expect(f32ToF16(x), String(x)).toBe(bits);
    expect(Number.isNaN(f16ToF32(f32ToF16(NaN)))).toBe(true);
    for (let h = 0; h < 0x7c00; h += 37) expect(f32ToF16(f16ToF32(h))).toBe(h);
  });
});
