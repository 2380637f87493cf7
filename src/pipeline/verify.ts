/**
 * Verify a trimmed root the way the pipeline traced it: run the same
 * workload (llama-server + CLI) inside the trimmed root and compare every
 * generated text with the traced run's. On a mismatch or a failure, run it
 * once more under strace and list the paths it looked for in vain that the
 * full runtime has: what the trim missed.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { sandboxRunner } from './workload-runner.js';
import { cliCommand, differingTexts, runCompletionCli, runWorkload, textsOf, type WorkloadPaths, type WorkloadResult, type WorkloadSpec } from '../llama/workload.js';
import { parseTraceFiles } from '../trace/parse.js';
import { resolveInRoot, type RootLayout } from '../runtime/layout.js';
import type { SandboxBind } from '../runtime/sandbox.js';

export interface WorkloadVerifyOptions {
  /** The trimmed root. */
  rootfs: string;
  /** The layout it was trimmed from (to tell which missing paths it has). */
  full: RootLayout;
  /** Texts of the traced run, by request name and `cli`. */
  expected: Record<string, string>;
  spec: WorkloadSpec;
  paths: WorkloadPaths;
  gpu: boolean;
  binds: SandboxBind[];
  devices: string[];
  env: Record<string, string>;
  /** Scratch space for the diagnostic trace. */
  workDir: string;
  signal?: AbortSignal;
  log?(line: string): void;
  /** Steps of the verifying run done (server up, each request, the CLI) and their number. */
  onStep?(done: number, total: number): void;
}

export interface WorkloadVerifyResult {
  ok: boolean;
  /** How the trimmed root was entered. */
  method: string;
  texts: Record<string, string>;
  /** Names whose text differs from the traced run's. */
  differing: string[];
  /** Why the trimmed run failed, if it did. */
  error: string | null;
  /** In-root paths the trimmed run could not find that the full runtime has (computed on failure only). */
  missing: string[];
  result: WorkloadResult | null;
}

export async function verifyWorkload(o: WorkloadVerifyOptions): Promise<WorkloadVerifyResult> {
  const common = { root: o.rootfs, binds: o.binds, devices: o.devices, env: o.env, signal: o.signal };
  const runner = await sandboxRunner(common);
  let result: WorkloadResult | null = null;
  let error: string | null = null;
  try {
    result = await runWorkload({ spec: o.spec, paths: o.paths, runner, gpu: o.gpu, signal: o.signal, log: o.log, onStep: o.onStep });
  } catch (e) {
    o.signal?.throwIfAborted();
    const details = (e as { details?: readonly string[] }).details ?? [];
    error = [(e as Error).message, ...details.slice(-3)].join(' | ');
  }
  const texts = result ? textsOf(result) : {};
  let differing = result ? differingTexts(o.expected, texts) : Object.keys(o.expected);
  // llama.cpp's logger prints the CLI's tokens from a worker thread and is not flushed at exit, so under load a
  // CLI run can lose or garble its last tokens: the CLI alone differing is checked twice more before it counts
  for (let i = 0; result && differing.length === 1 && differing[0] === 'cli' && i < 2; i++) {
    // whole output or nothing: a failed rerun leaves the difference standing
    const again = await runCompletionCli(runner, cliCommand(o.spec, o.paths, o.gpu), o.paths.cli).catch(() => null);
    if (!again) break;
    o.log?.(`cli (again, ${i + 1}): ${JSON.stringify(again.stdout)}`);
    texts.cli = again.stdout;
    differing = differingTexts(o.expected, texts);
  }
  const verdict: WorkloadVerifyResult = { ok: !error && differing.length === 0, method: runner.method, texts, differing, error, missing: [], result };
  if (verdict.ok) return verdict;

  const traceDir = join(o.workDir, 'verify-trace');
  await mkdir(traceDir, { recursive: true });
  const traced = await sandboxRunner({ ...common, traceDir });
  await runWorkload({ spec: o.spec, paths: o.paths, runner: traced, gpu: o.gpu, signal: o.signal }).catch(() => null);
  const logs = traced.logs.filter((l) => existsSync(l));
  if (!logs.length) return verdict;
  const trace = await parseTraceFiles(logs, { cwd: '/' });
  const missing = new Set<string>();
  for (const p of trace.access.missing) {
    const r = await resolveInRoot(o.full, p).catch(() => null);
    if (!r?.stat) continue;
    missing.add(p);
    if (r.path !== p) missing.add(r.path);
  }
  verdict.missing = [...missing].sort();
  return verdict;
}
