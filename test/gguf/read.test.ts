import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RocmflowError } from '../../src/errors.js';
import { describeModel } from '../../src/gguf/describe.js';
import { ggufArrayLength, ggufValue, readGguf } from '../../src/gguf/read.js';
import { writeGguf } from '../../src/gguf/write.js';
import { vocabFile } from '../helpers/llama.js';
import { decodeByteLevel, decodeSpm, vocabCases } from './vocab-decode.js';

let tmp: string;
let spm: string;
let bpe: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'rocmflow-gguf-read-'));
  spm = await vocabFile('ggml-vocab-llama-spm.gguf');
  bpe = await vocabFile('ggml-vocab-llama-bpe.gguf');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Expect `fn` to fail with E_GGUF naming `file` and a byte offset, and return the message. */
async function ggufError(fn: () => Promise<unknown>, file: string): Promise<string> {
  const e = await fn().then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(RocmflowError);
  const err = e as RocmflowError;
  expect(err.code).toBe('E_GGUF');
  expect(err.message).toContain(file);
  expect(err.message).not.toContain('\n');
  return err.message;
}

describe('readGguf on llama.cpp vocab files', () => {
  it('reads the SentencePiece vocab: token strings decode the tokenizer test cases back to their inputs', async () => {
    const g = await readGguf(spm);
    expect(g.version).toBe(3);
    expect(g.tensors).toEqual([]);
    expect(ggufValue(g, 'tokenizer.ggml.model')).toBe('llama');
    const tokens = ggufValue(g, 'tokenizer.ggml.tokens') as string[];
    expect(tokens.length).toBe(ggufValue(g, 'llama.vocab_size'));
    expect((ggufValue(g, 'tokenizer.ggml.scores') as number[]).length).toBe(tokens.length);
    expect(tokens[ggufValue(g, 'tokenizer.ggml.bos_token_id') as number]).toBe('<s>');
    const cases = vocabCases(spm);
    expect(cases.length).toBeGreaterThan(20);
    for (const c of cases) expect(decodeSpm(tokens, c.ids), JSON.stringify(c.input)).toBe(c.input);
  });

  it('reads the byte-level BPE vocab and its merges: the test cases decode back too', async () => {
    const g = await readGguf(bpe);
    expect(ggufValue(g, 'tokenizer.ggml.model')).toBe('gpt2');
    const tokens = ggufValue(g, 'tokenizer.ggml.tokens') as string[];
    const merges = ggufValue(g, 'tokenizer.ggml.merges') as string[];
    // every merge joins two tokens into a third that exists in the vocab
    const vocab = new Set(tokens);
    for (const m of merges.slice(0, 2000)) expect(vocab.has(m.replace(' ', '')), m).toBe(true);
    const cases = vocabCases(bpe);
    for (const c of cases) expect(decodeByteLevel(tokens, c.ids), JSON.stringify(c.input)).toBe(c.input);
  });

  it('skipArrays keeps every scalar and every array length but no array values', async () => {
    const full = await readGguf(bpe);
    const fast = await readGguf(bpe, { skipArrays: true });
    expect([...fast.metadata.keys()]).toEqual([...full.metadata.keys()]);
    for (const [k, kv] of full.metadata) {
      const v = fast.metadata.get(k)!;
      expect(v.type).toBe(kv.type);
      if (typeof kv.value === 'object') {
        expect(ggufArrayLength(fast, k)).toBe(kv.value.length);
        expect(ggufValue(fast, k)).toBeUndefined();
      } else expect(v.value).toEqual(kv.value);
    }
    expect(fast.dataOffset).toBe(full.dataOffset);
  });

  it('describeModel summarises a vocab file from its metadata', async () => {
    const m = describeModel(await readGguf(spm, { skipArrays: true }));
    const g = await readGguf(spm);
    expect(m).toMatchObject({
      architecture: 'llama',
      parameters: 0,
      quantization: 'F16', // general.file_type 1
      contextLength: ggufValue(g, 'llama.context_length'),
      layers: ggufValue(g, 'llama.block_count'),
      vocabSize: (ggufValue(g, 'tokenizer.ggml.tokens') as string[]).length,
      fileSize: readFileSync(spm).length,
    });
  });
});

