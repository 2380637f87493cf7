import type { TaskGraph } from './task-graph.js';

/** `rocmflow graph` output as text, Graphviz dot, or Mermaid. */
export function renderGraph(graph: TaskGraph, format: 'text' | 'dot' | 'mermaid', describe: (n: string) => string = () => ''): string {
  const lines: string[] = [];
  if (format === 'dot') {
    lines.push('digraph rocmflow {', '  rankdir=LR;');
    for (const n of graph.order) lines.push(`  "${n}";`);
    for (const [a, b] of graph.edges()) lines.push(`  "${a}" -> "${b}";`);
    lines.push('}');
  } else if (format === 'mermaid') {
    const id = (n: string) => n.replace(/[^a-zA-Z0-9]/g, '_');
    lines.push('graph LR');
    for (const n of graph.order) lines.push(`  ${id(n)}["${n}"]`);
    for (const [a, b] of graph.edges()) lines.push(`  ${id(a)} --> ${id(b)}`);
  } else {
    for (const n of graph.order) {
      const deps = graph.deps(n);
      const d = describe(n);
      lines.push(`${n}${deps.length ? `  ← ${deps.join(', ')}` : ''}${d ? `\n    ${d}` : ''}`);
    }
  }
  return lines.join('\n');
}
