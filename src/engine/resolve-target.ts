/**
 * Picks the target: a named one, or `auto` (the first detected GPU target,
 * ROCm before CUDA, else cpu).
 */
import { unknownTarget } from '../graph/task-graph.js';
import type { Registry } from '../plugin/load.js';
import type { DetectContext, ResolvedTarget } from '../plugin/types.js';
import { autoOrder } from '../plugin/auto-order.js';
import { RocmflowError } from '../errors.js';

export async function resolveTarget(
  name: string,
  registry: Registry,
  opts: { targetOptions: Readonly<Record<string, Readonly<Record<string, unknown>>>>; env: NodeJS.ProcessEnv; root?: string },
): Promise<{ target: ResolvedTarget; reason: string }> {
  const ctxFor = (n: string): DetectContext => ({ root: opts.root ?? '/', env: opts.env, options: opts.targetOptions[n] ?? {} });
  if (name !== 'auto') {
    const t = registry.targets.get(name);
    if (!t) throw unknownTarget(name, [...registry.targets.keys()]);
    return { target: { name, definition: t.def, detection: null, options: opts.targetOptions[name] ?? {} }, reason: 'selected' };
  }
  const candidates = autoOrder([...registry.targets.values()], (t) => t.def).filter((t) => t.def.family !== 'cpu');
  for (const t of candidates) {
    let detection;
    try {
      detection = await t.def.detect(ctxFor(t.def.name));
    } catch (e) {
      throw new RocmflowError('E_DETECT', `target ${t.def.name}: detection failed: ${(e as Error).message}`);
    }
    if (detection.found)
      return {
        target: { name: t.def.name, definition: t.def, detection, options: opts.targetOptions[t.def.name] ?? {} },
        reason: `auto: ${detection.description}`,
      };
  }
  const cpu = registry.targets.get('cpu');
  if (!cpu) throw new RocmflowError('E_NO_TARGET', 'auto: no GPU target detected and no cpu target is registered', { exitCode: 2 });
  const detection = await cpu.def.detect(ctxFor('cpu'));
  return { target: { name: 'cpu', definition: cpu.def, detection, options: opts.targetOptions.cpu ?? {} }, reason: 'auto: no GPU detected' };
}
