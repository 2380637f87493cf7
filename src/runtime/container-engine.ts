/**
 * podman or docker, with the flags this machine needs, found by trying:
 * run the defaults, read the error, add the flag that answers it, try again.
 * Seen on VMs with hybrid cgroups and fixed limits: crun refuses hybrid
 * cgroups (`--runtime runc`), the default container limits (1048576 open
 * files) are above what the host may grant (`--ulimit nofile=...`), systemd
 * is not there to manage cgroups (`--cgroup-manager=cgroupfs`), and podman's
 * overlay driver cannot sit on an overlayfs (`--storage-driver vfs`).
 *
 * The storage driver is decided in a scratch store next to the real one
 * (same filesystem), never in the real store: podman records the driver of
 * its first use in its database, and a store first touched with a driver
 * that fails here refuses every other driver afterwards.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { RocmflowError } from '../errors.js';
import { which } from '../util/which.js';

export type EngineName = 'podman' | 'docker';

/** An engine and the flags it needs here. */
export interface ContainerEngine {
  name: EngineName;
  /** The executable. */
  bin: string;
  /** `podman --version`, or the docker daemon's version. */
  version: string;
  /** Flags before the subcommand: the caller's own (a storage root) and the probe's (storage driver, cgroup manager, OCI runtime). */
  global: string[];
  /** Flags every `run` gets (limits). */
  run: string[];
  /** One line per flag the probe added: the flag and the error that asked for it. */
  reasons: string[];
}

