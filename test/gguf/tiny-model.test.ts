import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ggufValue, readGguf } from '../../src/gguf/read.js';
import { ggmlTypeName } from '../../src/gguf/types.js';
import { writeTinyModel } from '../../src/gguf/tiny-model.js';
import { llamaCpuBuild, vocabFile } from '../helpers/llama.js';

const run = promisify(execFile);

let tmp: string;
let vocab: string;
let bin: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'rocmflow-tiny-'));
  vocab = await vocabFile('ggml-vocab-llama-spm.gguf');
  bin = join(await llamaCpuBuild(), 'bin');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Greedy completion with llama.cpp; returns stdout (the prompt and the generated text). */
async function complete(model: string, prompt: string): Promise<{ stdout: string; stderr: string }> {
  const args = ['-m', model, '-p', prompt, '-n', '16', '--seed', '1', '--temp', '0', '-no-cnv', '-c', '128', '-t', '1', '--no-warmup'];
  return run(join(bin, 'llama-completion'), args, { timeout: 60_000, maxBuffer: 16 << 20, env: { ...process.env, LD_LIBRARY_PATH: bin } });
}

describe('writeTinyModel', () => {
  it('is deterministic: same seed, same bytes; another seed, other weights', async () => {
    const a = await writeTinyModel({ vocab, out: join(tmp, 'a.gguf'), seed: 42 });
    const b = await writeTinyModel({ vocab, out: join(tmp, 'b.gguf'), seed: 42 });
    const c = await writeTinyModel({ vocab, out: join(tmp, 'c.gguf'), seed: 43 });
    expect(b.sha256).toBe(a.sha256);
    expect(readFileSync(b.path).equals(readFileSync(a.path))).toBe(true);
    expect(c.sha256).not.toBe(a.sha256);
    expect(c.bytes).toBe(a.bytes);
    expect(a.bytes).toBeLessThan(8 << 20);
  });

  it('has the llama hyperparameters, the vocab tokenizer and every tensor the llama arch needs', async () => {
    const { path } = await writeTinyModel({ vocab, out: join(tmp, 'shape.gguf'), layers: 3, embd: 96, heads: 6, ff: 160 });
    const g = await readGguf(path);
    const v = await readGguf(vocab);
    expect(ggufValue(g, 'general.architecture')).toBe('llama');
    expect(ggufValue(g, 'llama.block_count')).toBe(3);
    expect(ggufValue(g, 'llama.rope.dimension_count')).toBe(16);
    for (const [k, kv] of v.metadata) if (k.startsWith('tokenizer.')) expect(g.metadata.get(k), k).toEqual(kv);
    const shape = Object.fromEntries(g.tensors.map((t) => [t.name, `${ggmlTypeName(t.type)}[${t.dims.join(',')}]`]));
    expect(shape['token_embd.weight']).toBe('Q8_0[96,32000]');
    expect(shape['output.weight']).toBe('Q8_0[96,32000]');
    expect(shape['output_norm.weight']).toBe('F32[96]');
    for (let i = 0; i < 3; i++) {
      expect(shape[`blk.${i}.attn_norm.weight`]).toBe('F32[96]');
      for (const n of ['attn_q', 'attn_k', 'attn_v', 'attn_output']) expect(shape[`blk.${i}.${n}.weight`]).toBe('Q8_0[96,96]');
      expect(shape[`blk.${i}.ffn_norm.weight`]).toBe('F32[96]');
      expect(shape[`blk.${i}.ffn_gate.weight`]).toBe('Q8_0[96,160]');
      expect(shape[`blk.${i}.ffn_up.weight`]).toBe('Q8_0[96,160]');
      expect(shape[`blk.${i}.ffn_down.weight`]).toBe('Q8_0[160,96]');
    }
    expect(g.tensors.length).toBe(3 + 9 * 3);
  });
});

describe('the tiny model in real llama.cpp', () => {
  it('loads and generates the same text twice', async () => {
    const { path } = await writeTinyModel({ vocab, out: join(tmp, 'run.gguf'), seed: 1 });
    const first = await complete(path, 'Hello');
    const second = await complete(path, 'Hello');
    expect(first.stdout.startsWith('Hello')).toBe(true);
    const generated = first.stdout.slice('Hello'.length).trim();
    expect(generated.length).toBeGreaterThan(0);
    expect(second.stdout).toBe(first.stdout);
    // llama.cpp saw our hyperparameters and our tensors
    expect(first.stderr).toMatch(/n_layer\s*=\s*2\b/);
    expect(first.stderr).toMatch(/n_embd\s*=\s*64\b/);
    expect(first.stderr).toMatch(/n_vocab\s*=\s*32000\b/);
  });

  it('an F16 model with another seed loads and generates different text', async () => {
    const q8 = await writeTinyModel({ vocab, out: join(tmp, 'q8.gguf'), seed: 1 });
    const f16 = await writeTinyModel({ vocab, out: join(tmp, 'f16.gguf'), seed: 2, weightType: 'F16', layers: 1 });
    const a = await complete(q8.path, 'The capital of France is');
    const b = await complete(f16.path, 'The capital of France is');
    expect(b.stderr).toMatch(/n_layer\s*=\s*1\b/);
    expect(b.stdout.length).toBeGreaterThan('The capital of France is'.length);
    expect(b.stdout).not.toBe(a.stdout);
  });

  it("llama.cpp's own GGUF loader lists the same metadata for a vocab file as our reader", async () => {
    // a vocab-only file has no tensors, so loading fails after the metadata dump; the dump is what we compare
    const r = await run(join(bin, 'llama-completion'), ['-m', vocab, '-p', 'x', '-n', '1', '-no-cnv'], { env: { ...process.env, LD_LIBRARY_PATH: bin } })
      .then((x) => x, (e: { stdout: string; stderr: string }) => e);
    const theirs = [...r.stderr.matchAll(/llama_model_loader: - kv\s+\d+:\s+(\S+)\s+(\S+)\s+=/g)].map((m) => [m[1], m[2]]);
    expect(theirs.length).toBeGreaterThan(10);
    const g = await readGguf(vocab);
    const gguf2ggml: Record<string, string> = { uint8: 'u8', int8: 'i8', uint16: 'u16', int16: 'i16', uint32: 'u32', int32: 'i32', float32: 'f32', bool: 'bool', string: 'str', uint64: 'u64', int64: 'i64', float64: 'f64' };
    const ours = [...g.metadata].map(([k, kv]) => [k, typeof kv.value === 'object' ? `arr[${gguf2ggml[kv.value.itemType]},${kv.value.length}]` : gguf2ggml[kv.type]]);
    expect(theirs).toEqual(ours);
  });
});
