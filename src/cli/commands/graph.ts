import type { Command } from '../command.js';
import { COMMON_FLAGS, parseArgs } from '../args.js';
import { openSession } from '../session.js';
import { TaskGraph } from '../../graph/task-graph.js';
import { renderGraph } from '../../graph/render.js';
import { usageError } from '../../errors.js';

export const graphCommand: Command = {
  name: 'graph',
  summary: 'print the task graph (text, dot or mermaid)',
  usage: 'rocmflow graph [TASK...] [--format text|dot|mermaid] [--config F]',
  async run(argv, io) {
    const { flags, positionals } = parseArgs(argv, { ...COMMON_FLAGS, format: { type: 'string' } }, 'graph');
    const format = (flags.format as string | undefined) ?? 'text';
    if (!['text', 'dot', 'mermaid'].includes(format)) throw usageError('E_USAGE', `graph: --format must be text, dot or mermaid, not "${format}"`);
    const s = await openSession(io, { config: flags.config as string | undefined });
    const tasks = [...s.registry.tasks.values()].map((t) => ({ name: t.def.name, deps: t.def.deps ?? [] }));
    const graph = TaskGraph.select(tasks, positionals);
    io.out(renderGraph(graph, format as 'text', (n) => s.registry.tasks.get(n)?.def.description ?? ''));
    await s.close();
    return 0;
  },
};
