/**
 * Where llama.cpp's source comes from, and the exact commit it resolves to:
 * a git URL and ref, a git bundle, a local checkout, or the bundle that the
 * npm package node-llama-cpp ships (reachable wherever npm is).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as s from '../util/schema.js';
import { RocmflowError, usageError } from '../errors.js';
import type { Json } from '../plugin/types.js';

/** A llama.cpp source. */
export type SourceSpec =
  /** A git repository (any URL git understands) at a ref: commit, tag or branch. @default ref "HEAD" */
  | { git: string; ref?: string }
  /** A git bundle file; `ref` picks one of its heads. @default ref "HEAD" */
  | { bundle: string; ref?: string }
  /** A local checkout, used in place (not copied). */
  | { path: string }
  /** An npm package that ships `llama/gitRelease.bundle`, e.g. `node-llama-cpp@3.22.1`. */
  | { npm: string };

/** The commit the default source holds (the tree node-llama-cpp@3.22.1 ships). */
export const PINNED_LLAMA_COMMIT = 'de3ff815ea7d559ee917f063901b8986f038abc6';
export const UPSTREAM_LLAMA_GIT = 'https://github.com/ggml-org/llama.cpp';
/** The same commit from upstream git. */
export const UPSTREAM_LLAMA_SOURCE: SourceSpec = { git: UPSTREAM_LLAMA_GIT, ref: PINNED_LLAMA_COMMIT };
/** The default source: the npm package whose bundle holds the pinned commit (needs only the npm registry). */
export const NPM_LLAMA_SOURCE: SourceSpec = { npm: 'node-llama-cpp@3.22.1' };

/** Validates a `source` option. */
export const sourceSpecSchema: s.Schema<SourceSpec> = s.union<SourceSpec>(
  'a source: { git, ref? }, { bundle, ref? }, { path } or { npm }',
  s.object({ git: s.string(), ref: s.optional(s.string()) }),
  s.object({ bundle: s.string(), ref: s.optional(s.string()) }),
  s.object({ path: s.string() }),
  s.object({ npm: s.string() }),
);

/** A source with its exact commit: what the build's fingerprint covers. */
export interface ResolvedSource {
  spec: SourceSpec;
  /** The exact commit; null for a local tree that is not a git checkout. */
  commit: string | null;
  /** Fingerprint parameters: the spec, the commit, and for local trees a digest of their state. */
  params: Record<string, Json>;
  /** For npm and bundle sources: the bundle file used. */
  bundle?: string;
}

/** A prepared tree. */
export interface PreparedSource {
  dir: string;
  commit: string | null;
  /** The commit's committer time, seconds since the epoch (null without a commit): a true, reproducible image creation time. */
  commitTime: number | null;
  /** `git describe --tags --always` (or "local tree"). */
  describe: string;
}

export interface SourceOptions {
  /** Cache for downloads (npm packages). */
  cacheDir: string;
  signal?: AbortSignal;
}

const COMMIT = /^[0-9a-f]{40}$/;

export function describeSpec(spec: SourceSpec): string {
  if ('git' in spec) return `git ${spec.git}${spec.ref ? ` @ ${spec.ref}` : ''}`;
  if ('bundle' in spec) return `bundle ${spec.bundle}${spec.ref ? ` @ ${spec.ref}` : ''}`;
  if ('path' in spec) return `path ${spec.path}`;
  return `npm ${spec.npm}`;
}

function run(cmd: string, args: string[], opts: { cwd?: string; signal?: AbortSignal; what: string }): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, args, { cwd: opts.cwd, signal: opts.signal, encoding: 'utf8', maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolvePromise(stdout);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new RocmflowError('E_MISSING_TOOL', `${cmd} not found: apt install ${cmd === 'npm' ? 'nodejs npm' : cmd}`));
      if (opts.signal?.aborted) return reject(new RocmflowError('E_CANCELLED', `${opts.what}: cancelled`));
      const msg = (stderr || stdout || err.message).trim().split('\n').filter(Boolean).pop() ?? '';
      reject(new RocmflowError('E_SOURCE', `${opts.what}: ${cmd} ${args[0]} failed: ${msg}`));
    });
  });
}

const git = (args: string[], opts: { cwd?: string; signal?: AbortSignal; what: string }) => run('git', args, opts);

