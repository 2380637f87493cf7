/**
 * The workload the pipeline traces and verifies: llama-server with the
 * model, a short and a longer prompt, each streamed and not, then the CLI
 * once. Sampling is pinned (seed, temperature 0, fixed thread count, EOS
 * ignored) so the texts are a fingerprint of the runtime: the trimmed root
 * must reproduce them exactly.
 *
 * Where the commands run is the caller's business (a WorkloadRunner): the
 * full layout under strace, the trimmed root, an image.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { RocmflowError } from '../errors.js';
import { complete, type CompletionTimings } from './client.js';
import { freePort, LlamaServer } from './server.js';

export { DEFAULT_WORKLOAD, type WorkloadRequest, type WorkloadSpec } from './workload-spec.js';
import type { WorkloadRequest, WorkloadSpec } from './workload-spec.js';

/** In-root locations the commands use. */
export interface WorkloadPaths {
  /** Directory of the llama.cpp executables, e.g. `/opt/llama/bin`. */
  binDir: string;
  /** The model file, e.g. `/models/model.gguf`. */
  model: string;
  /** `llama-completion` or `llama-cli`. */
  cli: string;
}

/** Runs in-root commands somewhere (a sandbox over a layout or a trimmed root). */
export interface WorkloadRunner {
  /** The host argv that runs `command` in the root; `name` labels its trace log, if any. */
  argv(command: string[], name: string): Promise<string[]>;
  /** Run `command` in the root to completion. */
  run(command: string[], name: string): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** How the root is entered, e.g. `bwrap`. */
  readonly method: string;
}

/** What one run of the workload produced. */
export interface WorkloadResult {
  server: {
    argv: string[];
    /** Spawn to /health = 200, model load included. */
    loadMs: number;
    exitCode: number;
    /** Ended on its own after SIGTERM (no group kill). */
    cleanStop: boolean;
  };
  requests: (WorkloadRequest & { text: string; timings: CompletionTimings | null; ms: number })[];
  cli: {
    argv: string[];
    exitCode: number;
    text: string;
    timings: CliTimings;
  };
}

/** The CLI's own performance lines (`llama_perf_context_print`). */
export interface CliTimings {
  loadMs: number | null;
  promptPerSecond: number | null;
  predictedPerSecond: number | null;
}

/** `llama-completion` when the build has it (newer trees moved the plain CLI there), else `llama-cli`. */
export function pickCli(hostBinDir: string): string {
  if (existsSync(join(hostBinDir, 'llama-completion'))) return 'llama-completion';
  if (existsSync(join(hostBinDir, 'llama-cli'))) return 'llama-cli';
  throw new RocmflowError('E_NO_CLI', `no llama-completion or llama-cli in ${hostBinDir}: add one to tasks.build-llama.targets`);
}

/** llama-server's argv (in-root). */
export function serverCommand(spec: WorkloadSpec, paths: WorkloadPaths, port: number, gpu: boolean): string[] {
  return [
    `${paths.binDir}/llama-server`, '-m', paths.model, '--host', '127.0.0.1', '--port', String(port),
    '-t', String(spec.threads), '-c', String(spec.ctxSize), '-np', '1', '--seed', String(spec.seed),
    ...(gpu ? ['-ngl', '999'] : []),
  ];
}

/** The CLI's argv (in-root): one completion, no chat, no warm-up, the prompt not echoed. */
export function cliCommand(spec: WorkloadSpec, paths: WorkloadPaths, gpu: boolean): string[] {
  return [
    `${paths.binDir}/${paths.cli}`, '-m', paths.model, '-p', spec.cli.prompt, '-n', String(spec.cli.nPredict),
    '--seed', String(spec.seed), '--temp', '0', '-t', String(spec.threads), '-c', String(spec.ctxSize),
    '-no-cnv', '--no-warmup', '--ignore-eos', '--no-display-prompt',
    ...(gpu ? ['-ngl', '999'] : []),
  ];
}

/** The CLI's closing timing lines, which llama.cpp prints last (`load time = ...`). */
const CLI_CLOSING = /load time\s*=/;

/**
 * Run the completion CLI until its output is whole. llama.cpp's logger
 * writes from a worker thread that is not flushed at exit (common/log.cpp
 * says so), so under load a run that exited 0 can lose its last lines: the
 * end of the generated text and the timing lines printed after it. The text
 * is deterministic (greedy, fixed seed), so a run without its timing lines
 * is repeated, each under its own name (a traced run keeps its own log),
 * twice at most; a third such run is an error.
 */
export async function runCompletionCli(
  runner: WorkloadRunner, argv: string[], cli: string, log?: (line: string) => void,
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  for (let attempt = 1; ; attempt++) {
    const r = await runner.run(argv, attempt === 1 ? 'cli' : `cli-${attempt}`);
    if (r.exitCode !== 0) throw new RocmflowError('E_WORKLOAD', `${cli} exited with ${r.exitCode}`, { details: r.stderr.trim().split('\n').slice(-10) });
    if (CLI_CLOSING.test(r.stderr)) return r;
    if (attempt === 3)
      throw new RocmflowError('E_WORKLOAD', `${cli} exited 0 three times without its closing timing lines: its output is not whole (llama.cpp's logger drops what it has not written at exit)`, { details: r.stderr.trim().split('\n').slice(-10) });
    log?.(`cli: exited 0 without its closing timing lines (llama.cpp's logger lost the end of its output); running it again`);
  }
}