describe('readGguf on a large model', () => {
  it('reads only the header of a (sparse) 4 GiB file', async () => {
    const p = join(tmp, 'big.gguf');
    await writeGguf(p, {
      metadata: [['general.architecture', { type: 'string', value: 'llama' }]],
      tensors: [{ name: 'huge.weight', dims: [32], type: 'F32', data: new Float32Array(32) }],
    });
    const b = readFileSync(p);
    b.writeBigUInt64LE(1n << 30n, b.indexOf('huge.weight') + 'huge.weight'.length + 4); // dims[0]
    writeFileSync(p, b);
    const small = await readGguf(p).then(() => null, (e: Error) => e.message);
    expect(small).toMatch(/tensor "huge.weight" data \(4294967296 bytes\) ends past the end of the file/);
    const dataOffset = b.length - 128; // header padded to 32, then the 32 floats
    truncateSync(p, dataOffset + 4 * 2 ** 30);
    const t0 = performance.now();
    const g = await readGguf(p, { skipArrays: true });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(g.dataOffset).toBe(dataOffset);
    expect(describeModel(g)).toMatchObject({ parameters: 2 ** 30, quantization: 'F32', fileSize: dataOffset + 4 * 2 ** 30 });
  });
});

describe('readGguf on corrupted copies', () => {
  const corrupt = (name: string, edit: (b: Buffer) => Buffer) => {
    const p = join(tmp, name);
    writeFileSync(p, edit(Buffer.from(readFileSync(spm))));
    return p;
  };
  const tokensLengthOffset = (b: Buffer) => {
    // key string, then u32 value type, u32 item type, u64 length
    const key = b.indexOf('tokenizer.ggml.tokens');
    return key + 'tokenizer.ggml.tokens'.length + 8;
  };

  it('truncation anywhere in the header is an error naming the file and offset', async () => {
    const size = readFileSync(spm).length;
    const cuts = [0, 3, 6, 17, 30, 200, Math.floor(size / 2), size - 5];
    for (const cut of cuts) {
      const p = corrupt(`cut-${cut}.gguf`, (b) => b.subarray(0, cut));
      const msg = await ggufError(() => readGguf(p), p);
      expect(msg).toMatch(/at byte \d+/);
      if (cut >= 24) expect(msg).toMatch(/truncated|absurd/);
    }
  });

  it('a truncated array is still found with skipArrays', async () => {
    const b = readFileSync(spm);
    const p = corrupt('cut-tokens.gguf', () => b.subarray(0, tokensLengthOffset(b) + 5000));
    expect(await ggufError(() => readGguf(p, { skipArrays: true }), p)).toMatch(/tokenizer\.ggml\.tokens|truncated|absurd/);
  });

  it('version 2 has the v3 layout and reads the same', async () => {
    const v2 = corrupt('v2.gguf', (b) => (b.writeUInt32LE(2, 4), b));
    const a = await readGguf(v2);
    const b = await readGguf(spm);
    expect(a.version).toBe(2);
    expect([...a.metadata]).toEqual([...b.metadata]);
  });

  it('bad magic, version 1, a future version and big-endian files are refused', async () => {
    const magic = corrupt('magic.gguf', (b) => (b.write('GGUX', 0), b));
    expect(await ggufError(() => readGguf(magic), magic)).toMatch(/not a GGUF file.*at byte 0/);
    const v1 = corrupt('v1.gguf', (b) => (b.writeUInt32LE(1, 4), b));
    expect(await ggufError(() => readGguf(v1), v1)).toMatch(/version 1 is not supported/);
    const v9 = corrupt('v9.gguf', (b) => (b.writeUInt32LE(9, 4), b));
    expect(await ggufError(() => readGguf(v9), v9)).toMatch(/unsupported GGUF version 9/);
    const be = corrupt('be.gguf', (b) => (b.writeUInt32BE(3, 4), b));
    expect(await ggufError(() => readGguf(be), be)).toMatch(/big-endian/);
  });

  it('absurd counts and lengths are refused before allocating', async () => {
    const arr = corrupt('arr.gguf', (b) => (b.writeBigUInt64LE(1n << 40n, tokensLengthOffset(b)), b));
    expect(await ggufError(() => readGguf(arr), arr)).toMatch(/absurd array length \(of string\) 1099511627776/);
    expect(await ggufError(() => readGguf(arr, { skipArrays: true }), arr)).toMatch(/absurd array length/);
    const kv = corrupt('kv.gguf', (b) => (b.writeBigUInt64LE(0xffffffffffffn, 16), b));
    expect(await ggufError(() => readGguf(kv), kv)).toMatch(/absurd metadata count.*at byte 16/);
    const tensors = corrupt('tensors.gguf', (b) => (b.writeBigUInt64LE(1n << 62n, 8), b));
    expect(await ggufError(() => readGguf(tensors), tensors)).toMatch(/absurd tensor count/);
    const str = corrupt('str.gguf', (b) => (b.writeBigUInt64LE(1n << 50n, 24), b)); // first key's length
    expect(await ggufError(() => readGguf(str), str)).toMatch(/absurd string length.*at byte 24/);
  });

  it('an unknown value type names the key', async () => {
    const p = corrupt('type.gguf', (b) => {
      const key = b.indexOf('general.architecture');
      b.writeUInt32LE(77, key + 'general.architecture'.length);
      return b;
    });
    expect(await ggufError(() => readGguf(p), p)).toMatch(/unknown value type 77 for "general.architecture"/);
  });

  it('a missing file and a directory are clear errors', async () => {
    const missing = join(tmp, 'nope.gguf');
    expect(await ggufError(() => readGguf(missing), missing)).toMatch(/no such file/);
    await expect(readGguf(tmp)).rejects.toThrow(/not a regular file/);
  });
});

