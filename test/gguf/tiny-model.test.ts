import { execFile, spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeModel } from '../../src/gguf/describe.js';
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

const libEnv = () => ({ ...process.env, LD_LIBRARY_PATH: bin });

/**
 * A real llama-server on 127.0.0.1 for `fn`. Generated text is read over
 * HTTP: llama-completion prints tokens through llama.cpp's asynchronous
 * logger, which can drop the tail of stdout at exit when it is a pipe.
 */
async function withServer<T>(model: string, fn: (base: string) => Promise<T>): Promise<T> {
  const port = await new Promise<number>((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => res(p));
    });
  });
  const child = spawn(join(bin, 'llama-server'), ['-m', model, '--host', '127.0.0.1', '--port', String(port), '-c', '256', '-t', '1', '-np', '1', '--no-warmup'], { env: libEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const base = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`llama-server exited with ${child.exitCode}:\n${log.slice(-2000)}`);
      const ok = await fetch(`${base}/health`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 300) throw new Error(`llama-server not healthy after 30s:\n${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return await fn(base);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

async function completion(base: string, prompt: string): Promise<string> {
  const res = await fetch(`${base}/completion`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, n_predict: 16, temperature: 0, seed: 1, cache_prompt: false }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { content: string }).content;
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
  it('llama-server loads it with our shapes and generates the same text twice', async () => {
    const { path } = await writeTinyModel({ vocab, out: join(tmp, 'run.gguf'), seed: 1 });
    const summary = describeModel(await readGguf(path, { skipArrays: true }));
    const [meta, first, second] = await withServer(path, async (base) => {
      const models = (await (await fetch(`${base}/v1/models`)).json()) as { data: Array<{ meta: Record<string, number> }> };
      return [models.data[0]!.meta, await completion(base, 'Hello'), await completion(base, 'Hello')] as const;
    });
    expect(meta).toMatchObject({ n_vocab: 32000, n_ctx_train: 512, n_embd: 64, n_params: summary.parameters });
    expect(first.trim().length).toBeGreaterThan(0);
    expect(second).toBe(first);
    // a fresh process generates the same text too
    expect(await withServer(path, (base) => completion(base, 'Hello'))).toBe(first);
  });

  it('llama-completion runs it to the end (exit 0)', async () => {
    const { path } = await writeTinyModel({ vocab, out: join(tmp, 'cli.gguf'), seed: 1 });
    // execFile rejects on a non-zero exit; stdout is not compared (see withServer)
    await expect(run(join(bin, 'llama-completion'), ['-m', path, '-p', 'Hello', '-n', '16', '--seed', '1', '--temp', '0', '-no-cnv', '-c', '128', '-t', '1', '--no-warmup'], { timeout: 60_000, env: libEnv() })).resolves.toBeDefined();
  });

  it('an F16 model with another seed loads and generates different text', async () => {
    const q8 = await writeTinyModel({ vocab, out: join(tmp, 'q8.gguf'), seed: 1 });
    const f16 = await writeTinyModel({ vocab, out: join(tmp, 'f16.gguf'), seed: 2, weightType: 'F16', layers: 1 });
    const prompt = 'The capital of France is';
    const a = await withServer(q8.path, (base) => completion(base, prompt));
    const b = await withServer(f16.path, (base) => completion(base, prompt));
    expect(b.trim().length).toBeGreaterThan(0);
    expect(b).not.toBe(a);
  });

  it("llama.cpp's own GGUF loader lists the same metadata for a vocab file as our reader", async () => {
    // a vocab-only file has no tensors, so loading fails after the metadata dump; the dump is what we compare
    const r = await run(join(bin, 'llama-completion'), ['-m', vocab, '-p', 'x', '-n', '1', '-no-cnv', '-v'], { env: libEnv() })
      .then((x) => x, (e: { stdout: string; stderr: string }) => e);
    // the dump can repeat (a fitting pass loads the header first): keep the first full listing
    const theirs: string[][] = [];
    for (const m of r.stderr.matchAll(/llama_model_loader: - kv\s+(\d+):\s+(\S+)\s+(\S+)\s+=/g)) {
      if (Number(m[1]) !== theirs.length) break;
      theirs.push([m[2]!, m[3]!]);
    }
    expect(theirs.length).toBeGreaterThan(10);
    const g = await readGguf(vocab);
    const gguf2ggml: Record<string, string> = { uint8: 'u8', int8: 'i8', uint16: 'u16', int16: 'i16', uint32: 'u32', int32: 'i32', float32: 'f32', bool: 'bool', string: 'str', uint64: 'u64', int64: 'i64', float64: 'f64' };
    const ours = [...g.metadata].map(([k, kv]) => [k, typeof kv.value === 'object' ? `arr[${gguf2ggml[kv.value.itemType]},${kv.value.length}]` : gguf2ggml[kv.type]]);
    expect(theirs).toEqual(ours);
  });
});
