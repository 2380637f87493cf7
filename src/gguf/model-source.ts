/**
 * Where the pipeline's model comes from, decided before anything is copied
 * or downloaded (plan, then apply): a local file, one `*.gguf` found in a
 * directory, a URL with its sha256, or a generated tiny llama.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { RocmflowError, usageError } from '../errors.js';
import { nearestN } from '../util/schema.js';
import { tinyModelParams, type TinyModelParams } from './tiny-params.js';

/** What the user configured (`tasks.model`), after schema validation. */
export interface ModelSourceOptions {
  /** A file, a directory, `{ url, sha256 }` or `{ tiny: {...} }`; absent means the tiny model. */
  source?: string | { url: string; sha256: string } | { tiny: Partial<TinyModelParams> & { vocab?: string } };
  /** Which `*.gguf` to pick from a directory: its file name, with or without `.gguf`. */
  name?: string;
  /** The vocab-only GGUF the tiny model's tokenizer comes from (llama.cpp's models/ggml-vocab-llama-spm.gguf). */
  vocab?: string;
}

/** The decided source. Paths are absolute. */
export type ModelPlan =
  | { kind: 'file'; path: string; /** The directory it was discovered in, if any. */ dir?: string }
  | { kind: 'url'; url: string; sha256: string }
  | { kind: 'tiny'; vocab: string; params: TinyModelParams };

/** Decide the model source; `keyPath` (e.g. `tasks.model`) prefixes error messages. */
export async function planModel(
  opts: ModelSourceOptions,
  where: { projectRoot: string; modelsDir?: string | null; keyPath?: string },
): Promise<ModelPlan> {
  const key = where.keyPath ?? 'tasks.model';
  const src = opts.source;
  if (src === undefined) {
    // a name without a source means "that model from modelsDir"
    if (opts.name !== undefined && where.modelsDir) return pickFromDir(resolve(where.projectRoot, where.modelsDir), opts.name, `${key}.name`);
    return tinyPlan({}, opts.vocab, where.projectRoot, key);
  }
  if (typeof src === 'string') {
    const path = resolve(where.projectRoot, src);
    const st = await stat(path).catch(() => null);
    if (!st) throw usageError('E_MODEL_SOURCE', `${key}.source: ${path} does not exist`);
    if (st.isDirectory()) return pickFromDir(path, opts.name, `${key}.name`);
    if (!st.isFile()) throw usageError('E_MODEL_SOURCE', `${key}.source: ${path} is not a file or directory`);
    return { kind: 'file', path };
  }
  if ('url' in src) return { kind: 'url', url: src.url, sha256: src.sha256.toLowerCase() };
  return tinyPlan(src.tiny, src.tiny.vocab ?? opts.vocab, where.projectRoot, key);
}

function tinyPlan(tiny: Partial<TinyModelParams>, vocab: string | undefined, root: string, key: string): ModelPlan {
  if (!vocab)
    throw usageError('E_MODEL_SOURCE', `${key}.vocab: required to generate the tiny model (a vocab-only GGUF such as llama.cpp's models/ggml-vocab-llama-spm.gguf), or set ${key}.source to a model`);
  const { vocab: _omit, ...params } = tiny as Partial<TinyModelParams> & { vocab?: string };
  return { kind: 'tiny', vocab: resolve(root, vocab), params: tinyModelParams(params) };
}

/** The `*.gguf` files directly in `dir`, sorted. */
export async function discoverModels(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    throw new RocmflowError('E_MODEL_SOURCE', `cannot list models in ${dir}: ${e.code ?? e.message}`, { exitCode: 2 });
  });
  const out: string[] = [];
  for (const e of entries) {
    if (!e.name.toLowerCase().endsWith('.gguf')) continue;
    // follow symlinks: model folders are often links into a download cache
    const st = await stat(join(dir, e.name)).catch(() => null);
    if (st?.isFile()) out.push(e.name);
  }
  return out.sort();
}

async function pickFromDir(dir: string, name: string | undefined, nameKey: string): Promise<ModelPlan> {
  const found = await discoverModels(dir);
  if (found.length === 0) throw usageError('E_MODEL_SOURCE', `no *.gguf files in ${dir}`);
  if (name === undefined) {
    if (found.length === 1) return { kind: 'file', path: join(dir, found[0]!), dir };
    const list = found.length > 8 ? `${found.slice(0, 8).join(', ')}, ...` : found.join(', ');
    throw usageError('E_MODEL_SOURCE', `${found.length} models in ${dir} (${list}); set ${nameKey} to pick one`, found);
  }
  const hit = found.find((f) => f === name || f === `${name}.gguf` || basename(f, '.gguf') === name);
  if (hit) return { kind: 'file', path: join(dir, hit), dir };
  const near = nearestN(name, found.map((f) => basename(f, '.gguf')));
  throw usageError('E_MODEL_SOURCE', `${nameKey}: no model "${name}" in ${dir}${near.length ? ` (did you mean ${near.map((n) => `"${n}"`).join(', ')}?)` : ''}`, found);
}
