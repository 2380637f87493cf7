import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command, CommandIO } from '../command.js';
import { COMMON_FLAGS, intFlag, parseArgs } from '../args.js';
import { openSession } from '../session.js';
import { TaskGraph } from '../../graph/task-graph.js';
import { resolveTarget } from '../../plugin/select-target.js';
import { Executor, NotANoOp } from '../../engine/executor.js';
import { planRun } from '../../engine/plan.js';
import type { RunEvent, TaskState } from '../../engine/events.js';
import { TerminalReporter } from '../../report/terminal-reporter.js';
import { openRemote } from '../../cache/remote/open.js';
import { usageError } from '../../errors.js';

const FLAGS = {
  ...COMMON_FLAGS,
  force: { type: 'optional' as const, multiple: true },
  'dry-run': { type: 'boolean' as const },
  explain: { type: 'boolean' as const },
  verbose: { type: 'boolean' as const, short: 'v' },
  jobs: { type: 'string' as const, short: 'j' },
  'no-device': { type: 'boolean' as const },
};

export const runCommand: Command = {
  name: 'run',
  summary: 'run tasks and their dependencies, reusing fresh and cached results',
  usage: `rocmflow run [TASK...] [--target T|auto] [--force [TASK]] [--dry-run] [--explain] [--json] [-j N] [--no-device] [--config F] [--cache-dir D] [--verbose]

  TASK         tasks to run (with their dependencies); default: the config's default list (package-image)
  --target     target plugin, or auto (default from config, else auto)
  --force      rerun every selected task, or --force TASK: that task and its dependents
  --dry-run    print what would be fresh, restored or run, and why; run nothing
  --explain    print which fingerprint fields changed for every task that runs
  --json       one JSON event per line on stdout
  -j, --jobs   parallel tasks (default: number of CPUs)
  --verbose    stream task output; replay logs of cached tasks
  --no-device  a GPU target without its GPU: build, trace on the CPU fallback, keep device-only files by rule`,
  async run(argv, io) {
    const { flags, positionals } = parseArgs(argv, FLAGS, 'run');
    const session = await openSession(io, {
      config: flags.config as string | undefined,
      cacheDir: flags['cache-dir'] as string | undefined,
      target: flags.target as string | undefined,
      jobs: intFlag(flags.jobs, 'jobs', 'run'),
      noDevice: !!flags['no-device'],
    });
    try {
      return await runWith(session, positionals, flags, io);
    } finally {
      await session.close();
    }
  },
};

