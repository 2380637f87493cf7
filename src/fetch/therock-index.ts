/**
 * TheRock's tarball indexes: list the builds published for a GPU family,
 * newest first. Facts about the indexes are in the project's ROCm notes;
 * the page formats are handled by `parseIndexPage`.
 */
import { RocmflowError } from '../errors.js';
import { compareVersions } from './compare-versions.js';
import { parseIndexPage, type IndexEntry } from './index-page.js';
import { netError } from './net-error.js';

/** The current nightly index (an HTML page embedding the file list). */
export const DEFAULT_INDEX = 'https://rocm.nightlies.amd.com/tarball-multi-arch/';

/**
 * Other places TheRock publishes tarballs, for `--index`: the older
 * per-family nightly page, the S3 bucket behind it (XML listing) and the
 * stable releases.
 */
export const KNOWN_INDEXES: Readonly<Record<string, string>> = {
  nightly: DEFAULT_INDEX,
  'nightly-legacy': 'https://rocm.nightlies.amd.com/tarball/',
  s3: 'https://therock-nightly-tarball.s3.amazonaws.com/',
  release: 'https://repo.amd.com/rocm/tarball/',
};

/** One published TheRock tarball. */
export interface Build {
  /** File name, e.g. `therock-dist-linux-gfx1151-7.13.0a20260430.tar.gz`. */
  readonly name: string;
  readonly url: string;
  /** GPU family, e.g. `gfx1151`, `gfx110X-all`, `multiarch`. */
  readonly family: string;
  /** e.g. `7.13.0a20260430`, `7.12.0rc2`, `7.11.0`. */
  readonly version: string;
  readonly platform: string;
  /** ISO 8601, when the index gives it. */
  readonly mtime?: string;
  readonly size?: number;
}

const NAME_RE = /^therock-dist-(linux|windows)-(.+)-(\d+\.\d+(?:\.\d+)*[0-9A-Za-z.]*)\.(tar\.gz|tgz|tar\.xz|tar\.zst|tar|zip)$/;

/** Split a tarball name into platform, family and version; null for other files. */
export function parseBuildName(name: string): { platform: string; family: string; version: string } | null {
  const m = NAME_RE.exec(name);
  return m ? { platform: m[1]!, family: m[2]!, version: m[3]! } : null;
}

/** Newest first: by version, then by mtime for equal versions. */
export function compareBuilds(a: Build, b: Build): number {
  return compareVersions(b.version, a.version) || (b.mtime ?? '').localeCompare(a.mtime ?? '') || a.name.localeCompare(b.name);
}

export interface ListOptions {
  /** Index URL (an HTML page, an S3 listing or an autoindex page). */
  index?: string;
  /** GPU family to list; omit to list every family. */
  family?: string;
  platform?: 'linux' | 'windows';
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** Per-request timeout. @default 30000 */
  timeoutMs?: number;
}

/** Every TheRock tarball an index lists (all families), following pagination. */
export async function listIndex(opts: ListOptions = {}): Promise<Build[]> {
  const index = normalizeIndex(opts.index ?? DEFAULT_INDEX);
  const doFetch = opts.fetch ?? fetch;
  const entries: IndexEntry[] = [];
  const seen = new Set<string>();
  for (let url: string | undefined = index; url; ) {
    // a server that keeps returning the same page must not loop us forever
    if (seen.has(url) || seen.size > 1000) break;
    seen.add(url);
    const page = parseIndexPage(await fetchText(url, doFetch, opts), url);
    entries.push(...page.entries);
    url = page.next;
  }
  const platform = opts.platform ?? 'linux';
  const builds: Build[] = [];
  for (const e of entries) {
    const p = parseBuildName(e.name);
    if (p && p.platform === platform) builds.push({ name: e.name, url: e.url, ...p, mtime: e.mtime, size: e.size });
  }
  return builds.sort(compareBuilds);
}

/**
 * The builds for one family, newest first. An index without that family is
 * an error that lists the families it does have.
 */
export async function listBuilds(opts: ListOptions & { family: string }): Promise<Build[]> {
  const index = normalizeIndex(opts.index ?? DEFAULT_INDEX);
  const all = await listIndex({ ...opts, index });
  const mine = all.filter((b) => b.family === opts.family);
  if (mine.length > 0) return mine;
  const families = [...new Set(all.map((b) => b.family))].sort();
  if (families.length === 0) throw new RocmflowError('E_NO_BUILDS', `no TheRock ${opts.platform ?? 'linux'} tarballs listed at ${index}`);
  throw new RocmflowError('E_NO_BUILDS', `no TheRock builds for family "${opts.family}" at ${index}; families there: ${families.join(', ')}`);
}

/** Pick the build for a pinned version, or the newest. */
export function selectBuild(builds: readonly Build[], version?: string): Build | undefined {
  if (!version || version === 'latest' || version === 'newest') return builds[0];
  return builds.find((b) => b.version === version || b.name === version);
}

/** Directory-like index URLs need a trailing slash so relative links resolve inside them. */
export function normalizeIndex(index: string): string {
  const named = KNOWN_INDEXES[index];
  if (named) return named;
  let u: URL;
  try {
    u = new URL(index);
  } catch {
    throw new RocmflowError('E_BAD_URL', `index is not a URL: ${index}`, { exitCode: 2 });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new RocmflowError('E_BAD_URL', `index must be http(s): ${index}`, { exitCode: 2 });
  if (!u.search && !u.pathname.endsWith('/') && !/\.[a-z]+$/i.test(u.pathname)) u.pathname += '/';
  return u.href;
}

async function fetchText(url: string, doFetch: typeof fetch, opts: ListOptions): Promise<string> {
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  try {
    const res = await doFetch(url, { signal, headers: { accept: 'text/html,application/xml;q=0.9,*/*;q=0.8' } });
    if (!res.ok) throw new RocmflowError('E_HTTP', `GET ${url}: HTTP ${res.status} ${res.statusText}`.trimEnd());
    return await res.text();
  } catch (e) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (timeout.aborted) throw new RocmflowError('E_TIMEOUT', `index ${url} did not answer within ${Math.round((opts.timeoutMs ?? 30_000) / 1000)}s`);
    throw netError(e, url) ?? e;
  }
}
