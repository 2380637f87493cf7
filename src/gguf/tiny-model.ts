/**
 * A small random-weight llama model for offline traces and CI: the
 * tokenizer comes from a vocab-only GGUF that llama.cpp ships (so prompts
 * tokenize like a real llama), the weights from a seeded PRNG. Same inputs
 * give a byte-identical file. With the defaults and a 32k vocab it is ~4.5 MB.
 */
import { RocmflowError } from '../errors.js';
import { Prng } from './prng.js';
import { ggufArrayLength, readGguf } from './read.js';
import { sha256File } from '../util/sha256-file.js';
import { fileTypeFor, type GgufKv } from './types.js';
import { tinyModelParams, type TinyModelOptions } from './tiny-params.js';
import { writeGguf, type GgufTensorInput } from './write.js';

export { TINY_MODEL_DEFAULTS, tinyModelParams, type TinyModelOptions, type TinyModelParams } from './tiny-params.js';

/** Write the tiny model; returns its path, sha256 and size. */
export async function writeTinyModel(opts: TinyModelOptions): Promise<{ path: string; sha256: string; bytes: number }> {
  const p = tinyModelParams(opts);
  const vocab = await readGguf(opts.vocab);
  const nVocab = ggufArrayLength(vocab, 'tokenizer.ggml.tokens');
  if (!nVocab) throw new RocmflowError('E_TINY_MODEL', `${opts.vocab}: no tokenizer.ggml.tokens, not a vocab GGUF`);
  const headDim = p.embd / p.heads;

  const u32 = (value: number): GgufKv => ({ type: 'uint32', value });
  const metadata: Array<[string, GgufKv]> = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: 'rocmflow-tiny' }],
    ['general.file_type', u32(fileTypeFor(p.weightType)!)],
    ['llama.vocab_size', u32(nVocab)],
    ['llama.context_length', u32(p.contextLength)],
    ['llama.embedding_length', u32(p.embd)],
    ['llama.block_count', u32(p.layers)],
    ['llama.feed_forward_length', u32(p.ff)],
    ['llama.rope.dimension_count', u32(headDim)],
    ['llama.rope.freq_base', { type: 'float32', value: 10000 }],
    ['llama.attention.head_count', u32(p.heads)],
    ['llama.attention.head_count_kv', u32(p.heads)],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'float32', value: 1e-5 }],
  ];
  for (const [k, kv] of vocab.metadata) if (k.startsWith('tokenizer.')) metadata.push([k, kv]);

  const rng = new Prng(p.seed);
  const ones = (n: number) => new Float32Array(n).fill(1);
  // uniform with variance 1/fan_in keeps activations in range through the blocks
  const matrix = (name: string, cols: number, rows: number): GgufTensorInput => ({
    name, dims: [cols, rows], type: p.weightType, data: rng.uniform(cols * rows, Math.sqrt(3 / cols)),
  });
  const tensors: GgufTensorInput[] = [
    matrix('token_embd.weight', p.embd, nVocab),
    { name: 'output_norm.weight', dims: [p.embd], type: 'F32', data: ones(p.embd) },
    matrix('output.weight', p.embd, nVocab),
  ];
  for (let i = 0; i < p.layers; i++) {
    const b = `blk.${i}`;
    tensors.push(
      { name: `${b}.attn_norm.weight`, dims: [p.embd], type: 'F32', data: ones(p.embd) },
      matrix(`${b}.attn_q.weight`, p.embd, p.embd),
      matrix(`${b}.attn_k.weight`, p.embd, p.embd),
      matrix(`${b}.attn_v.weight`, p.embd, p.embd),
      matrix(`${b}.attn_output.weight`, p.embd, p.embd),
      { name: `${b}.ffn_norm.weight`, dims: [p.embd], type: 'F32', data: ones(p.embd) },
      matrix(`${b}.ffn_gate.weight`, p.embd, p.ff),
      matrix(`${b}.ffn_up.weight`, p.embd, p.ff),
      matrix(`${b}.ffn_down.weight`, p.ff, p.embd),
    );
  }
  const { bytes } = await writeGguf(opts.out, { metadata, tensors });
  return { path: opts.out, sha256: await sha256File(opts.out), bytes };
}
