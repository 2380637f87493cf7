/**
 * The body of the fetch-rocm task, kept free of the engine so it can be
 * tested (and reused) on its own: what the fingerprint covers, which
 * outputs exist, and the fetch itself for each kind of runtime source.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { RocmflowError } from '../errors.js';
import type { Json, Progress, RuntimeSource, TaskInputs } from '../plugin/types.js';
// the fetchers are imported where a source of their kind is met: a fresh
// check of a `none` or `dir` source (the cpu pipeline) loads none of them
const apt = () => import('./apt.js');
const theRock = () => import('./resolve-therock.js');
const rocmVersion = async (root: string) => (await import('./version.js')).rocmVersion(root);

/** What fetch-rocm records in `fetch.json`. */
export interface FetchRecord {
  kind: RuntimeSource['kind'];
  /** Where the bytes came from (tarball URL, or the directory for `dir`). */
  url?: string;
  path?: string;
  /** Tarball file name (therock/url). */
  name?: string;
  family?: string;
  index?: string;
  /** Compressed size and digest of the tarball. */
  size?: number;
  sha256?: string;
  /** TheRock's version from the tarball name, else the detected ROCm version. */
  version?: string;
  /** The ROCm version the tree itself reports, and its build id. */
  rocmVersion?: string;
  buildId?: string;
  /** Files, symlinks and hardlinks in the fetched tree. */
  files: number;
  /** The top-level directory stripped from the tarball, if any. */
  topDir?: string | null;
  packages?: { name: string; version: string; sha256: string }[];
  note?: string;
}

export interface RuntimeEnv {
  /** The cache directory: downloads go to `<cacheDir>/downloads`. */
  cacheDir: string;
  signal?: AbortSignal;
  warn?(message: string): void;
  info?(message: string): void;
  progress?: Progress;
  fetch?: typeof fetch;
}

/** The outputs fetch-rocm declares for a source. */
export function runtimeOutputs(source: RuntimeSource): string[] {
  if (source.kind === 'none') return ['fetch.json'];
  if (source.kind === 'dir') return ['rocm.json', 'fetch.json'];
  return ['rocm', 'fetch.json'];
}

/** What the fingerprint covers for a source (may read TheRock's index or apt's lists). */
export async function runtimeInputs(source: RuntimeSource, env: RuntimeEnv): Promise<TaskInputs> {
  switch (source.kind) {
    case 'none':
      return { params: { source: { kind: 'none' } } };
    case 'url':
      return { params: { source: { kind: 'url', url: source.url, sha256: source.sha256.toLowerCase() } } };
    case 'dir': {
      const path = resolve(source.path);
      return { files: [path], params: { source: { kind: 'dir', path } } };
    }
    case 'therock': {
      const r = await (await theRock()).resolveTheRock({ ...source, cacheDir: env.cacheDir, warn: env.warn, fetch: env.fetch, signal: env.signal });
      const resolved: Json = { name: r.name, url: r.url, version: r.version, mtime: r.mtime ?? null, size: r.size ?? null };
      return { params: { source: { kind: 'therock', family: source.family, version: source.version ?? 'newest', index: r.index }, resolved } };
    }
    case 'apt': {
      let versions: Record<string, string> | null = null;
      try {
        versions = await (await apt()).aptCandidates({ packages: source.packages, sources: source.sources, stateDir: aptState(env.cacheDir), signal: env.signal });
      } catch (e) {
        if (env.signal?.aborted || !(e instanceof RocmflowError) || e.code === 'E_APT_PACKAGE') throw e;
        env.warn?.(`${e.message}; the fingerprint covers package names only`);
      }
      return { params: { source: { kind: 'apt', packages: source.packages, sources: source.sources ?? null }, versions } };
    }
  }
}

function aptState(cacheDir: string): string {
  return join(cacheDir, 'apt');
}

