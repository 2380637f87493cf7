/**
 * The `apt` runtime source: .deb packages downloaded with `apt-get download`
 * and unpacked into a prefix with `dpkg-deb -x`, never installed. apt runs
 * against a private state directory (its own sources list, package lists,
 * cache and an empty dpkg status), so the host's apt state is untouched and
 * the host's installed packages or pins do not change what is picked.
 * Only the named packages are fetched, not their dependencies.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { RocmflowError, missingTool } from '../errors.js';
import { APT_RECORD, type AptPackage, type AptRecord } from './apt-record.js';
import { sha256File } from '../util/sha256-file.js';

export interface AptOptions {
  /** Package names, optionally pinned as `name=version`. */
  packages: string[];
  /** Directory to unpack into (created if missing). */
  prefix: string;
  /** apt source lines (`deb [signed-by=...] URI suite components`); default: Debian sid from this host's mirror. */
  sources?: string[];
  /** Private apt state (lists, cache); kept between runs when given, so updates are incremental. */
  stateDir?: string;
  /** Where .deb files are kept; reused when their sha256 still matches. Default: inside the state dir. */
  downloadDir?: string;
  signal?: AbortSignal;
  onProgress?(done: number, total: number, label: string): void;
}

const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/**
 * Debian sid on the mirror this host already uses (from /etc/apt/sources.list*),
 * falling back to deb.debian.org. sid is where Debian's ROCm packages are newest.
 */
export async function defaultAptSources(etcApt = '/etc/apt'): Promise<string[]> {
  const files = [join(etcApt, 'sources.list')];
  try {
    for (const f of (await readdir(join(etcApt, 'sources.list.d'))).sort()) if (/\.(list|sources)$/.test(f)) files.push(join(etcApt, 'sources.list.d', f));
  } catch {}
  let mirror: string | undefined;
  for (const f of files) {
    const text = await readFile(f, 'utf8').catch(() => '');
    for (const m of text.matchAll(/^\s*(?:deb\s+(?:\[[^\]]*\]\s+)?|URIs:\s*)(\S+)/gim)) {
      const uri = m[1]!.replace(/\/+$/, '');
      if (/\/debian$/.test(uri) && !/security/.test(uri)) {
        mirror = uri;
        break;
      }
    }
    if (mirror) break;
  }
  const signed = existsSync(DEBIAN_KEYRING) ? ` [signed-by=${DEBIAN_KEYRING}]` : '';
  return [`deb${signed} ${mirror ?? 'http://deb.debian.org/debian'} sid main`];
}

function sh(cmd: string, args: string[], opts: { cwd?: string; signal?: AbortSignal } = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd, signal: opts.signal, maxBuffer: 256 << 20, env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' } }, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout, stderr });
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(missingTool(cmd, cmd === 'dpkg-deb' ? 'apt install dpkg' : 'apt install apt'));
      if (opts.signal?.aborted) return reject(opts.signal.reason);
      const last = String(stderr).trim().split('\n').filter((l) => /^E:|error/i.test(l)).pop() ?? String(stderr).trim().split('\n').pop() ?? '';
      reject(Object.assign(new RocmflowError('E_APT', `${cmd} ${args.filter((a) => !a.startsWith('-o') && !a.includes('::')).slice(0, 3).join(' ')} failed: ${last || `exit ${(err as any).code}`}`), { stderr }));
    });
  });
}

/** A private apt configuration under `stateDir`. */
async function aptConfig(stateDir: string, sources: string[]): Promise<string[]> {
  for (const d of ['lists/partial', 'cache/archives/partial', 'sources.list.d', 'preferences.d']) await mkdir(join(stateDir, d), { recursive: true });
  await writeFile(join(stateDir, 'sources.list'), sources.join('\n') + '\n');
  if (!existsSync(join(stateDir, 'status'))) await writeFile(join(stateDir, 'status'), '');
  const o = (k: string, v: string) => ['-o', `${k}=${v}`];
  return [
    ...o('Dir::Etc::SourceList', join(stateDir, 'sources.list')),
    ...o('Dir::Etc::SourceParts', join(stateDir, 'sources.list.d')),
    ...o('Dir::Etc::Preferences', join(stateDir, 'preferences')),
    ...o('Dir::Etc::PreferencesParts', join(stateDir, 'preferences.d')),
    ...o('Dir::State::Lists', join(stateDir, 'lists')),
    ...o('Dir::State::Status', join(stateDir, 'status')),
    ...o('Dir::Cache', join(stateDir, 'cache')),
    // Debian sid's Release file on some mirrors/snapshots is past its Valid-Until
    ...o('Acquire::Check-Valid-Until', 'false'),
    ...o('Acquire::Retries', '2'),
    // the _apt sandbox user cannot write into a private 0700 directory
    ...(process.getuid?.() === 0 ? o('APT::Sandbox::User', 'root') : []),
  ];
}

/** Refresh the private package lists; an unreachable mirror is an error, not apt's warning. */
async function aptUpdate(stateDir: string, sources: string[], signal?: AbortSignal): Promise<string[]> {
  const cfg = await aptConfig(stateDir, sources);
  const { stderr } = await sh('apt-get', [...cfg, '-q', 'update'], { signal });
  const lists = await readdir(join(stateDir, 'lists'));
  if (!lists.some((f) => f.includes('_Packages'))) {
    const why = stderr.split('\n').filter((l) => /^(W|E):/.test(l)).slice(0, 2).join('; ') || 'no package lists were downloaded';
    throw new RocmflowError('E_UNREACHABLE', `cannot reach apt sources (${sources.join(' | ')}): ${why}`);
  }
  return cfg;
}

