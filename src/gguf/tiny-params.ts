/**
 * The tiny model's options and their checks, apart from the writer: what a
 * fresh check of the model task needs (gguf/model-source.ts), without
 * loading the GGUF writer.
 */
import { RocmflowError } from '../errors.js';

/** Options of `writeTinyModel`; every size has a small default. */
export interface TinyModelOptions {
  /** A vocab-only GGUF with tokenizer.* metadata, e.g. llama.cpp's models/ggml-vocab-llama-spm.gguf. */
  vocab: string;
  /** Where to write the model. */
  out: string;
  /** PRNG seed. @default 1 */
  seed?: number;
  /** Transformer blocks. @default 2 */
  layers?: number;
  /** Embedding length (a multiple of 32). @default 64 */
  embd?: number;
  /** Attention heads (embd / heads must be even). @default 4 */
  heads?: number;
  /** Feed-forward length (a multiple of 32). @default 128 */
  ff?: number;
  /** Training context length written to llama.context_length. @default 512 */
  contextLength?: number;
  /** Type of the 2-D weights. @default 'Q8_0' */
  weightType?: 'F32' | 'F16' | 'Q8_0';
}

/** The tiny model's sizes with defaults filled in. */
export type TinyModelParams = Required<Omit<TinyModelOptions, 'vocab' | 'out'>>;

export const TINY_MODEL_DEFAULTS: TinyModelParams = {
  seed: 1, layers: 2, embd: 64, heads: 4, ff: 128, contextLength: 512, weightType: 'Q8_0',
};

/** Fill defaults and check the sizes make a loadable model. */
export function tinyModelParams(opts: Partial<TinyModelParams>): TinyModelParams {
  const p = { ...TINY_MODEL_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as TinyModelParams;
  const bad = (key: string, why: string) => new RocmflowError('E_TINY_MODEL', `tiny model option ${key}: ${why}`, { exitCode: 2 });
  for (const k of ['layers', 'embd', 'heads', 'ff', 'contextLength'] as const)
    if (!Number.isInteger(p[k]) || p[k] < 1 || p[k] > 1 << 20) throw bad(k, `expected a positive integer, got ${p[k]}`);
  if (!Number.isInteger(p.seed) || p.seed < 0 || p.seed > 0xffffffff) throw bad('seed', `expected an integer from 0 to 2^32-1, got ${p.seed}`);
  if (p.embd % 32 !== 0) throw bad('embd', `must be a multiple of 32, got ${p.embd}`);
  if (p.ff % 32 !== 0) throw bad('ff', `must be a multiple of 32, got ${p.ff}`);
  if (p.embd % p.heads !== 0 || (p.embd / p.heads) % 2 !== 0) throw bad('heads', `embd ${p.embd} / heads ${p.heads} must be an even integer`);
  if (!['F32', 'F16', 'Q8_0'].includes(p.weightType)) throw bad('weightType', `expected F32, F16 or Q8_0, got ${p.weightType}`);
  return p;
}