/** What ran, and how it ended. */
export interface EngineResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `bin args`, collecting output; a missing binary is a missing-tool error. */
export function engineExec(bin: string, args: readonly string[], opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<EngineResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], signal: opts.signal, timeout: opts.timeoutMs ?? 300_000 });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') reject(new RocmflowError('E_MISSING_TOOL', `${bin} not found: apt install podman (or docker.io)`));
      else if (e.name !== 'AbortError') reject(e);
    });
    child.on('close', (code, sig) => {
      if (opts.signal?.aborted) return reject(opts.signal.reason);
      resolve({ code: code ?? (sig ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** The last non-empty line of an engine's stderr, without podman's `Error: ` prefix. */
export function lastError(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  return (lines.at(-1) ?? '').replace(/^Error: /, '');
}

/** A flag the probe can add, and why. */
export type EngineFix =
  | { kind: 'storage'; flags: string[]; why: string }
  | { kind: 'cgroups'; flags: string[]; why: string }
  | { kind: 'runtime'; flags: string[]; why: string }
  | { kind: 'ulimit'; resource: string; why: string };

/** RLIMIT_* numbers as runc reports them (`error setting rlimit type 7`), to `--ulimit` names. */
const RLIMIT_NAMES = ['cpu', 'fsize', 'data', 'stack', 'core', 'rss', 'nproc', 'nofile', 'memlock', 'as', 'locks', 'sigpending', 'msgqueue', 'nice', 'rtprio', 'rttime'];

/** What an engine error asks for, or null when it is not one the probe knows. */
export function diagnose(stderr: string): EngineFix | null {
  const why = lastError(stderr);
  let m = /setrlimit `?RLIMIT_([A-Z]+)`?: Operation not permitted/i.exec(stderr);
  if (m) return { kind: 'ulimit', resource: m[1]!.toLowerCase(), why };
  m = /error setting rlimit type (\d+): operation not permitted/i.exec(stderr);
  if (m && RLIMIT_NAMES[Number(m[1])]) return { kind: 'ulimit', resource: RLIMIT_NAMES[Number(m[1])]!, why };
  if (/cgroups in hybrid mode not supported/i.test(stderr)) return { kind: 'runtime', flags: ['--runtime', 'runc'], why };
  if (/overlay.{0,40}not supported|does not support overlay/i.test(stderr)) return { kind: 'storage', flags: ['--storage-driver', 'vfs'], why };
  if (/sd-bus|systemd.{0,80}(cgroup|not running|dbus)|cgroup.{0,80}systemd/i.test(stderr)) return { kind: 'cgroups', flags: ['--cgroup-manager=cgroupfs'], why };
  return null;
}

/** This process's own soft and hard limit of a resource (from /proc/self/limits), or null. */
export function hostLimit(resource: string): { soft: string; hard: string } | null {
  const label: Record<string, string> = { nofile: 'Max open files', nproc: 'Max processes', stack: 'Max stack size', core: 'Max core file size', memlock: 'Max locked memory' };
  const want = label[resource];
  if (!want) return null;
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(want));
    const [soft, hard] = line!.slice(want.length).trim().split(/\s+/);
    return soft && hard && /^\d+$/.test(soft) && /^\d+$/.test(hard) ? { soft, hard } : null;
  } catch {
    return null;
  }
}

/** Where podman keeps its images (graphroot), read from storage.conf without running podman. */
export function podmanGraphRoot(global: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  const i = global.indexOf('--root');
  if (i >= 0 && global[i + 1]) return global[i + 1]!;
  const eq = global.find((g) => g.startsWith('--root='));
  if (eq) return eq.slice('--root='.length);
  const root = process.getuid?.() === 0;
  const confs = [env.CONTAINERS_STORAGE_CONF, ...(root ? [] : [join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'containers/storage.conf')]), '/etc/containers/storage.conf', '/usr/share/containers/storage.conf'];
  for (const c of confs) {
    if (!c || !existsSync(c)) continue;
    const text = readFileSync(c, 'utf8');
    const m = new RegExp(`^\\s*${root ? 'graphroot' : 'rootless_storage_path'}\\s*=\\s*"([^"]+)"`, 'm').exec(text);
    if (m) return m[1]!.replace(/\$HOME/g, homedir());
    break;
  }
  return root ? '/var/lib/containers/storage' : join(env.XDG_DATA_HOME ?? join(homedir(), '.local/share'), 'containers/storage');
}

const STORAGE_FLAGS = new Set(['--root', '--runroot']);

/** `global` without the storage location flags (the scratch store replaces them). */
function withoutStorageLocation(global: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < global.length; i++) {
    const g = global[i]!;
    if (STORAGE_FLAGS.has(g)) i++;
    else if (![...STORAGE_FLAGS].some((f) => g.startsWith(`${f}=`))) out.push(g);
  }
  return out;
}

export interface ProbeOptions {
  name: EngineName;
  /** @default the name, looked up on PATH */
  bin?: string;
  /** Global flags of the caller's own, kept in front of the probe's (e.g. `--root DIR --runroot DIR` for a private store). */
  global?: string[];
  /** An archive to load before the check (`load -i`). */
  archive?: string;
  /** Or an image to pull before the check (`pull`); `tlsVerify: false` for a plain-HTTP registry. */
  pull?: { ref: string; tlsVerify?: boolean };
  /** The image the check runs. */
  image: string;
  /** The command the check runs in the image (in-image path first); it must exit 0. */
  check: string[];
  signal?: AbortSignal;
  log?(line: string): void;
}

/** The engine's version: `podman --version`; for docker the daemon's (no daemon, no docker). */
export async function engineVersion(name: EngineName, bin: string, signal?: AbortSignal): Promise<string> {
  const r = name === 'docker'
    ? await engineExec(bin, ['version', '--format', '{{.Server.Version}}'], { signal, timeoutMs: 20_000 })
    : await engineExec(bin, ['--version'], { signal, timeoutMs: 20_000 });
  if (r.code !== 0) throw new RocmflowError('E_ENGINE', `${name}: ${name === 'docker' ? 'no daemon answers' : 'does not run'} (${lastError(r.stderr) || `exit ${r.code}`})`);
  return r.stdout.trim();
}

/**
 * Find the flags `name` needs here: decide the storage driver in a scratch
 * store (podman), load the archive, then run `check` in `image`, adding one
 * flag per error the probe recognises. An error it does not recognise, or
 * one that comes back after its fix, ends the probe with that error.
 */
export async function probeEngine(o: ProbeOptions): Promise<ContainerEngine> {
  const bin = o.bin ?? which(o.name);
  if (!bin) throw new RocmflowError('E_MISSING_TOOL', `${o.name} not found: apt install ${o.name === 'docker' ? 'docker.io' : 'podman'}`);
  const e: ContainerEngine = { name: o.name, bin, version: await engineVersion(o.name, bin, o.signal), global: [...(o.global ?? [])], run: [], reasons: [] };
  const log = o.log ?? (() => {});
  const add = (fix: EngineFix & { flags: string[] }) => {
    e.global.push(...fix.flags);
    e.reasons.push(`${fix.flags.join(' ')}: ${fix.why}`);
    log(`${o.name}: adding ${fix.flags.join(' ')} (${fix.why})`);
  };
  const fail = (what: string, r: EngineResult): never => {
    // a store first used with another driver keeps it: say how to get out
    const hint = /database configuration mismatch/.test(r.stderr)
      ? ' (the store keeps the storage driver of its first use, which does not work here: `podman system reset` empties it so the working driver can take over)'
      : '';
    throw new RocmflowError('E_ENGINE', `${o.name} ${what} failed here${e.reasons.length ? ` even with ${[...e.global, ...e.run].join(' ')}` : ''}: ${lastError(r.stderr) || `exit ${r.code}`}${hint}`, {
      details: r.stderr.trim().split('\n').slice(-6),
    });
  };
  if (o.name === 'podman') await probeStorage(e, add, o.signal);

  if (o.archive) {
    const r = await engineExec(bin, [...e.global, 'load', '-i', o.archive], { signal: o.signal });
    if (r.code !== 0) fail(`load -i ${o.archive}`, r);
  }
  if (o.pull) {
    const tls = o.pull.tlsVerify === false ? (o.name === 'podman' ? ['--tls-verify=false'] : []) : [];
    const r = await engineExec(bin, [...e.global, 'pull', ...tls, o.pull.ref], { signal: o.signal });
    if (r.code !== 0) fail(`pull ${o.pull.ref}`, r);
  }
  const tried = new Map<string, number>();
  // one --ulimit per resource, replaced when its first value is refused too
  const limits = new Map<string, { value: string; why: string }>();
  const runFlags = () => [...limits].flatMap(([res, l]) => ['--ulimit', `${res}=${l.value}`]);
  for (let attempt = 0; attempt < 12; attempt++) {
    e.run = runFlags();
    const [entry, ...args] = o.check;
    const r = await engineExec(bin, [...e.global, 'run', '--rm', '--network', 'host', ...e.run, '--entrypoint', entry!, o.image, ...args], { signal: o.signal });
    if (r.code === 0) {
      e.reasons.push(...[...limits].map(([res, l]) => `--ulimit ${res}=${l.value}: ${l.why}`));
      return e;
    }
    const fix = diagnose(r.stderr);
    if (!fix || fix.kind === 'storage') return fail(`run ${o.image}`, r);
    const key = fix.kind === 'ulimit' ? `ulimit ${fix.resource}` : fix.kind;
    const n = tried.get(key) ?? 0;
    tried.set(key, n + 1);
    if (fix.kind === 'ulimit') {
      // first the limits this process itself has, then the common login default
      const host = hostLimit(fix.resource);
      const steps = [...(host ? [`${host.soft}:${host.hard}`] : []), '1024:1024'];
      if (n >= steps.length) return fail(`run ${o.image}`, r);
      limits.set(fix.resource, { value: steps[n]!, why: fix.why });
      log(`${o.name}: trying --ulimit ${fix.resource}=${steps[n]} (${fix.why})`);
      continue;
    }
    if (n > 0) return fail(`run ${o.image}`, r);
    if (fix.kind === 'runtime' && !which('runc')) throw new RocmflowError('E_MISSING_TOOL', `${o.name}: ${fix.why}; install runc (apt install runc) so it can be used instead`);
    add(fix);
  }
  throw new RocmflowError('E_ENGINE', `${o.name}: no working flags found after 12 attempts (${e.reasons.join('; ')})`);
}

/** podman: run `info` twice in a scratch store on the real store's filesystem (the first use of a store records its driver; the second shows whether it works). */
async function probeStorage(e: ContainerEngine, add: (fix: EngineFix & { flags: string[] }) => void, signal?: AbortSignal): Promise<void> {
  let parent = dirname(podmanGraphRoot(e.global));
  while (!existsSync(parent)) parent = dirname(parent);
  const scratch = await mkdtemp(join(parent, '.rocmflow-probe-'));
  // podman refuses a runroot path over 50 characters; its filesystem does not matter here
  const runroot = await mkdtemp(join(tmpdir(), 'rf-'));
  try {
    const base = withoutStorageLocation(e.global);
    const info = () => engineExec(e.bin, [...base, '--root', join(scratch, 'root'), '--runroot', runroot, 'info', '--format', '{{.Store.GraphDriverName}}'], { signal, timeoutMs: 60_000 });
    await info();
    const r = await info();
    if (r.code === 0) return;
    const fix = diagnose(r.stderr);
    if (fix?.kind !== 'storage') return; // not a storage problem: the run check will meet it and say so
    add(fix);
  } finally {
    await rm(scratch, { recursive: true, force: true });
    await rm(runroot, { recursive: true, force: true });
  }
}

/** What a cached probe is valid for: the engine, its version, the caller's own flags and (podman) where its store is. */
function probeKey(name: EngineName, bin: string, version: string, global: readonly string[]): string {
  return JSON.stringify([name, bin, version, global, ...(name === 'podman' ? [podmanGraphRoot(global)] : [])]);
}

/**
 * A probe result remembered in `file` (JSON, keyed by engine, version, the
 * caller's flags and podman's store), or a new probe written there; either way the archive,
 * if given, is loaded. The file is read as untrusted: anything malformed is
 * ignored and probed again.
 */
export async function cachedProbe(file: string, o: ProbeOptions & { probe?: boolean }): Promise<ContainerEngine & { cached: boolean }> {
  const bin = o.bin ?? which(o.name);
  if (!bin) throw new RocmflowError('E_MISSING_TOOL', `${o.name} not found: apt install ${o.name === 'docker' ? 'docker.io' : 'podman'}`);
  const version = await engineVersion(o.name, bin, o.signal);
  const key = probeKey(o.name, bin, version, o.global ?? []);
  let all: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) all = parsed as Record<string, unknown>;
  } catch {}
  const hit = all[key] as Partial<ContainerEngine> | undefined;
  const strings = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === 'string');
  if (hit && strings(hit.global) && strings(hit.run) && strings(hit.reasons)) {
    if (o.archive) {
      const r = await engineExec(bin, [...hit.global, 'load', '-i', o.archive], { signal: o.signal });
      if (r.code !== 0) throw new RocmflowError('E_ENGINE', `${o.name} load -i ${o.archive} failed: ${lastError(r.stderr)}`);
    }
    return { name: o.name, bin, version, global: hit.global, run: hit.run, reasons: hit.reasons, cached: true };
  }
  // planning (--dry-run) runs no containers: without a remembered probe it shows the caller's flags alone
  if (o.probe === false) return { name: o.name, bin, version, global: [...(o.global ?? [])], run: [], reasons: ['not probed yet: the first real run finds the flags this machine needs'], cached: true };
  const e = await probeEngine({ ...o, bin });
  all[key] = { global: e.global, run: e.run, reasons: e.reasons, at: new Date().toISOString() };
  await writeFile(file, JSON.stringify(all, null, 2) + '\n');
  return { ...e, cached: false };
}

