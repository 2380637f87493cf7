/**
 * Which TheRock tarball a `therock` source means right now. "Newest" is
 * resolved when the fingerprint is computed, so a new nightly makes
 * fetch-rocm stale; the answer is recorded under the cache so that `run()`
 * fetches exactly what the fingerprint named, and so that an unreachable
 * index can fall back to the previous answer (with a warning).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RocmflowError } from '../errors.js';
import { DEFAULT_INDEX, listBuilds, normalizeIndex, parseBuildName, selectBuild, type Build } from './therock-index.js';

/** A resolved tarball and where it was resolved from. */
export interface TheRockResolution extends Build {
  readonly index: string;
  /** When the index was read (ISO 8601). */
  readonly resolvedAt: string;
}

export interface ResolveOptions {
  family: string;
  version?: string;
  index?: string;
  /** The cache directory; resolutions are kept under `<cacheDir>/downloads`. */
  cacheDir: string;
  /** Use the recorded resolution without asking the index (what `run()` does after `inputs()`). */
  preferRecorded?: boolean;
  warn?(message: string): void;
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

function recordPath(cacheDir: string, index: string, family: string, version?: string): string {
  const key = createHash('sha256').update(JSON.stringify([index, family, version ?? 'newest'])).digest('hex').slice(0, 16);
  return join(cacheDir, 'downloads', `therock-${family.replace(/[^\w.-]/g, '_')}-${key}.resolved.json`);
}

async function readRecord(path: string): Promise<TheRockResolution | undefined> {
  try {
    const r = JSON.parse(await readFile(path, 'utf8')) as TheRockResolution;
    return r && typeof r.url === 'string' && typeof r.name === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}

/** Resolve a therock source to one tarball: see the module comment. */
export async function resolveTheRock(opts: ResolveOptions): Promise<TheRockResolution> {
  const index = normalizeIndex(opts.index ?? DEFAULT_INDEX);
  const path = recordPath(opts.cacheDir, index, opts.family, opts.version);
  const recorded = await readRecord(path);
  if (opts.preferRecorded && recorded) return recorded;
  let builds: Build[];
  try {
    builds = await listBuilds({ index, family: opts.family, fetch: opts.fetch, signal: opts.signal });
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    const offline = e instanceof RocmflowError && ['E_UNREACHABLE', 'E_TIMEOUT', 'E_NETWORK', 'E_HTTP'].includes(e.code);
    if (offline && recorded) {
      opts.warn?.(`${e.message}; using the build resolved at ${recorded.resolvedAt}: ${recorded.name}`);
      return recorded;
    }
    if (offline && opts.version) {
      // a pinned version names its file: try the conventional URL even without the listing
      const name = `therock-dist-linux-${opts.family}-${opts.version}.tar.gz`;
      const p = parseBuildName(name);
      if (p) {
        opts.warn?.(`${e.message}; trying ${name} directly`);
        return { name, url: new URL(name, index).href, ...p, index, resolvedAt: new Date().toISOString() };
      }
    }
    throw e;
  }
  const build = selectBuild(builds, opts.version);
  if (!build) {
    const have = builds.slice(0, 8).map((b) => b.version).join(', ');
    throw new RocmflowError('E_NO_BUILDS', `no TheRock build ${opts.version} for family "${opts.family}" at ${index}; newest there: ${have}`);
  }
  const resolution: TheRockResolution = { ...build, index, resolvedAt: new Date().toISOString() };
  await mkdir(join(opts.cacheDir, 'downloads'), { recursive: true });
  await writeFile(path + '.tmp', JSON.stringify(resolution, null, 2) + '\n');
  await rename(path + '.tmp', path);
  return resolution;
}
