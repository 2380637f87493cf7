import { spawn } from 'node:child_process';
import { accessSync, constants, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, delimiter, dirname, join } from 'node:path';
import { missingTool, RocmflowError } from '../errors.js';

/** The syscalls worth tracing: every path-taking call, process life cycle, cwd changes. */
export const STRACE_FILTER = 'trace=%file,%process,fchdir,getcwd';

/** How strace writes its log. */
export interface StraceLogOptions {
  /** Log file (`-o`), or the prefix of the per-pid files with `perPid`. */
  logPath: string;
  /** One file per pid (`-ff -o PREFIX` → `PREFIX.<pid>`), with `-ttt` timestamps so they can be merged. */
  perPid?: boolean;
  /** More strace options, placed before `-o` (e.g. `--seccomp-bpf`). */
  extraArgs?: string[];
}

/**
 * strace's argv (without the strace binary itself) for tracing `command`.
 * Exported so a caller can put strace inside a sandbox:
 * `bwrap ... -- strace ...straceArgs(opts, cmd)`.
 */
export function straceArgs(opts: StraceLogOptions, command: readonly string[]): string[] {
  if (command.length === 0) throw new RocmflowError('E_TRACE_RUN', 'no command to trace', { exitCode: 2 });
  return [
    opts.perPid ? '-ff' : '-f',
    ...(opts.perPid ? ['-ttt'] : []),
    '-qq', // no attach/exit chatter
    '-y', // the kernel's path of every fd: resolved paths and dirfds
    '-s', '4096', // paths are never cut; argv strings should not be either
    '-e', STRACE_FILTER,
    ...(opts.extraArgs ?? []),
    '-o', opts.logPath,
    '--',
    ...command,
  ];
}

/** Options for running a command under strace. */
export interface RunTracedOptions extends StraceLogOptions {
  command: string[];
  cwd?: string;
  /** The whole environment of the traced command. @default process.env */
  env?: Record<string, string>;
  /** Aborting kills strace and the traced command's whole process group. */
  signal?: AbortSignal;
  /** strace binary. @default "strace" on PATH */
  strace?: string;
  /** Collect the command's stdout and stderr instead of passing them through. */
  capture?: boolean;
}

export interface TracedRun {
  /** The traced command's exit code (strace passes it on); null when killed. */
  exitCode: number | null;
  /** The signal that killed it, e.g. "SIGKILL". */
  signal: string | null;
  /** The log file, or the per-pid files, sorted by pid. */
  logFiles: string[];
  /** With `capture`: what the command wrote. */
  stdout?: string;
  stderr?: string;
}

/** Run `command` under strace; resolves when it ends. */
export async function runTraced(opts: RunTracedOptions): Promise<TracedRun> {
  const strace = findExecutable(opts.strace ?? 'strace', opts.env?.PATH ?? process.env.PATH ?? '');
  if (!strace) throw missingTool('strace', 'apt install strace (Debian/Ubuntu), dnf install strace (Fedora)');
  opts.signal?.throwIfAborted();
  // per-pid files of an earlier run with the same prefix would be read as this run's
  if (opts.perPid) for (const f of listLogs(opts.logPath, true)) rmSync(f, { force: true });
  const child = spawn(strace, straceArgs(opts, opts.command), {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true, // its own process group, so an abort reaches every traced descendant
    stdio: ['ignore', opts.capture ? 'pipe' : 'inherit', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (!opts.capture) process.stderr.write(d);
    if (!opts.capture && stderr.length > 8192) stderr = stderr.slice(-4096); // only the tail is reported
  });
  const kill = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {} // already gone
  };
  let hardKill: NodeJS.Timeout | undefined;
  const onAbort = () => {
    kill('SIGTERM');
    hardKill = setTimeout(() => kill('SIGKILL'), 2000);
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, sig) => resolve([code, sig]));
  }).finally(() => {
    opts.signal?.removeEventListener('abort', onAbort);
    clearTimeout(hardKill);
  });
  if (opts.signal?.aborted) throw opts.signal.reason;
  const logFiles = listLogs(opts.logPath, opts.perPid ?? false);
  // strace opens its log before starting the command: an empty log means the command never ran
  const straceSaid = stderr.trim().split('\n').filter((l) => /^(?:\S*\/)?strace: /.test(l)).pop();
  if (logFiles.length === 0 || (straceSaid && logFiles.every((f) => statSync(f).size === 0))) {
    throw new RocmflowError('E_TRACE_RUN', `strace wrote no trace to ${opts.logPath}: ${straceSaid ?? `exit code ${exitCode}`}`);
  }
  return { exitCode, signal, logFiles, ...(opts.capture ? { stdout, stderr } : {}) };
}

function listLogs(logPath: string, perPid: boolean): string[] {
  const dir = dirname(logPath);
  const base = basename(logPath);
  if (!perPid) {
    try {
      return statSync(logPath).isFile() ? [logPath] : [];
    } catch {
      return [];
    }
  }
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith(base + '.') && /^\d+$/.test(n.slice(base.length + 1)))
    .map((n) => ({ n, pid: Number(n.slice(base.length + 1)) }))
    .sort((a, b) => a.pid - b.pid)
    .map(({ n }) => join(dir, n));
}

/** An executable by path, or by name on PATH. */
export function findExecutable(name: string, path: string): string | undefined {
  const candidates = name.includes('/') ? [name] : path.split(delimiter).filter(Boolean).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      if (statSync(c).isFile()) return c;
    } catch {}
  }
  return undefined;
}