async function runWith(
  session: Awaited<ReturnType<typeof openSession>>,
  requested: string[],
  flags: Record<string, unknown>,
  io: CommandIO,
): Promise<number> {
  const t0 = performance.now();
  const { config, registry } = session;
  const forceFlags = (flags.force as (string | boolean)[] | undefined) ?? [];
  const forceAll = forceFlags.includes(true as never) || forceFlags.includes('true');
  const forceNamed = forceFlags.filter((f): f is string => typeof f === 'string' && f !== 'true');
  const selected = requested.length ? requested : forceNamed.length ? forceNamed : [...config.default];
  const tasks = [...registry.tasks.values()].map((t) => ({ name: t.def.name, deps: t.def.deps ?? [] }));
  const graph = TaskGraph.select(tasks, [...selected, ...forceNamed.filter((f) => !selected.includes(f))]);
  for (const f of forceNamed) if (!graph.has(f)) throw usageError('E_USAGE', `run: --force ${f}: not among the selected tasks`);
  const force = new Set<string>(forceAll ? graph.order : forceNamed.flatMap((f) => [f, ...graph.dependents(f)]));
  const { target, reason } = await resolveTarget(config.target, registry, { targetOptions: config.targets, env: io.env });
  // the server (onlyFresh) makes nothing, not even a new cache's index: a first run is never a no-op
  if (io.onlyFresh && !existsSync(join(config.cacheDir, 'index.sqlite'))) throw new NotANoOp(`no cache index in ${config.cacheDir} yet`);
  const index = await session.index();
  const json = !!flags.json;
  const reporter = json ? null : new TerminalReporter(io.stdout ?? process.stdout, { color: io.color, verbose: !!flags.verbose });
  try {
    const emit = (e: RunEvent) => (json ? io.out(JSON.stringify(e)) : reporter!.handle(e));
    const remote = await openRemote(config, { env: io.env, warn: (message) => emit({ type: 'warning', message }) });
    const base = { config, registry, graph, target, index, remote, force, verbose: !!flags.verbose, signal: io.signal, env: io.env };
    emit({ type: 'plan', target: target.name, targetReason: reason, tasks: [...graph.order] });

    if (flags['dry-run']) {
      const plan = await planRun(base);
      for (const p of plan) {
        if (json) io.out(JSON.stringify({ type: 'dry-run', task: p.task, state: p.state, reason: p.reason, changes: p.changes }));
        else {
          io.out(`  ${p.state === 'run' ? 'would run    ' : p.state === 'cached' ? 'would restore' : 'fresh        '} ${p.task}  (${p.reason})`);
          if (flags.explain) for (const c of p.changes) io.out(`      ${c.field}: ${c.before} → ${c.after}`);
        }
      }
      return 0;
    }

    const runId = `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}`;
    const explainEmit = (e: RunEvent) => {
      emit(e);
      if (flags.explain && !json && e.type === 'start') for (const c of e.changes ?? []) io.out(`      ${c.field}: ${c.before} → ${c.after}`);
    };
    const exec = new Executor({ ...base, emit: explainEmit, runId, onlyFresh: io.onlyFresh });
    const outcomes = await exec.run();
    if (flags.verbose && !json) await replayCachedLogs(outcomes, index, config, target.name, io);
    const counts: Record<TaskState, number> = { fresh: 0, cached: 0, ran: 0, failed: 0, skipped: 0 };
    for (const o of outcomes.values()) counts[o.state]++;
    const failed = graph.order.filter((n) => outcomes.get(n)?.state === 'failed');
    const skipped = graph.order.filter((n) => outcomes.get(n)?.state === 'skipped');
    const lines = failed.length ? [] : graph.order.flatMap((n) => outcomes.get(n)?.summary ?? []);
    const ok = failed.length === 0 && skipped.length === 0;
    await index.set('history', runId, { target: target.name, tasks: Object.fromEntries(outcomes), ok, ms: Math.round(performance.now() - t0) });
    const facts = Object.fromEntries(graph.order.flatMap((n) => (outcomes.get(n)?.facts ? [[n, outcomes.get(n)!.facts!]] : [])));
    emit({ type: 'summary', ok, ms: Math.round(performance.now() - t0), target: target.name, counts, failed, skipped, lines, ...(Object.keys(facts).length ? { facts } : {}), logDir: exec.logDir });
    return ok ? 0 : 1;
  } finally {
    // also when the run throws (an error, the server's NotANoOp): its status timer must not outlive it
    reporter?.close();
  }
}

async function replayCachedLogs(
  outcomes: Map<string, { state: TaskState }>,
  index: Awaited<ReturnType<Awaited<ReturnType<typeof openSession>>['index']>>,
  config: { cacheDir: string; stateDir: string },
  target: string,
  io: CommandIO,
): Promise<void> {
  const { ContentStore } = await import('../../cache/content-store.js');
  const { readFileSync } = await import('node:fs');
  const store = new ContentStore(config.cacheDir);
  for (const [task, o] of outcomes) {
    if (o.state !== 'cached' && o.state !== 'fresh') continue;
    const state = await index.get<{ key: string }>('state', Executor.stateKey(config.stateDir, target, task));
    const entry = state && (await index.get<{ log?: string }>('action', state.key));
    if (!entry?.log || !store.has(entry.log)) continue;
    io.out(`--- ${task} (log of the run that produced it) ---`);
    io.out(readFileSync(store.path(entry.log), 'utf8').trimEnd());
  }
}
