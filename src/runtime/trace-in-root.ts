/**
 * Trace a workload from inside its root: strace runs in the sandbox (see
 * strace-kit.ts), so every path in the log is an in-root path, the same
 * paths the closure resolves against the layout.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTraceFiles, type TraceParse } from '../trace/parse.js';
import { runSandboxed, type SandboxOptions, type SandboxResult } from './sandbox.js';
import { straceKit } from './strace-kit.js';

/** strace's options for closures: follow forks, fd paths, full strings, file and process calls. */
export const DEFAULT_STRACE_ARGS = ['-f', '-qq', '-y', '-s', '4096', '-e', 'trace=%file,%process,fchdir,close'];

export interface TraceInRootOptions extends SandboxOptions {
  /** strace options before `-o`; @default DEFAULT_STRACE_ARGS */
  straceArgs?: string[];
  /** Write per-pid logs (`-ff`). */
  perPid?: boolean;
  /** Keep the logs in this host directory (bound into the sandbox at the same path); a temp dir otherwise, removed after parsing. */
  logDir?: string;
  signal?: AbortSignal;
}

/** The run's outcome, its parsed trace, and the log files. */
export interface TraceInRootResult {
  run: SandboxResult;
  trace: TraceParse;
  /** The log file (or the `-ff` prefix). */
  log: string;
}

/** Run `opts.command` under strace inside the sandbox and parse the trace. */
export async function traceInRoot(opts: TraceInRootOptions): Promise<TraceInRootResult> {
  const kit = await straceKit();
  const dir = opts.logDir ?? (await mkdtemp(join(tmpdir(), 'rocmflow-trace-')));
  const log = join(dir, 'trace.log');
  try {
    const args = [...(opts.straceArgs ?? DEFAULT_STRACE_ARGS), ...(opts.perPid ? ['-ff'] : []), '-o', log];
    const run = await runSandboxed({
      ...opts,
      binds: [...(opts.binds ?? []), ...kit.binds, { source: dir, dest: dir, rw: true }],
      command: [...kit.prefix, ...args, '--', ...opts.command],
    });
    const trace = await parseTraceFiles([log], { cwd: opts.cwd ?? '/' });
    return { run, trace, log };
  } finally {
    if (!opts.logDir) await rm(dir, { recursive: true, force: true });
  }
}
