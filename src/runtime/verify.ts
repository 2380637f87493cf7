/**
 * Prove a trimmed root: run the same command in the full layout and in the
 * trimmed root and compare stdout. When they differ (or the trimmed run
 * fails), trace the trimmed run and list what it looked for and did not
 * find although the full layout has it: the files the trim missed.
 */
import { resolveInRoot, type RootLayout } from './layout.js';
import { runSandboxed, type SandboxBind, type SandboxOptions } from './sandbox.js';
import { traceInRoot } from './trace-in-root.js';

export interface VerifyOptions {
  /** The trimmed root directory. */
  trimmed: string;
  /** The layout it was trimmed from. */
  full: RootLayout;
  command: string[];
  env?: Record<string, string>;
  binds?: SandboxBind[];
  devices?: string[];
  cwd?: string;
  /** Force a sandbox method (tests); bwrap when installed, else chroot as root. */
  method?: SandboxOptions['method'];
  /** Equal outputs? @default exact string equality */
  compare?: (full: string, trimmed: string) => boolean;
  signal?: AbortSignal;
}

/** The verdict and the evidence. */
export interface VerifyResult {
  ok: boolean;
  /** How the trimmed root was entered. */
  method: 'bwrap' | 'chroot';
  fullStdout: string;
  trimmedStdout: string;
  /** stderr of the trimmed run (the first place to look when `ok` is false). */
  trimmedStderr: string;
  /**
   * In-root paths the trimmed run looked for in vain that exist in the full
   * layout, each with the file it resolves to there when links lead elsewhere
   * (only computed on failure).
   */
  missing: string[];
  exitCodes: { full: number; trimmed: number };
}

/** Run `command` in both roots and compare; on failure, say which paths the trimmed root lacks. */
export async function verifyRoot(opts: VerifyOptions): Promise<VerifyResult> {
  const common = { command: opts.command, env: opts.env, binds: opts.binds, devices: opts.devices, cwd: opts.cwd, signal: opts.signal };
  const full = await runSandboxed({ ...common, layout: opts.full });
  const trimmed = await runSandboxed({ ...common, root: opts.trimmed, method: opts.method });
  const same = (opts.compare ?? ((a, b) => a === b))(full.stdout, trimmed.stdout);
  const ok = same && trimmed.exitCode === full.exitCode && full.exitCode === 0;
  const result: VerifyResult = {
    ok,
    method: trimmed.method,
    fullStdout: full.stdout,
    trimmedStdout: trimmed.stdout,
    trimmedStderr: trimmed.stderr,
    missing: [],
    exitCodes: { full: full.exitCode, trimmed: trimmed.exitCode },
  };
  if (ok) return result;
  // strace needs ptrace, which bwrap allows; the chroot path runs it the same way
  const traced = await traceInRoot({ ...common, root: opts.trimmed, method: opts.method });
  // the path asked for, and the file it is in the full layout when links lead elsewhere: that is what to add
  const missing = new Set<string>();
  for (const p of traced.trace.access.missing) {
    const r = await resolveInRoot(opts.full, p).catch(() => null);
    if (!r?.stat) continue;
    missing.add(p);
    if (r.path !== p) missing.add(r.path);
  }
  result.missing = [...missing].sort();
  return result;
}