/** Heads of a bundle or remote: `sha ref` (bundle) or `sha\tref` (ls-remote) lines. */
function parseHeads(text: string): { sha: string; ref: string }[] {
  return text.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 2 && COMMIT.test(f[0]!)).map((f) => ({ sha: f[0]!, ref: f[1]! }));
}

/** Pick `ref` among heads: exact name, then tag (peeled first), branch, HEAD. */
function pickRef(heads: { sha: string; ref: string }[], ref: string): string | undefined {
  if (COMMIT.test(ref)) return ref;
  const names = ref === 'HEAD' ? ['HEAD'] : [`refs/tags/${ref}^{}`, `refs/tags/${ref}`, `refs/heads/${ref}`, ref];
  for (const n of names) {
    const h = heads.find((x) => x.ref === n);
    if (h) return h.sha;
  }
  return undefined;
}

/** The commit a bundle's `ref` points at. */
async function bundleCommit(bundle: string, ref: string, signal?: AbortSignal): Promise<string> {
  if (!existsSync(bundle)) throw usageError('E_SOURCE', `llama.cpp source: bundle ${bundle} does not exist`);
  const heads = parseHeads(await git(['bundle', 'list-heads', bundle], { signal, what: `llama.cpp bundle ${bundle}` }));
  const sha = pickRef(heads, ref) ?? (ref === 'HEAD' ? heads[0]?.sha : undefined);
  if (!sha) throw usageError('E_SOURCE', `llama.cpp bundle ${bundle}: no ref "${ref}" (has ${heads.map((h) => h.ref).join(', ') || 'no heads'})`);
  return sha;
}

