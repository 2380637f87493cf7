/**
 * A vocab-only GGUF from the llama.cpp tree (its `models/` folder ships
 * them), read straight out of the git bundle the npm package
 * node-llama-cpp carries: the tiny test model's tokenizer, obtainable
 * wherever the npm registry is, with no checkout and no build.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RocmflowError } from '../errors.js';
import { npmBundle } from './source.js';

export interface VocabOptions {
  /** npm package spec with an exact version, e.g. `node-llama-cpp@3.22.1`. */
  npm: string;
  /** Where downloads and the extracted file are kept. */
  cacheDir: string;
  /** File under `models/`. @default "ggml-vocab-llama-spm.gguf" */
  name?: string;
}

function git(args: string[], cwd?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile('git', args, { cwd, encoding: 'buffer', maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new RocmflowError('E_SOURCE', `git ${args[0]} failed: ${stderr.toString().trim().split('\n').pop() ?? err.message}`));
      else resolve(stdout);
    });
  });
}

/** Path of the vocab file, extracted once into `<cacheDir>/sources/vocab/<package>/`. */
export async function llamaVocab(opts: VocabOptions): Promise<string> {
  const name = opts.name ?? 'ggml-vocab-llama-spm.gguf';
  const dir = join(opts.cacheDir, 'sources', 'vocab', opts.npm.replace(/[/@]/g, '_'));
  const dest = join(dir, name);
  if (existsSync(dest)) return dest;
  const bundle = await npmBundle(opts.npm, { cacheDir: opts.cacheDir });
  await mkdir(dir, { recursive: true });
  const tmp = await mkdtemp(join(dir, '.tmp-'));
  try {
    // a bare clone of the bundle is enough to read one blob at HEAD
    await git(['clone', '--bare', '--quiet', bundle, join(tmp, 'repo')]);
    const data = await git(['show', `HEAD:models/${name}`], join(tmp, 'repo')).catch(() => {
      throw new RocmflowError('E_SOURCE', `${opts.npm}: the llama.cpp bundle has no models/${name}`, { exitCode: 2 });
    });
    await writeFile(join(tmp, name), data);
    await rename(join(tmp, name), dest);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return dest;
}
