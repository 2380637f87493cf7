/**
 * The local source files a module imports, transitively: what a task's key
 * covers as "its code". esbuild already resolves imports exactly as the
 * module loader does, so its metafile is the closure; npm packages are left
 * out (their versions are in the lockfile, not in task code).
 *
 * Computing it bundles the module (tens of milliseconds), so the answer is
 * remembered with the size and mtime of every file in it, in the same
 * per-user cache as compiled configs (a private directory, util/private-dir.ts):
 * a warm start only stats those files.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RocmflowError } from '../errors.js';
import { privateDir } from './private-dir.js';
import { CACHE_DIR, fileStamp, settledStamp, writeCacheEntry } from './typescript-loader.js';

const memo = new Map<string, Promise<string[]>>();

/** Forget this process's answers (a long-lived process checks the files again). */
export function forgetClosures(): void {
  memo.clear();
}

/** Absolute paths of `file` and every local module it imports, sorted. */
export function moduleClosure(file: string): Promise<string[]> {
  let p = memo.get(file);
  if (!p) {
    p = compute(file);
    memo.set(file, p);
  }
  return p;
}

async function compute(file: string): Promise<string[]> {
  const dir = privateDir(CACHE_DIR);
  const entry = dir && join(dir, `closure-${createHash('sha256').update(file).digest('hex').slice(0, 24)}.json`);
  if (entry) {
    try {
      const c = JSON.parse(readFileSync(entry, 'utf8')) as { stamps: Record<string, string> };
      if (Object.entries(c.stamps).every(([f, st]) => fileStamp(f) === st)) return Object.keys(c.stamps);
    } catch {}
  }
  const { build } = await import('esbuild');
  let inputs: string[];
  try {
    const out = await build({
      entryPoints: [file], bundle: true, write: false, metafile: true, platform: 'node', format: 'esm', target: 'node20',
      packages: 'external', logLevel: 'silent',
      // esbuild takes the working directory its service started in unless told: named, so a
      // process that changes directory (the server) reads the metafile's paths against the same one
      absWorkingDir: '/',
    });
    inputs = Object.keys(out.metafile.inputs).map((f) => resolve('/', f)).filter((f) => !f.includes('/node_modules/'));
  } catch (e) {
    const first = (e as { errors?: { text: string; location?: { file: string; line: number } }[] }).errors?.[0];
    const where = first?.location ? `${first.location.file}:${first.location.line}: ` : '';
    throw new RocmflowError('E_COMPILE', `${file}: ${where}${first?.text ?? (e as Error).message}`, { exitCode: 2 });
  }
  const files = [...new Set([resolve(file), ...inputs])].sort();
  const stamps = Object.fromEntries(files.map((f) => [f, fileStamp(f)]));
  if (entry && Object.values(stamps).every(settledStamp)) writeCacheEntry(entry, JSON.stringify({ stamps }));
  return files;
}
