/**
 * The dependency graph of the selected tasks: selection with dependencies,
 * cycle detection (printed as a path), topological order, dependents.
 */
import { usageError } from '../errors.js';
import { didYouMean } from '../util/schema.js';

export interface GraphTask {
  name: string;
  deps: readonly string[];
}

export class TaskGraph {
  /** Selected task names in a topological order (dependencies first). */
  readonly order: readonly string[];
  private readonly byName: Map<string, GraphTask>;

  private constructor(byName: Map<string, GraphTask>, order: string[]) {
    this.byName = byName;
    this.order = order;
  }

  /** Select `requested` (and everything they depend on) from `all`. Empty `requested` selects every task. */
  static select(all: readonly GraphTask[], requested: readonly string[]): TaskGraph {
    const index = new Map(all.map((t) => [t.name, t]));
    const names = [...index.keys()];
    for (const r of requested) if (!index.has(r)) throw unknownTask(r, names);

    const order: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const stack: string[] = [];
    const visit = (name: string) => {
      const st = state.get(name);
      if (st === 'done') return;
      if (st === 'visiting') {
        const cycle = [...stack.slice(stack.indexOf(name)), name];
        throw usageError('E_CYCLE', `dependency cycle: ${cycle.join(' → ')}`);
      }
      state.set(name, 'visiting');
      stack.push(name);
      for (const d of index.get(name)!.deps) {
        if (!index.has(d)) throw usageError('E_UNKNOWN_DEP', `task ${name}: depends on unknown task "${d}"${didYouMean(d, names)}`);
        visit(d);
      }
      stack.pop();
      state.set(name, 'done');
      order.push(name);
    };
    // only what this run needs must be sound: a broken task elsewhere does not block it
    for (const r of requested.length ? requested : names) visit(r);
    const selected = new Set<string>();
    const add = (n: string) => {
      if (selected.has(n)) return;
      selected.add(n);
      index.get(n)!.deps.forEach(add);
    };
    (requested.length ? requested : names).forEach(add);
    const byName = new Map([...index].filter(([n]) => selected.has(n)));
    return new TaskGraph(byName, order.filter((n) => selected.has(n)));
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  deps(name: string): readonly string[] {
    return this.byName.get(name)?.deps ?? [];
  }

  /** Every selected task that depends on `name`, directly or not. */
  dependents(name: string): Set<string> {
    const out = new Set<string>();
    let grew = true;
    while (grew) {
      grew = false;
      for (const n of this.order) {
        if (out.has(n)) continue;
        if (this.deps(n).some((d) => d === name || out.has(d))) {
          out.add(n);
          grew = true;
        }
      }
    }
    return out;
  }

  /** [dependency, dependent] pairs, as p-graph takes them. */
  edges(): [string, string][] {
    return this.order.flatMap((n) => this.deps(n).map((d) => [d, n] as [string, string]));
  }
}

export function unknownTask(name: string, names: readonly string[]) {
  return usageError('E_UNKNOWN_TASK', `unknown task "${name}"${didYouMean(name, names)}; known tasks: ${[...names].sort().join(', ')}`);
}
