import type { Command } from '../command.js';
import { COMMON_FLAGS, parseArgs } from '../args.js';
import { openSession } from '../session.js';
import { TaskGraph } from '../../graph/task-graph.js';
import { resolveTarget } from '../../plugin/select-target.js';
import { planRun } from '../../engine/plan.js';
import { usageError } from '../../errors.js';
import { openRemote } from '../../cache/remote/open.js';

export const explainCommand: Command = {
  name: 'explain',
  summary: 'say why a task would rerun: the fingerprint fields that changed',
  usage: 'rocmflow explain TASK [--target T] [--no-device] [--json] [--config F] [--cache-dir D]',
  async run(argv, io) {
    const { flags, positionals } = parseArgs(argv, { ...COMMON_FLAGS, 'no-device': { type: 'boolean' as const } }, 'explain');
    if (positionals.length !== 1) throw usageError('E_USAGE', 'explain: name one task, e.g. rocmflow explain build-llama');
    const task = positionals[0]!;
    const s = await openSession(io, { config: flags.config as string | undefined, cacheDir: flags['cache-dir'] as string | undefined, target: flags.target as string | undefined, noDevice: !!flags['no-device'] });
    try {
      const tasks = [...s.registry.tasks.values()].map((t) => ({ name: t.def.name, deps: t.def.deps ?? [] }));
      const graph = TaskGraph.select(tasks, [task]);
      const { target } = await resolveTarget(s.config.target, s.registry, { targetOptions: s.config.targets, env: io.env });
      // the remote is asked too (entries only), so the answer is what a run would do
      const remote = await openRemote(s.config, { env: io.env, warn: (m) => io.err(`warning: ${m}`) });
      const plan = await planRun({
        config: s.config, registry: s.registry, graph, target, index: await s.index(), remote, force: new Set(), verbose: false, signal: io.signal, env: io.env,
      });
      const p = plan.find((x) => x.task === task)!;
      if (flags.json) {
        io.out(JSON.stringify({ task, target: target.name, state: p.state, reason: p.reason, changes: p.changes, upstream: plan.filter((x) => x.task !== task && x.state === 'run').map((x) => x.task) }));
        return 0;
      }
      const verdict = p.state === 'fresh' ? 'is up to date' : p.state === 'cached' ? 'would be restored' : 'would run';
      io.out(`${task} (target ${target.name}) ${verdict}: ${p.reason}`);
      for (const c of p.changes) io.out(`  ${c.field}: ${c.before} → ${c.after}`);
      const upstream = plan.filter((x) => x.task !== task && x.state === 'run');
      for (const u of upstream) {
        io.out(`  upstream ${u.task} would run: ${u.reason}`);
        for (const c of u.changes) io.out(`    ${c.field}: ${c.before} → ${c.after}`);
      }
      return 0;
    } finally {
      await s.close();
    }
  },
};