/** Fetch `source` into `outDir` (outputs as in `runtimeOutputs`); returns what `fetch.json` now holds. */
export async function fetchRuntime(source: RuntimeSource, outDir: string, env: RuntimeEnv): Promise<FetchRecord> {
  await mkdir(outDir, { recursive: true });
  let record: FetchRecord;
  switch (source.kind) {
    case 'none':
      record = { kind: 'none', files: 0, note: 'no GPU runtime: this target uses the CPU only' };
      break;
    case 'dir':
      record = await fetchDir(source.path, outDir);
      break;
    case 'apt': {
      const rocm = join(outDir, 'rocm');
      const r = await (await apt()).fetchApt({
        packages: source.packages, sources: source.sources, prefix: rocm, stateDir: aptState(env.cacheDir),
        downloadDir: join(env.cacheDir, 'downloads', 'apt'), signal: env.signal,
        onProgress: progressOf(env, 'apt packages', 'packages'),
      });
      const v = await rocmVersion(rocm);
      record = {
        kind: 'apt', files: await countFiles(rocm), version: v?.version, rocmVersion: v?.version, buildId: v?.buildId,
        packages: r.packages.map((p) => ({ name: p.name, version: p.version, sha256: p.sha256 })),
      };
      break;
    }
    case 'url':
    case 'therock': {
      let url: string;
      let name: string;
      let expect: string | undefined;
      let extra: Partial<FetchRecord> = {};
      if (source.kind === 'url') {
        url = source.url;
        name = basename(new URL(url).pathname) || 'runtime.tar';
        expect = source.sha256.toLowerCase();
      } else {
        // the resolution inputs() recorded, so we fetch exactly what the fingerprint named
        const r = await (await theRock()).resolveTheRock({ ...source, cacheDir: env.cacheDir, preferRecorded: true, warn: env.warn, fetch: env.fetch, signal: env.signal });
        url = r.url;
        name = r.name;
        extra = { family: r.family, index: r.index, version: r.version };
      }
      const key = createHash('sha256').update(url).digest('hex').slice(0, 12);
      const dest = join(env.cacheDir, 'downloads', `${key}-${name}`);
      // a complete earlier download of the same URL is reused after re-verifying its digest
      const known = expect ?? (await readSidecar(dest + '.json', url));
      const { download } = await import('./download.js');
      const dl = await download({
        url, dest, sha256: known, signal: env.signal, fetch: env.fetch,
        onProgress: progressOf(env, `download ${name}`, 'bytes'),
        onRetry: (e, n) => env.warn?.(`${e.message}; retry ${n}`),
      });
      await writeFile(dest + '.json', JSON.stringify({ url, sha256: dl.sha256, size: dl.size }) + '\n');
      if (dl.cached) env.info?.(`using cached download ${dest}`);
      const { extract } = await import('../archive/extract.js');
      const x = await extract({ archive: dest, dest: join(outDir, 'rocm'), signal: env.signal, onProgress: progressOf(env, `extract ${name}`, 'bytes') });
      const v = await rocmVersion(join(outDir, 'rocm'));
      record = {
        kind: source.kind, url, name, size: dl.size, sha256: dl.sha256, ...extra,
        version: extra.version ?? v?.version, rocmVersion: v?.version, buildId: v?.buildId,
        files: x.files + x.symlinks + x.hardlinks, topDir: x.topDir,
      };
      break;
    }
  }
  await writeFile(join(outDir, 'fetch.json'), JSON.stringify(record, null, 2) + '\n');
  return record;
}

async function fetchDir(path: string, outDir: string): Promise<FetchRecord> {
  const abs = resolve(path);
  const st = await stat(abs).catch(() => null);
  if (!st?.isDirectory()) throw new RocmflowError('E_NO_SUCH_DIR', `runtime directory ${abs} (source.path) does not exist or is not a directory`);
  const real = await realpath(abs);
  const v = await rocmVersion(real);
  await writeFile(join(outDir, 'rocm.json'), JSON.stringify({ path: real, version: v?.version ?? null, buildId: v?.buildId ?? null }, null, 2) + '\n');
  return { kind: 'dir', path: real, url: `file://${real}`, version: v?.version, rocmVersion: v?.version, buildId: v?.buildId, files: await countFiles(real) };
}

async function readSidecar(path: string, url: string): Promise<string | undefined> {
  try {
    const j = JSON.parse(await readFile(path, 'utf8'));
    return j.url === url && typeof j.sha256 === 'string' ? j.sha256 : undefined;
  } catch {
    return undefined;
  }
}

function progressOf(env: RuntimeEnv, label: string, unit: string) {
  if (!env.progress) return undefined;
  let handle: ReturnType<Progress['start']> | undefined;
  return (done: number, total?: number) => {
    handle ??= env.progress!.start(label, { total, unit });
    handle.update(done, total);
    if (total !== undefined && done >= total) handle.done();
  };
}

/** Non-directory entries under `root` (files, symlinks), not following links. */
export async function countFiles(root: string): Promise<number> {
  let n = 0;
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isDirectory()) stack.push(join(dir, e.name));
      else n++;
    }
  }
  return n;
}

/**
 * The root of a fetched runtime, given fetch-rocm's output directory: the
 * extracted `rocm/`, the directory `rocm.json` points at, or null (`none`).
 */
export async function runtimeRoot(fetchOutDir: string): Promise<string | null> {
  try {
    const j = JSON.parse(await readFile(join(fetchOutDir, 'rocm.json'), 'utf8'));
    if (typeof j.path === 'string') return j.path;
  } catch {}
  const rocm = join(fetchOutDir, 'rocm');
  return (await lstat(rocm).catch(() => null))?.isDirectory() ? rocm : null;
}
