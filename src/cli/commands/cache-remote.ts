/**
 * `rocmflow cache push|pull`: move results between the local cache and the
 * team's remote cache explicitly. push uploads what this workspace last
 * produced (or, with --all, every local result); pull downloads the results
 * for the tasks the next run would otherwise execute.
 */
import type { CommandIO } from '../command.js';
import { COMMON_FLAGS, parseArgs } from '../args.js';
import { openSession, type Session } from '../session.js';
import type { ActionEntry } from '../../cache/action-entry.js';
import { ContentStore } from '../../cache/content-store.js';
import { createRemote } from '../../cache/remote/create.js';
import type { RemoteCacheClient, TransferStats } from '../../cache/remote/remote-cache-client.js';
import { Executor, type TaskStateRecord } from '../../engine/executor.js';
import { planRun } from '../../engine/plan.js';
import { resolveTarget } from '../../plugin/select-target.js';
import { TaskGraph } from '../../graph/task-graph.js';
import { formatBytes, formatMs } from '../../report/format.js';
import { RocmflowError, usageError } from '../../errors.js';

const FLAGS = { ...COMMON_FLAGS, all: { type: 'boolean' as const } };

export async function cacheRemoteCommand(sub: 'push' | 'pull', argv: string[], io: CommandIO): Promise<number> {
  const cmd = `cache ${sub}`;
  const { flags, positionals } = parseArgs(argv, FLAGS, cmd);
  if (flags.all && sub === 'pull') throw usageError('E_USAGE', 'cache pull: --all is only for push (pull fetches what the current plan needs)');
  if (flags.all && positionals.length) throw usageError('E_USAGE', 'cache push: give task names or --all, not both');
  const s = await openSession(io, {
    config: flags.config as string | undefined, cacheDir: flags['cache-dir'] as string | undefined, target: flags.target as string | undefined,
  });
  let remote: RemoteCacheClient | null = null;
  try {
    const conf = s.config.remote;
    if (!conf) throw usageError('E_NO_REMOTE', `${cmd}: no remote cache configured (set cache.remote.url in ${s.config.configFile ?? 'rocmflow.config.ts'} or ROCMFLOW_REMOTE_CACHE)`);
    if (sub === 'push' && conf.mode === 'read')
      throw usageError('E_REMOTE_READ_ONLY', `cache push: the remote cache mode is "read" (cache.remote.mode or ROCMFLOW_REMOTE_CACHE_MODE); uploads are off`);
    const warnings: string[] = [];
    const warn = (m: string) => {
      warnings.push(m);
      io.err(`warning: ${m}`);
    };
    // an explicit push is consent to write, even where `auto` would not
    remote = createRemote(sub === 'push' ? { ...conf, mode: 'read-write' } : conf, { env: io.env, warn });
    const t0 = performance.now();
    const result = sub === 'push' ? await push(s, remote, positionals, !!flags.all, io) : await pull(s, remote, positionals, io);
    const st = remote.stats();
    const ms = performance.now() - t0;
    const ok = st.errors === 0;
    if (flags.json) io.out(JSON.stringify({ type: sub, ok, remote: remote.description, ms: Math.round(ms), ...result.json, ...st, warnings }));
    else for (const line of result.lines(st, ms)) io.out(line);
    return ok ? 0 : 1;
  } finally {
    remote?.close();
    await s.close();
  }
}

interface Outcome {
  json: Record<string, unknown>;
  lines(st: TransferStats, ms: number): string[];
}

async function push(s: Session, remote: RemoteCacheClient, tasks: string[], all: boolean, io: CommandIO): Promise<Outcome> {
  const index = await s.index();
  const store = new ContentStore(s.config.cacheDir);
  const entries: [string, ActionEntry][] = [];
  const notRun: string[] = [];
  if (all) entries.push(...(await index.entries<ActionEntry>('action')));
  else {
    const graph = TaskGraph.select(taskList(s), tasks);
    const { target } = await resolveTarget(s.config.target, s.registry, { targetOptions: s.config.targets, env: io.env });
    for (const name of graph.order) {
      const state = await index.get<TaskStateRecord>('state', Executor.stateKey(s.config.stateDir, target.name, name));
      const entry = state && (await index.get<ActionEntry>('action', state.key));
      if (entry) entries.push([state.key, entry]);
      // with no names given, tasks never run in this workspace are simply not there
      else if (tasks.length) notRun.push(name);
    }
  }
  const present = entries.filter(([, e]) => e.manifest.entries.every((x) => x.type !== 'file' || store.has(x.sha256!)));
  const incomplete = entries.length - present.length;
  await Promise.all(present.map(([key, e]) => remote.push(key, e, store)));
  return {
    json: { entries: present.length, notRun, incomplete },
    lines: (st, ms) => [
      `pushed ${st.entriesUp} of ${present.length} results to ${remote.description}: ${st.blobsUp} blobs uploaded (${formatBytes(st.bytesUp)}), ${st.blobsSkipped} already there, in ${formatMs(ms)}`,
      ...(notRun.length ? [`no local result for ${notRun.join(', ')} (run them first)`] : []),
      ...(incomplete ? [`${incomplete} results skipped: their blobs are missing from the local cache (rocmflow cache verify)`] : []),
    ],
  };
}

async function pull(s: Session, remote: RemoteCacheClient, tasks: string[], io: CommandIO): Promise<Outcome> {
  const index = await s.index();
  const store = new ContentStore(s.config.cacheDir);
  const graph = TaskGraph.select(taskList(s), tasks);
  const { target } = await resolveTarget(s.config.target, s.registry, { targetOptions: s.config.targets, env: io.env });
  const base = { config: s.config, registry: s.registry, graph, target, index, remote: null, force: new Set<string>(), verbose: false, signal: io.signal, env: io.env };
  const pulled: string[] = [];
  const tried = new Set<string>();
  let plan = await planRun(base);
  // a dependent's key is known only once its dependencies' results are:
  // pull what can be keyed, then plan again, until nothing new arrives
  for (;;) {
    const wanted = plan.filter((p) => p.state === 'run' && p.key && !p.reason.startsWith('uncacheable') && !tried.has(p.key));
    if (!wanted.length) break;
    for (const p of wanted) tried.add(p.key!);
    const got = await Promise.all(wanted.map((p) => remote.pull(p.key!, store)));
    let any = false;
    for (const [i, entry] of got.entries()) {
      if (!entry) continue;
      await index.set('action', wanted[i]!.key!, entry);
      await index.set('stats', `used:${entry.key}`, Date.now());
      pulled.push(wanted[i]!.task);
      any = true;
    }
    if (!any) break;
    plan = await planRun(base);
  }
  if (io.signal.aborted) throw new RocmflowError('E_INTERRUPTED', 'cache pull: interrupted');
  const stillRun = plan.filter((p) => p.state === 'run').map((p) => p.task);
  const ready = plan.filter((p) => p.state !== 'run').length;
  return {
    json: { pulled, stillRun, ready },
    lines: (st, ms) => [
      `pulled ${pulled.length} results from ${remote.description}: ${st.blobsDown} blobs (${formatBytes(st.bytesDown)}) in ${formatMs(ms)}${pulled.length ? ` (${pulled.join(', ')})` : ''}`,
      `${ready} of ${plan.length} tasks are now fresh or cached locally${stillRun.length ? `; would still run: ${stillRun.join(', ')}` : ''}`,
    ],
  };
}

function taskList(s: Session): { name: string; deps: string[] }[] {
  return [...s.registry.tasks.values()].map((t) => ({ name: t.def.name, deps: t.def.deps ?? [] }));
}
