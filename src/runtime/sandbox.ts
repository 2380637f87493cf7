/**
 * Run a command inside a RootLayout or a plain root directory, so that the
 * paths it uses are in-root paths: bubblewrap when installed, else chroot
 * (through util-linux `unshare`) when running as root.
 *
 * bwrap cannot create a mount point inside a read-only bind, so a mount
 * point that does not exist in the root (a layer at /opt/llama, a trace
 * directory, /proc of a trimmed root) gets its nearest existing parent
 * replaced by a tmpfs into which the parent's original entries are bound
 * back one by one: the sandbox sees the root unchanged plus the mounts, and
 * nothing is written into the root.
 *
 * The chroot fallback cannot do that: it mounts /dev, /proc, /sys, /tmp and
 * the binds onto directories of the root, creating them (empty) in a plain
 * root, and refusing a layout whose mount points are missing.
 */
import { spawn } from 'node:child_process';
import { lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { posix } from 'node:path';
import { missingTool, RocmflowError } from '../errors.js';
import { globToRegExp, isGlob } from '../util/glob.js';
import { which as whichIn } from '../util/which.js';
import { hostPath, normalizeInRoot, type RootLayout } from './layout.js';

/** A host path made visible inside the sandbox. */
export interface SandboxBind {
  /** Host path. */
  source: string;
  /** Absolute in-sandbox path. */
  dest: string;
  /** Writable; read-only by default. */
  rw?: boolean;
}

export interface SandboxOptions {
  /** The root as base + layers; exactly one of `layout` and `root`. */
  layout?: RootLayout;
  /** A plain directory used as `/` (a trimmed root). */
  root?: string;
  /** Extra binds (the models directory, a trace directory). */
  binds?: SandboxBind[];
  /** Host device nodes or globs (`/dev/dri/renderD*`) passed through. */
  devices?: string[];
  /** Environment of the command. */
  env?: Record<string, string>;
  /**
   * Start from an empty environment (plus `env`, and a standard PATH when
   * `env` has none), so that the full and the trimmed runs see the same one.
   * @default true
   */
  clearEnv?: boolean;
  /** Working directory inside the sandbox. @default "/" */
  cwd?: string;
  /** Force a method; by default bwrap when installed, else chroot when root. */
  method?: 'bwrap' | 'chroot';
  command: string[];
}

/** The argv that runs the command, and how. */
export interface SandboxCommand {
  argv: string[];
  method: 'bwrap' | 'chroot';
  /** chroot only: host mount points that must exist (runSandboxed creates them in a plain root: files for file binds). */
  mountPoints: MountPoint[];
}

/** A chroot mount point: `inRoot` below `root`, made by makeMountPoints when the root lacks it. */
export interface MountPoint {
  root: string;
  inRoot: string;
  /** Host path (root + inRoot). */
  path: string;
  file: boolean;
}

/**
 * Whether an in-root path is free of links: each existing component is
 * checked with lstat, so a link in the root (say `models -> /etc`) is not
 * followed onto the host, as `mount` and `mkdir -p` would.
 */
function linkFree(root: string, inRoot: string): boolean {
  // with the host's / as the root, a link leads where it leads in the root too
  if (root === '/') return true;
  let cur = root;
  for (const part of inRoot.split('/').filter(Boolean)) {
    cur = `${cur}/${part}`;
    const st = lstatSync(cur, { throwIfNoEntry: false });
    if (!st) return true;
    if (st.isSymbolicLink()) return false;
  }
  return true;
}

/**
 * Make the chroot's missing mount points inside the root, one directory at
 * a time (a file bind gets an empty file), never through a link.
 */
export async function makeMountPoints(points: readonly MountPoint[]): Promise<void> {
  for (const p of points) {
    // one walk: each existing component is checked (a link, outside the host's /, is refused), each missing one made
    const parts = p.inRoot.split('/').filter(Boolean);
    let cur = p.root === '/' ? '' : p.root;
    for (const [i, part] of parts.entries()) {
      cur = `${cur}/${part}`;
      const st = lstatSync(cur, { throwIfNoEntry: false });
      if (st?.isSymbolicLink() && p.root !== '/')
        throw new RocmflowError('E_SANDBOX', `chroot: ${p.root}: ${p.inRoot} goes through a link; refusing to mount there (install bubblewrap)`);
      if (st) continue;
      if (i === parts.length - 1 && p.file) await writeFile(cur, '', { flag: 'wx' });
      else await mkdir(cur);
    }
  }
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Find an executable on the host PATH. */
/** Where a tool is on PATH (the sandbox's default PATH when none is set). */
export function which(tool: string, path = process.env.PATH ?? DEFAULT_PATH): string | null {
  return whichIn(tool, path);
}

/** Build the argv that runs `opts.command` inside the root. */
export function sandboxArgv(opts: SandboxOptions): SandboxCommand {
  if (!!opts.layout === !!opts.root) throw new RocmflowError('E_SANDBOX', 'sandbox: give exactly one of layout and root');
  if (opts.command.length === 0) throw new RocmflowError('E_SANDBOX', 'sandbox: empty command');
  const layout: RootLayout = opts.layout ?? { base: opts.root!, layers: [] };
  let method = opts.method;
  if (!method) {
    if (which('bwrap')) method = 'bwrap';
    else if (process.getuid?.() === 0) method = 'chroot';
    else throw missingTool('bwrap', 'apt install bubblewrap');
  }
  return method === 'bwrap' ? bwrapArgv(opts, layout) : chrootArgv(opts, layout);
}

function envOf(opts: SandboxOptions): Record<string, string> {
  const env = { ...(opts.env ?? {}) };
  if ((opts.clearEnv ?? true) && env.PATH === undefined) env.PATH = DEFAULT_PATH;
  return env;
}

/** Expand device globs against the host's /dev. */
export function expandDevices(devices: readonly string[]): string[] {
  const out = new Set<string>();
  for (const d of devices) {
    if (!isGlob(d)) {
      if (exists(d)) out.add(d);
      continue;
    }
    const dir = posix.dirname(d);
    const re = globToRegExp(d);
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {}
    for (const n of names) if (re.test(posix.join(dir, n))) out.add(posix.join(dir, n));
  }
  return [...out].sort();
}

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

const depth = (p: string) => (p === '/' ? 0 : p.split('/').length - 1);

interface MountOp {
  dest: string;
  order: number; // ties at one depth: binds before a tmpfs laid over them
  args: string[];
}

function bwrapArgv(opts: SandboxOptions, layout: RootLayout): SandboxCommand {
  const layers = layout.layers.map((l) => ({ ...l, mount: normalizeInRoot(l.mount) }));
  const binds = (opts.binds ?? []).map((b) => ({ ...b, dest: normalizeInRoot(b.dest) }));
  const special = ['/dev', '/proc', '/sys', '/tmp'];
  const points = [...layers.map((l) => l.mount), ...binds.map((b) => b.dest), ...special];

  // the view below a mount point: base plus the layers strictly above it
  const viewExists = (p: string, of: string) => {
    const view: RootLayout = { base: layout.base, layers: layers.filter((l) => l.mount !== of && of.startsWith(l.mount === '/' ? '/' : l.mount + '/')) };
    return exists(hostPath(view, p));
  };
  const synth = new Set<string>();
  for (const m of points) {
    if (viewExists(m, m)) continue;
    let a = posix.dirname(m);
    while (a !== '/' && !viewExists(a, m)) a = posix.dirname(a);
    synth.add(a);
  }

  const ops: MountOp[] = [];
  for (const s of synth) {
    if (s !== '/') ops.push({ dest: s, order: 1, args: ['--tmpfs', s] });
    const host = hostPath(layout, s);
    for (const name of readdirSync(host).sort()) {
      const dest = s === '/' ? '/' + name : `${s}/${name}`;
      if (points.includes(dest)) continue;
      const st = lstatSync(posix.join(host, name));
      if (st.isSymbolicLink()) ops.push({ dest, order: 0, args: ['--symlink', readlinkSync(posix.join(host, name)), dest] });
      else if (st.isDirectory() || st.isFile()) ops.push({ dest, order: 0, args: ['--ro-bind', posix.join(host, name), dest] });
    }
  }
  for (const l of layers) ops.push({ dest: l.mount, order: 0, args: ['--ro-bind', l.source, l.mount] });
  ops.push({ dest: '/dev', order: 0, args: ['--dev', '/dev'] });
  ops.push({ dest: '/proc', order: 0, args: ['--proc', '/proc'] });
  ops.push({ dest: '/sys', order: 0, args: ['--ro-bind', '/sys', '/sys'] });
  ops.push({ dest: '/tmp', order: 0, args: ['--tmpfs', '/tmp'] });
  for (const d of expandDevices(opts.devices ?? [])) ops.push({ dest: d, order: 2, args: ['--dev-bind', d, d] });
  for (const b of binds) ops.push({ dest: b.dest, order: 2, args: [b.rw ? '--bind' : '--ro-bind', b.source, b.dest] });
  // parents before children; a stable sort keeps the order above within a depth
  ops.sort((a, b) => depth(a.dest) - depth(b.dest) || a.order - b.order);

  // rocmflow runs as root, and bwrap started by root keeps every
  // capability; what runs inside may come from an image made elsewhere. So:
  // no capabilities (bwrap also sets no_new_privs: a setuid program gets
  // none back), and its own process, IPC and host-name namespaces, so
  // /proc/1/root is the sandbox's root and not the host's. The network is
  // shared: the server is reached from the host on 127.0.0.1.
  const argv = ['bwrap', '--die-with-parent', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try', '--cap-drop', 'ALL'];
  if (!synth.has('/')) argv.push('--ro-bind', layout.base, '/');
  for (const op of ops) argv.push(...op.args);
  if (opts.clearEnv ?? true) argv.push('--clearenv');
  for (const [k, v] of Object.entries(envOf(opts))) argv.push('--setenv', k, v);
  argv.push('--chdir', opts.cwd ?? '/', '--', ...opts.command);
  return { argv, method: 'bwrap', mountPoints: [] };
}

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * chroot through `unshare`: a private mount namespace gets the binds, then
 * `unshare --root --wd` enters the root. Mount points must exist in the root;
 * for a layout they must already exist (bwrap is needed otherwise).
 */
function chrootArgv(opts: SandboxOptions, layout: RootLayout): SandboxCommand {
  if (process.getuid?.() !== 0) throw missingTool('bwrap', 'apt install bubblewrap (chroot needs root)');
  const unshare = which('unshare');
  if (!unshare) throw missingTool('unshare', 'apt install util-linux');
  const root = layout.base;
  const at = (p: string) => (root === '/' ? p : posix.join(root, p));
  const point = (inRoot: string, file: boolean): MountPoint => {
    if (!linkFree(root, inRoot)) throw new RocmflowError('E_SANDBOX', `chroot: ${root}: ${inRoot} goes through a link; refusing to mount there (install bubblewrap)`);
    return { root, inRoot, path: at(inRoot), file };
  };
  const mountPoints = ['/dev', '/proc', '/sys', '/tmp'].map((p) => point(p, false));
  if (!opts.root && mountPoints.some((p) => !exists(p.path)))
    throw new RocmflowError('E_SANDBOX', `chroot needs /dev, /proc, /sys and /tmp in ${root} (install bubblewrap)`);
  const lines = ['set -e'];
  lines.push(`mount --rbind /dev ${sq(at('/dev'))}`, `mount -t proc proc ${sq(at('/proc'))}`);
  lines.push(`mount --rbind /sys ${sq(at('/sys'))}`, `mount -t tmpfs tmpfs ${sq(at('/tmp'))}`);
  const mounts = [
    ...layout.layers.map((l) => ({ source: l.source, dest: normalizeInRoot(l.mount), rw: false })),
    ...(opts.binds ?? []).map((b) => ({ source: b.source, dest: normalizeInRoot(b.dest), rw: !!b.rw })),
  ].sort((a, b) => depth(a.dest) - depth(b.dest));
  for (const m of mounts) {
    // a plain root gets its mount points created; a layout's base (often the host's /) is never written to
    if (!opts.root && !exists(at(m.dest)))
      throw new RocmflowError('E_SANDBOX', `chroot cannot mount ${m.source} at ${m.dest}: no such directory in ${root} (install bubblewrap)`);
    mountPoints.push(point(m.dest, !statSync(m.source).isDirectory()));
    lines.push(`mount --bind ${sq(m.source)} ${sq(at(m.dest))}`);
    if (!m.rw) lines.push(`mount -o remount,bind,ro ${sq(at(m.dest))}`);
  }
  lines.push(`exec ${sq(unshare)} --root=${sq(root)} --wd=${sq(opts.cwd ?? '/')} -- "$@"`);
  const env = (opts.clearEnv ?? true) ? ['env', '-i', ...Object.entries(envOf(opts)).map(([k, v]) => `${k}=${v}`)] : ['env', ...Object.entries(envOf(opts)).map(([k, v]) => `${k}=${v}`)];
  // its own pid namespace (the proc mounted above is the new one's): /proc/1/root is not the host's /
  const argv = [...env, unshare, '--mount', '--pid', '--fork', '--propagation', 'private', '/bin/sh', '-c', lines.join('\n'), 'rocmflow-chroot', ...opts.command];
  return { argv, method: 'chroot', mountPoints };
}

/** How a sandboxed command ended. */
export interface SandboxResult {
  /** Exit status, or 128 + signal number when killed by a signal. */
  exitCode: number;
  /** The signal that ended it, if any. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  method: 'bwrap' | 'chroot';
}

/**
 * Run a command in the sandbox and collect its output. Aborting `signal`
 * kills the whole process group (SIGTERM, then SIGKILL after `killAfterMs`).
 */
export async function runSandboxed(
  opts: SandboxOptions & { signal?: AbortSignal; stdin?: string; killAfterMs?: number },
): Promise<SandboxResult> {
  const cmd = sandboxArgv(opts);
  await makeMountPoints(cmd.mountPoints);
  const [exe, ...args] = cmd.argv;
  const tool = which(exe!) ?? exe!;
  return await new Promise<SandboxResult>((resolve, reject) => {
    if (opts.signal?.aborted) return reject(abortError(opts.signal));
    const child = spawn(tool, args, { detached: true, stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), opts.killAfterMs ?? 2000);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(new RocmflowError('E_SANDBOX', `cannot start ${tool}: ${e.message}`));
    });
    child.on('close', (code, sig) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      if (opts.signal?.aborted) return reject(abortError(opts.signal));
      resolve({
        exitCode: code ?? 128 + (sig ? (osConstants.signals as Record<string, number>)[sig] ?? 0 : 0),
        signal: sig,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        method: cmd.method,
      });
    });
  });
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, sig);
  } catch {}
}

function abortError(signal: AbortSignal): Error {
  const reason = signal.reason;
  return reason instanceof Error ? reason : new DOMException('The sandboxed run was aborted', 'AbortError');
}