describe('readGguf on hostile numbers that the file size allows', () => {
  const header = (tensors: bigint, kvs: bigint) => {
    const b = Buffer.alloc(24);
    b.write('GGUF', 0, 'latin1');
    b.writeUInt32LE(3, 4);
    b.writeBigUInt64LE(tensors, 8);
    b.writeBigUInt64LE(kvs, 16);
    return b;
  };
  const str = (s: string) => Buffer.concat([Buffer.from(new BigUint64Array([BigInt(s.length)]).buffer), Buffer.from(s, 'latin1')]);
  const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
  const u64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b; };
  /** A sparse file: the header, then zeros up to `size`. */
  const sparse = (name: string, head: Buffer, size: number) => {
    const p = join(tmp, name);
    writeFileSync(p, head);
    truncateSync(p, size);
    return p;
  };

  it('a 100 MiB string, a 5 million-entry count and a 20 million-item array are refused with E_GGUF, allocating none of it', async () => {
    const s = sparse('long-string.gguf', Buffer.concat([header(0n, 1n), str('general.name'), u32(8), u64(100n << 20n)]), 101 << 20);
    expect(await ggufError(() => readGguf(s), s)).toContain('more than this reader takes');
    const c = sparse('many-tensors.gguf', header(5_000_000n, 0n), 5_000_000 * 40);
    expect(await ggufError(() => readGguf(c), c)).toContain('tensor count 5000000 is more than this reader takes');
    const a = sparse('long-array.gguf', Buffer.concat([header(0n, 1n), str('tokenizer.ggml.scores'), u32(9), u32(6), u64(20_000_000n)]), 20_000_000 * 4 + 4096);
    expect(await ggufError(() => readGguf(a), a)).toContain('20000000 items is more than this reader takes');
    // skipArrays reads the same array's length without holding its items
    expect(ggufArrayLength(await readGguf(a, { skipArrays: true }), 'tokenizer.ggml.scores')).toBe(20_000_000);
  });
});