/** What to run in a container. */
export interface ContainerRun {
  image: string;
  /** In-image path; the image's entrypoint when absent. */
  entrypoint?: string;
  args: readonly string[];
  /** Host directory → in-container path. */
  binds?: readonly { source: string; dest: string; rw?: boolean }[];
  /** Host device nodes, passed through at the same path. */
  devices?: readonly string[];
  groups?: readonly string[];
  env?: Readonly<Record<string, string>>;
  name?: string;
  /** @default "host": the engines here may have no bridge network */
  network?: string;
  /** Keep stdin open and allocate a terminal (interactive use). */
  interactive?: boolean;
}

/** The argv of `engine run` with the probed flags. */
export function runArgv(e: Pick<ContainerEngine, 'bin' | 'global' | 'run'>, r: ContainerRun): string[] {
  const argv = [e.bin, ...e.global, 'run', '--rm', '--network', r.network ?? 'host', ...e.run];
  if (r.interactive) argv.push('-it');
  if (r.name) argv.push('--name', r.name);
  for (const b of r.binds ?? []) argv.push('-v', `${b.source}:${b.dest}:${b.rw ? 'rw' : 'ro'}`);
  for (const d of r.devices ?? []) argv.push('--device', d);
  for (const g of r.groups ?? []) argv.push('--group-add', g);
  for (const [k, v] of Object.entries(r.env ?? {})) argv.push('-e', `${k}=${v}`);
  if (r.entrypoint) argv.push('--entrypoint', r.entrypoint);
  argv.push(r.image, ...r.args);
  return argv;
}