/** Pull load time and speeds out of the CLI's stderr. */
export function parseCliTimings(stderr: string): CliTimings {
  const num = (re: RegExp) => {
    const m = re.exec(stderr);
    return m ? Number(m[1]) : null;
  };
  return {
    loadMs: num(/load time\s*=\s*([\d.]+) ms/),
    promptPerSecond: num(/prompt eval time\s*=.*?([\d.]+) tokens per second/),
    predictedPerSecond: num(/\beval time\s*=.*?runs.*?([\d.]+) tokens per second/),
  };
}

export interface RunWorkloadOptions {
  spec: WorkloadSpec;
  paths: WorkloadPaths;
  runner: WorkloadRunner;
  /** Offload every layer (`-ngl 999`). */
  gpu: boolean;
  signal?: AbortSignal;
  /** Called while the server is up (e.g. to sample GPU memory). */
  onServerUp?(): void;
  /** Called as each step ends (the server up, each request, the CLI), with the number of steps. */
  onStep?(done: number, total: number): void;
  log?(line: string): void;
  healthTimeoutMs?: number;
}

/** Run the whole workload; a failing server or CLI is a RocmflowError with their last output. */
export async function runWorkload(opts: RunWorkloadOptions): Promise<WorkloadResult> {
  const { spec, paths, runner } = opts;
  const port = await freePort();
  const serverArgv = serverCommand(spec, paths, port, opts.gpu);
  opts.log?.(`server: ${serverArgv.join(' ')} (${runner.method})`);
  const steps = spec.requests.length + 2;
  let step = 0;
  const server = await LlamaServer.start({
    argv: await runner.argv(serverArgv, 'server'), port, signal: opts.signal, healthTimeoutMs: opts.healthTimeoutMs,
  });
  opts.onStep?.(++step, steps);
  opts.onServerUp?.();
  const requests: WorkloadResult['requests'] = [];
  try {
    for (const r of spec.requests) {
      const out = await complete(server.baseUrl, { prompt: r.prompt, nPredict: r.nPredict, seed: spec.seed, stream: r.stream }, { signal: opts.signal });
      opts.log?.(`request ${r.name}: ${JSON.stringify(out.text)}`);
      requests.push({ ...r, text: out.text, timings: out.timings, ms: out.ms });
      opts.onStep?.(++step, steps);
    }
  } catch (e) {
    await server.stop(2000);
    throw new RocmflowError('E_WORKLOAD', `llama-server request failed: ${(e as Error).message}`, { details: server.tail() });
  }
  const exit = await server.stop();
  if (!exit.clean) opts.log?.(`server did not stop on SIGTERM; killed (exit ${exit.exitCode})`);

  const cliArgv = cliCommand(spec, paths, opts.gpu);
  opts.log?.(`cli: ${cliArgv.join(' ')}`);
  const cli = await runCompletionCli(runner, cliArgv, paths.cli, opts.log);
  opts.log?.(`cli: ${JSON.stringify(cli.stdout)}`);
  opts.onStep?.(++step, steps);
  return {
    server: { argv: serverArgv, loadMs: server.loadMs, exitCode: exit.exitCode, cleanStop: exit.clean },
    requests,
    cli: { argv: cliArgv, exitCode: cli.exitCode, text: cli.stdout, timings: parseCliTimings(cli.stderr) },
  };
}

/** Generation and prompt speed of a run: the mean over the server requests, and the CLI's own. */
export interface WorkloadSpeed {
  serverTokensPerSecond: number | null;
  serverPromptPerSecond: number | null;
  cliTokensPerSecond: number | null;
  loadMs: number | null;
}

export function workloadSpeed(r: WorkloadResult | null | undefined): WorkloadSpeed | null {
  if (!r) return null;
  const t = r.requests.map((q) => q.timings).filter((x): x is NonNullable<typeof x> => !!x);
  const mean = (xs: number[]) => (xs.length ? Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 10) / 10 : null);
  return {
    serverTokensPerSecond: mean(t.map((x) => x.predictedPerSecond)),
    serverPromptPerSecond: mean(t.map((x) => x.promptPerSecond)),
    cliTokensPerSecond: r.cli.timings.predictedPerSecond ?? null,
    loadMs: r.server.loadMs,
  };
}

/** The generated texts of a run, by request name (and `cli`). */
export function textsOf(r: Pick<WorkloadResult, 'requests' | 'cli'>): Record<string, string> {
  return { ...Object.fromEntries(r.requests.map((q) => [q.name, q.text])), cli: r.cli.text };
}

/** Names whose texts differ between two runs (empty when identical). */
export function differingTexts(a: Record<string, string>, b: Record<string, string>): string[] {
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return names.filter((n) => a[n] !== b[n]);
}
