/**
 * The `model` task: the GGUF model the traced workload runs. Outputs
 * `model.gguf` (the user's file placed by reflink, hardlink or copy, never
 * modified; a verified download; or a generated tiny llama) and
 * `model.json` (where it came from, sha256, size, summary).
 */
import { constants } from 'node:fs';
import { copyFile, link, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { defineTask, s, type Progress, type TaskInputs } from '../src/plugin/core.js';
import { describeModel, humanBytes, humanCount, type ModelSummary } from '../src/gguf/describe.js';
import { planModel, type ModelPlan, type ModelSourceOptions } from '../src/gguf/model-source.js';
import { llamaVocab } from '../src/llama/vocab.js';
import { isExactNpmSpec } from '../src/llama/source.js';

const custom = (describe: string, test: (v: string) => boolean, expected: string): s.Schema<string> => ({
  describe,
  parse(v, p) {
    const str = s.string().parse(v, p);
    if (!test(str)) throw new s.SchemaError(p, expected);
    return str;
  },
});

const positive = () => s.optional(s.number({ integer: true, min: 1 }));

const urlSource = s.object({
  url: custom('an http(s) URL', (u) => /^https?:\/\/[^/]/i.test(u), 'expected an http:// or https:// URL'),
  sha256: custom('a sha256', (h) => /^[0-9a-f]{64}$/i.test(h), 'expected a sha256 (64 hex digits)'),
});

const tinySource = s.object({
  tiny: s.object({
    vocab: s.optional(s.string()),
    seed: s.optional(s.number({ integer: true, min: 0, max: 0xffffffff })),
    layers: positive(),
    embd: positive(),
    heads: positive(),
    ff: positive(),
    contextLength: positive(),
    weightType: s.optional(s.literal('F32', 'F16', 'Q8_0')),
  }),
});

type Source = NonNullable<ModelSourceOptions['source']>;

// Dispatch on the object's key rather than trying each form, so a bad URL
// is reported as a bad URL and not as "tiny: required".
const source: s.Schema<Source> = {
  describe: 'a path, { url, sha256 } or { tiny: { ... } }',
  parse(v, p) {
    if (typeof v === 'string') return v;
    if (s.isPlainObject(v) && 'url' in v) return urlSource.parse(v, p);
    if (s.isPlainObject(v) && 'tiny' in v) return tinySource.parse(v, p);
    throw new s.SchemaError(p, 'expected a path to a .gguf file or a folder, { url, sha256 }, or { tiny: { ... } }');
  },
};

/** The default vocab: read from the llama.cpp bundle of the package build-llama's default source is. */
export const DEFAULT_VOCAB = { npm: 'node-llama-cpp@3.22.1' } as const;

const rawModelOptions = s.object({
  source: s.optional(source),
  name: s.optional(s.string()),
  vocab: s.optional(
    s.union<string | { npm: string }>('a path to a vocab-only GGUF, or { npm: "node-llama-cpp@<version>" }', s.string(), s.object({ npm: s.string() })),
  ),
});

/** `tasks.model` options, defaults filled: with no source, a tiny model whose tokenizer comes from `DEFAULT_VOCAB`. */
export const modelOptions: s.Schema<ModelOptions> = {
  describe: 'an object',
  parse(v, p) {
    const o = rawModelOptions.parse(v, p);
    return { ...o, vocab: o.vocab ?? { ...DEFAULT_VOCAB } };
  },
};

/**
 * `tasks.model` options: ModelSourceOptions, except that `vocab` may also be
 * `{ npm: 'node-llama-cpp@3.22.1' }`: the vocab file read out of the llama.cpp
 * git bundle that package ships (fetched once into the cache, when the task
 * needs it, not when the config loads).
 */
export type ModelOptions = Omit<ModelSourceOptions, 'vocab'> & { vocab?: string | { npm: string } };

async function sourceOptions(ctx: { options: ModelOptions; config: { cacheDir: string } }): Promise<ModelSourceOptions> {
  const { vocab, ...rest } = ctx.options;
  if (vocab === undefined || typeof vocab === 'string') return { ...rest, vocab };
  return { ...rest, vocab: await llamaVocab({ npm: vocab.npm, cacheDir: ctx.config.cacheDir }) };
}

/** What `model.json` holds. */
export interface ModelRecord {
  source:
    | { kind: 'file'; path: string; dir?: string }
    | { kind: 'url'; url: string }
    | { kind: 'tiny'; vocab: string; vocabSha256: string; params: Record<string, unknown> };
  /** How model.gguf was made from the source file. */
  placed: 'reflink' | 'hardlink' | 'copy' | 'generated';
  sha256: string;
  size: number;
  summary: ModelSummary;
}

/** The fingerprint inputs for a plan. */
export function modelInputs(plan: ModelPlan): TaskInputs {
  switch (plan.kind) {
    case 'file':
      return { files: [plan.path], params: { kind: 'file', path: plan.path } };
    case 'url':
      return { params: { kind: 'url', url: plan.url, sha256: plan.sha256 } };
    case 'tiny':
      return { files: [plan.vocab], params: { kind: 'tiny', ...plan.params } };
  }
}

/**
 * Put `src` at `dest` without ever writing to `src`: a reflink where the
 * filesystem can, else a hardlink (multi-GB models should not be copied),
 * else a copy.
 */
export async function placeFile(src: string, dest: string): Promise<'reflink' | 'hardlink' | 'copy'> {
  await rm(dest, { force: true });
  try {
    await copyFile(src, dest, constants.COPYFILE_FICLONE_FORCE);
    return 'reflink';
  } catch {}
  try {
    await link(src, dest);
    return 'hardlink';
  } catch {}
  await copyFile(src, dest);
  return 'copy';
}

/** What materializing needs from the run context. */
export interface MaterializeEnv {
  progress?: Progress;
  signal?: AbortSignal;
  /** Downloads are kept under `<cacheDir>/downloads/models/`. */
  cacheDir: string;
}

/** Carry out a plan: write `model.gguf` and `model.json` into `outDir`. */
export async function materializeModel(plan: ModelPlan, outDir: string, env: MaterializeEnv): Promise<ModelRecord> {
  // the GGUF reader and writer and the downloader load when a model is made, not for a fresh check
  const [{ readGguf }, { writeTinyModel }, { download }, { sha256File }] = await Promise.all([
    import('../src/gguf/read.js'), import('../src/gguf/tiny-model.js'), import('../src/fetch/download.js'), import('../src/util/sha256-file.js'),
  ]);
  await mkdir(outDir, { recursive: true });
  const dest = join(outDir, 'model.gguf');
  let record: Omit<ModelRecord, 'summary'>;

  if (plan.kind === 'file') {
    // read the user's file first, so a bad one is reported under its own name
    await readGguf(plan.path, { skipArrays: true });
    const placed = await placeFile(plan.path, dest);
    const size = (await stat(dest)).size;
    const sha256 = await hashWithProgress(dest, size, 'hashing model', env);
    record = { source: { kind: 'file', path: plan.path, ...(plan.dir ? { dir: plan.dir } : {}) }, placed, sha256, size };
  } else if (plan.kind === 'url') {
    const cached = join(env.cacheDir, 'downloads', 'models', `${plan.sha256}.gguf`);
    const bar = env.progress?.start(`downloading ${plan.url}`, { unit: 'bytes' });
    const got = await download({
      url: plan.url, dest: cached, sha256: plan.sha256, signal: env.signal,
      onProgress: (done, total) => bar?.update(done, total),
    });
    bar?.done();
    await readGguf(cached, { skipArrays: true });
    const placed = await placeFile(cached, dest);
    record = { source: { kind: 'url', url: plan.url }, placed, sha256: got.sha256, size: got.size };
  } else {
    const bar = env.progress?.start('generating the tiny model', { unit: 'steps', total: 1 });
    const out = await writeTinyModel({ vocab: plan.vocab, out: dest, ...plan.params });
    bar?.done();
    const vocabSha256 = await sha256File(plan.vocab);
    // the vocab by name and content: its directory (often inside the cache) must not reach dependents' keys
    record = { source: { kind: 'tiny', vocab: basename(plan.vocab), vocabSha256, params: { ...plan.params } }, placed: 'generated', sha256: out.sha256, size: out.bytes };
  }

  const summary = describeModel(await readGguf(dest, { skipArrays: true }));
  const full: ModelRecord = { ...record, summary };
  await writeFile(join(outDir, 'model.json'), JSON.stringify(full, null, 2) + '\n');
  return full;
}

async function hashWithProgress(path: string, size: number, label: string, env: MaterializeEnv): Promise<string> {
  const { sha256File } = await import('../src/util/sha256-file.js');
  const bar = env.progress?.start(label, { total: size, unit: 'bytes' });
  const digest = await sha256File(path, (done) => bar?.update(done, size), env.signal);
  bar?.done();
  return digest;
}

/** The closing summary line for a record. */
export function modelSummaryLines(r: ModelRecord): string[] {
  const from = r.source.kind === 'file' ? r.source.path : r.source.kind === 'url' ? r.source.url : `tiny llama from ${r.source.vocab}`;
  const m = r.summary;
  return [`model: ${m.architecture ?? 'unknown arch'} ${humanCount(m.parameters)} params, ${m.quantization ?? '?'}, ${humanBytes(r.size)} (${from}, ${r.placed})`];
}

/**
 * The inputs, declared without fetching: a vocab given as an exact npm
 * version is named by that version (a published version never changes),
 * not by the file it is read into (which lives in the cache, wherever that
 * is), and is only fetched when the task runs.
 */
async function declaredInputs(ctx: { task: string; options: ModelOptions; projectRoot: string; config: { modelsDir: string | null; cacheDir: string } }): Promise<TaskInputs> {
  const { vocab } = ctx.options;
  const where = { projectRoot: ctx.projectRoot, modelsDir: ctx.config.modelsDir, keyPath: `tasks.${ctx.task}` };
  if (typeof vocab === 'object' && isExactNpmSpec(vocab.npm)) {
    // the plan decides whether the vocab is used at all; any path stands in for it here
    const plan = await planModel({ ...ctx.options, vocab: ctx.projectRoot }, where);
    if (plan.kind === 'tiny' && plan.vocab === resolve(ctx.projectRoot)) return { params: { kind: 'tiny', vocab: { npm: vocab.npm }, ...plan.params } };
    return modelInputs(plan);
  }
  return modelInputs(await planModel(await sourceOptions(ctx), where));
}

export default defineTask<ModelOptions>({
  name: 'model',
  description: 'The GGUF model the workload runs: a local file or folder, a URL with sha256, or a generated tiny llama',
  options: modelOptions,
  inputs: (ctx) => declaredInputs(ctx),
  outputs: ['model.gguf', 'model.json'],
  async run(ctx) {
    const plan = await planModel(await sourceOptions(ctx), { projectRoot: ctx.projectRoot, modelsDir: ctx.config.modelsDir, keyPath: `tasks.${ctx.task}` });
    const record = await materializeModel(plan, ctx.outDir, { progress: ctx.progress, signal: ctx.signal, cacheDir: ctx.cacheDir });
    return { summary: modelSummaryLines(record) };
  },
});