/** Parse `apt-cache show` stanzas. */
function parseStanzas(text: string): Record<string, string>[] {
  return text.split(/\n\s*\n/).filter((s) => s.trim()).map((s) => {
    const rec: Record<string, string> = {};
    for (const m of s.matchAll(/^([A-Za-z0-9-]+):\s*(.*)$/gm)) rec[m[1]!] = m[2]!;
    return rec;
  });
}

async function showPackages(cfg: string[], names: string[], candidateOnly: boolean, signal?: AbortSignal): Promise<Record<string, string>[] | null> {
  try {
    const { stdout } = await sh('apt-cache', [...cfg, 'show', ...(candidateOnly ? ['--no-all-versions'] : []), ...names], { signal });
    return parseStanzas(stdout);
  } catch (e) {
    if (e instanceof RocmflowError && e.code === 'E_APT') return null;
    throw e;
  }
}

/** The stanza apt would fetch for each spec (`name` or `name=version`); one apt-cache call per kind, since each reads the whole list. */
async function candidates(cfg: string[], packages: string[], sources: string[], signal?: AbortSignal): Promise<Record<string, string>[]> {
  const specs = packages.map((spec) => {
    const [name, pinned] = spec.split('=');
    return { spec, name: name!, pinned };
  });
  const missing = (spec: string) => new RocmflowError('E_APT_PACKAGE', `package "${spec}" is not in the apt sources (${sources.join(' | ')})`);
  const stanzas: Record<string, string>[] = [];
  for (const candidateOnly of [true, false]) {
    const group = specs.filter((x) => !x.pinned === candidateOnly);
    if (group.length === 0) continue;
    const found = await showPackages(cfg, group.map((x) => x.name), candidateOnly, signal);
    if (!found) {
      // apt-cache fails the whole call for one unknown name: find which one
      for (const x of group) if (!(await showPackages(cfg, [x.name], candidateOnly, signal))) throw missing(x.spec);
      throw missing(group.map((x) => x.spec).join(' '));
    }
    stanzas.push(...found);
  }
  return specs.map((x) => {
    const s = stanzas.find((st) => st.Package === x.name && (!x.pinned || st.Version === x.pinned));
    if (!s) throw missing(x.spec);
    return s;
  });
}

/** The versions apt would fetch now for `packages` (for fingerprints: a new upload makes the fetch stale). */
export async function aptCandidates(opts: { packages: string[]; sources?: string[]; stateDir: string; signal?: AbortSignal }): Promise<Record<string, string>> {
  const sources = opts.sources?.length ? opts.sources : await defaultAptSources();
  const cfg = await aptUpdate(opts.stateDir, sources, opts.signal);
  const found = await candidates(cfg, opts.packages, sources, opts.signal);
  return Object.fromEntries(found.map((s) => [s.Package!, s.Version!]));
}

/** Download `packages` and unpack them into `prefix`; returns (and writes into the prefix) what was unpacked. */
export async function fetchApt(opts: AptOptions): Promise<AptRecord & { prefix: string }> {
  if (opts.packages.length === 0) throw new RocmflowError('E_APT_PACKAGE', 'the apt source lists no packages', { exitCode: 2 });
  const sources = opts.sources?.length ? opts.sources : await defaultAptSources();
  const ownState = !opts.stateDir;
  const stateDir = opts.stateDir ?? (await mkdtemp(join(tmpdir(), 'rocmflow-apt-')));
  try {
    const cfg = await aptUpdate(stateDir, sources, opts.signal);
    const found = await candidates(cfg, opts.packages, sources, opts.signal);
    const debDir = opts.downloadDir ?? join(stateDir, 'debs');
    await mkdir(debDir, { recursive: true });
    await mkdir(opts.prefix, { recursive: true });
    const packages: AptPackage[] = [];
    let i = 0;
    for (const s of found) {
      const name = s.Package!;
      const version = s.Version!;
      const file = s.Filename!.slice(s.Filename!.lastIndexOf('/') + 1);
      const deb = join(debDir, file);
      opts.onProgress?.(i, found.length, name);
      let sha = existsSync(deb) ? await sha256File(deb) : '';
      if (sha !== s.SHA256) {
        await rm(deb, { force: true });
        await sh('apt-get', [...cfg, '-q', 'download', `${name}=${version}`], { cwd: debDir, signal: opts.signal });
        if (!existsSync(deb)) throw new RocmflowError('E_APT', `apt-get download ${name}=${version} did not produce ${file}`);
        sha = await sha256File(deb);
        if (s.SHA256 && sha !== s.SHA256) throw new RocmflowError('E_CHECKSUM', `checksum mismatch for ${file}: expected sha256 ${s.SHA256}, got ${sha}`);
      }
      await sh('dpkg-deb', ['-x', deb, opts.prefix], { signal: opts.signal });
      packages.push({ name, version, architecture: s.Architecture ?? '', file, sha256: sha, size: (await stat(deb)).size });
      opts.onProgress?.(++i, found.length, name);
    }
    const record: AptRecord = { sources, packages };
    await mkdir(dirname(join(opts.prefix, APT_RECORD)), { recursive: true });
    await writeFile(join(opts.prefix, APT_RECORD), JSON.stringify(record, null, 2) + '\n');
    return { ...record, prefix: opts.prefix };
  } finally {
    if (ownState) await rm(stateDir, { recursive: true, force: true });
  }
}