/** Fetch an npm package's llama.cpp bundle into the cache (once per exact version). */
export async function npmBundle(spec: string, opts: SourceOptions): Promise<string> {
  const at = spec.lastIndexOf('@');
  const name = at > 0 ? spec.slice(0, at) : spec;
  let version = at > 0 ? spec.slice(at + 1) : '';
  if (!/^\d+\.\d+\.\d+(-[\w.]+)?$/.test(version)) {
    // a range or tag: ask the registry which version it means now
    const out = await run('npm', ['view', spec, 'version', '--json'], { signal: opts.signal, what: `npm ${spec}` });
    const v = JSON.parse(out) as unknown;
    const picked = Array.isArray(v) ? v[v.length - 1] : v;
    // the registry's answer becomes a directory name: an exact version or nothing
    if (typeof picked !== 'string' || !/^\d+\.\d+\.\d+(-[\w.]+)?$/.test(picked))
      throw new RocmflowError('E_SOURCE', `llama.cpp source: npm ${spec}: the registry answered ${JSON.stringify(picked)?.slice(0, 80)}, not an exact version`);
    version = picked;
  }
  const dir = join(opts.cacheDir, 'sources', 'npm', `${name.replace(/[/@]/g, '_')}-${version}`);
  const bundle = join(dir, 'gitRelease.bundle');
  if (existsSync(bundle)) return bundle;
  await mkdir(join(opts.cacheDir, 'sources', 'npm'), { recursive: true });
  const tmp = await mkdtemp(join(opts.cacheDir, 'sources', 'npm', '.tmp-'));
  try {
    const out = await run('npm', ['pack', `${name}@${version}`, '--silent', '--pack-destination', tmp], { cwd: tmp, signal: opts.signal, what: `npm pack ${name}@${version}` });
    const tgz = out.trim().split('\n').pop()!;
    // the one archive reader, for one member: nothing else in the package is written
    const { extractMember } = await import('../archive/extract.js');
    if (!(await extractMember(join(tmp, tgz), 'package/llama/gitRelease.bundle', join(tmp, 'gitRelease.bundle'), { signal: opts.signal })))
      throw usageError('E_SOURCE', `llama.cpp source npm ${spec}: the package has no llama/gitRelease.bundle`);
    await mkdir(dir, { recursive: true });
    await rename(join(tmp, 'gitRelease.bundle'), bundle);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return bundle;
}

/** Digest of a non-git tree: every file's path and contents, sorted (build dirs and .git skipped). */
async function treeDigest(dir: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (rel: string): Promise<void> => {
    const entries = (await readdir(join(dir, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (e.name === '.git' || /^build/.test(e.name)) continue;
        await walk(p);
      } else if (e.isFile()) h.update(`${p}\0`).update(await readFile(join(dir, p))).update('\0');
      else if (e.isSymbolicLink()) h.update(`${p}\0link\0`);
    }
  };
  await walk('');
  return h.digest('hex');
}

/** HEAD of the git checkout whose top is `dir`; null for a plain directory (or one inside another checkout). */
async function checkoutHead(dir: string, signal?: AbortSignal): Promise<string | null> {
  if (!existsSync(join(dir, 'CMakeLists.txt'))) throw usageError('E_SOURCE', `llama.cpp source path ${dir}: no CMakeLists.txt there`);
  try {
    const commit = (await git(['rev-parse', 'HEAD'], { cwd: dir, signal, what: `llama.cpp source path ${dir}` })).trim();
    return COMMIT.test(commit) && (await git(['rev-parse', '--show-toplevel'], { cwd: dir, signal, what: dir })).trim() === resolve(dir) ? commit : null;
  } catch {
    return null;
  }
}

/** A plain source tree's top-level entries that are source: not `.git`, not a `build*` directory. */
function treeTop(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.name !== '.git' && !(e.isDirectory() && /^build/.test(e.name)))
    .map((e) => join(dir, e.name))
    .sort();
}

/** A local checkout's state: HEAD plus a hash of uncommitted changes (tracked diff and untracked files). */
async function localState(dir: string, signal?: AbortSignal): Promise<{ commit: string | null; state: string }> {
  const commit = await checkoutHead(dir, signal);
  return commit ? { commit, state: await checkoutState(dir, signal) } : { commit: null, state: `tree:${await treeDigest(dir)}` };
}

/** `clean`, or `dirty:` and a hash of a checkout's uncommitted changes (tracked diff and untracked files). */
async function checkoutState(dir: string, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  h.update(await git(['diff', 'HEAD', '--binary'], { cwd: dir, signal, what: `llama.cpp source path ${dir}` }));
  const untracked = (await git(['ls-files', '--others', '--exclude-standard', '-z'], { cwd: dir, signal, what: dir })).split('\0').filter(Boolean).sort();
  for (const f of untracked) {
    const st = await stat(join(dir, f)).catch(() => null);
    if (st?.isFile()) h.update(`${f}\0`).update(await readFile(join(dir, f)));
  }
  const digest = h.digest('hex');
  return untracked.length === 0 && digest === EMPTY_DIGEST ? 'clean' : `dirty:${digest}`;
}

/** What hashing an empty diff with no untracked files gives. */
const EMPTY_DIGEST = createHash('sha256').digest('hex');

/** `name@1.2.3`: an npm spec naming one exact (immutable) version. */
export function isExactNpmSpec(spec: string): boolean {
  const at = spec.lastIndexOf('@');
  return at > 0 && /^\d+\.\d+\.\d+(-[\w.]+)?$/.test(spec.slice(at + 1));
}

/**
 * What a pinned source is, without resolving it (no network, no download):
 * a git commit, or an exact npm version (a published version never changes,
 * so the name is the content). Null for a source that must be resolved to
 * be known: a branch or tag, a bundle or a local tree.
 */
export function declaredSource(spec: SourceSpec): Json | null {
  if ('git' in spec && spec.ref && COMMIT.test(spec.ref)) return { kind: 'git', url: spec.git, ref: spec.ref, commit: spec.ref };
  if ('npm' in spec && isExactNpmSpec(spec.npm)) return { kind: 'npm', package: spec.npm };
  return null;
}

/**
 * What `inputs()` declares for a source: `declaredSource` when it names
 * one, else the resolved source. A plain directory (no git) is declared as
 * its files, for the engine to hash through its stat cache, so a run with
 * nothing changed reads none of them (reading all of llama.cpp's 3,500
 * files took half a second of every no-op on the GPU machine); the
 * `build*` directories and `.git` at its top are left out.
 */
export async function sourceInputs(spec: SourceSpec, opts: SourceOptions): Promise<{ params: Json; files: string[] }> {
  const declared = declaredSource(spec);
  if (declared) return { params: declared, files: [] };
  if ('path' in spec) {
    // a checkout is asked for its HEAD once, here, not again by resolveSource
    const dir = resolve(spec.path);
    const commit = await checkoutHead(dir, opts.signal);
    if (!commit) return { params: { kind: 'path', path: dir, commit: null, state: 'files' }, files: treeTop(dir) };
    return { params: { kind: 'path', path: dir, commit, state: await checkoutState(dir, opts.signal) }, files: [] };
  }
  return { params: (await resolveSource(spec, opts)).params, files: [] };
}

/**
 * Resolve a source to its exact commit without checking it out: what
 * `inputs()` declares for a source that `declaredSource` cannot name. Git refs that are not commits cost one `ls-remote`;
 * npm sources download the package once into the cache.
 */
export async function resolveSource(spec: SourceSpec, opts: SourceOptions): Promise<ResolvedSource> {
  if ('git' in spec) {
    const ref = spec.ref ?? 'HEAD';
    let commit = COMMIT.test(ref) ? ref : undefined;
    if (!commit) {
      // the peeled pattern makes annotated tags list their commit too
      const heads = parseHeads(await git(['ls-remote', '--', spec.git, ref, `${ref}^{}`], { signal: opts.signal, what: `llama.cpp source ${spec.git}` }));
      commit = pickRef(heads, ref);
      if (!commit) throw usageError('E_SOURCE', `llama.cpp source ${spec.git}: no ref "${ref}"`);
    }
    return { spec, commit, params: { kind: 'git', url: spec.git, ref, commit } };
  }
  if ('bundle' in spec) {
    const bundle = resolve(spec.bundle);
    const commit = await bundleCommit(bundle, spec.ref ?? 'HEAD', opts.signal);
    return { spec, commit, bundle, params: { kind: 'bundle', bundle, ref: spec.ref ?? 'HEAD', commit } };
  }
  if ('npm' in spec) {
    const bundle = await npmBundle(spec.npm, opts);
    const commit = await bundleCommit(bundle, 'HEAD', opts.signal);
    return { spec, commit, bundle, params: { kind: 'npm', package: spec.npm, commit } };
  }
  const dir = resolve(spec.path);
  const { commit, state } = await localState(dir, opts.signal);
  return { spec, commit, params: { kind: 'path', path: dir, commit, state } };
}

/**
 * Check out the source into `dest` (shallow where the transport allows) and
 * report the exact commit. A `path` source is used in place: `dest` is unused.
 */
export async function prepareSource(spec: SourceSpec, opts: SourceOptions & { dest: string; resolved?: ResolvedSource }): Promise<PreparedSource> {
  const r = opts.resolved ?? (await resolveSource(spec, opts));
  const what = `llama.cpp source ${describeSpec(spec)}`;
  const describe = async (dir: string) => (await git(['describe', '--tags', '--always'], { cwd: dir, signal: opts.signal, what }).catch(() => r.commit ?? 'unknown')).trim();
  const commitTime = async (dir: string, commit: string) => {
    const t = (await git(['show', '-s', '--format=%ct', commit], { cwd: dir, signal: opts.signal, what })).trim();
    return /^\d+$/.test(t) ? Number(t) : null;
  };
  if ('path' in spec) {
    const dir = resolve(spec.path);
    return { dir, commit: r.commit, commitTime: r.commit ? await commitTime(dir, r.commit) : null, describe: r.commit ? await describe(dir) : 'local tree' };
  }
  const commit = r.commit!;
  await rm(opts.dest, { recursive: true, force: true });
  await mkdir(opts.dest, { recursive: true });
  const g = (args: string[]) => git(args, { cwd: opts.dest, signal: opts.signal, what });
  if (r.bundle) {
    await git(['clone', '--quiet', '--no-checkout', '--', r.bundle, opts.dest], { signal: opts.signal, what });
  } else {
    const url = (spec as { git: string }).git;
    await g(['init', '--quiet']);
    try {
      await g(['fetch', '--quiet', '--depth', '1', '--', url, commit]);
    } catch {
      // servers that refuse fetching a bare commit: fetch the ref instead
      await g(['fetch', '--quiet', '--', url, (spec as { ref?: string }).ref ?? 'HEAD']);
    }
  }
  try {
    await g(['-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--detach', commit]);
  } catch {
    throw usageError('E_SOURCE', `${what}: commit ${commit} is not in the fetched history`);
  }
  const head = (await g(['rev-parse', 'HEAD'])).trim();
  if (head !== commit) throw new RocmflowError('E_SOURCE', `${what}: checked out ${head}, expected ${commit}`);
  return { dir: opts.dest, commit, commitTime: await commitTime(opts.dest, commit), describe: await describe(opts.dest) };
}
