/**
 * Trace a workload from inside its root: strace runs in the sandbox (see
 * strace-kit.ts), so every path in the log is an in-root path, the same
 * paths the closure resolves against the layout.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RocmflowError } from '../errors.js';
import { parseTraceFiles, type TraceParse } from '../trace/parse.js';
import { straceArgs } from '../trace/run.js';
import { runSandboxed, type SandboxOptions, type SandboxResult } from './sandbox.js';
import { straceKit } from './strace-kit.js';

export interface TraceInRootOptions extends SandboxOptions {
  /** More strace options (e.g. `--seccomp-bpf`). */
  extraStraceArgs?: string[];
  /** Write per-pid logs (`-ff -ttt`). */
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
    const run = await runSandboxed({
      ...opts,
      binds: [...(opts.binds ?? []), ...kit.binds, { source: dir, dest: dir, rw: true }],
      command: [...kit.prefix, ...straceArgs({ logPath: log, perPid: opts.perPid, extraArgs: opts.extraStraceArgs }, opts.command)],
    });
    const logs = (await readdir(dir)).filter((n) => n === 'trace.log' || n.startsWith('trace.log.'));
    if (logs.length === 0)
      throw new RocmflowError('E_TRACE_RUN', `strace wrote no log tracing ${opts.command[0]} (exit ${run.exitCode}): ${lastLine(run.stderr)}`);
    const trace = await parseTraceFiles([log], { cwd: opts.cwd ?? '/' });
    return { run, trace, log };
  } finally {
    if (!opts.logDir) await rm(dir, { recursive: true, force: true });
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] || '(no output)';
}
