/**
 * The one place that orders, detects and selects targets: `run`, `explain`,
 * `cache push|pull`, `exec`, `targets`, `doctor` and `rocm list` all go
 * through it, over the same registry (built-ins and the config's plugins).
 *
 * Order: AMD (ROCm) before NVIDIA before CPU; within a family, by name.
 * `--target auto` detects every GPU target and takes the found one first in
 * family order, then the lowest device index (the GPU the system lists
 * first), then by name; with none found, `cpu`.
 */
import { RocmflowError, usageError } from '../errors.js';
import { didYouMean } from '../util/schema.js';
import type { Registry } from './load.js';
import type { Detection, DetectContext, ResolvedTarget, TargetDefinition } from './types.js';

const RANK: Record<TargetDefinition['family'], number> = { rocm: 0, cuda: 1, cpu: 2 };

/** Per-target options from the config (`targets.<name>`). */
export type TargetOptionsMap = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

/** A target with what its detection found. */
export interface DetectedTarget {
  target: TargetDefinition<any>;
  detection: Detection;
}

/** The registry's targets in listing order. */
export function orderedTargets(registry: Registry): TargetDefinition<any>[] {
  return [...registry.targets.values()].map((t) => t.def).sort((a, b) => RANK[a.family] - RANK[b.family] || a.name.localeCompare(b.name));
}

/** A target by name, or a usage error listing the nearest names. */
export function targetByName(registry: Registry, name: string): TargetDefinition<any> {
  const t = registry.targets.get(name);
  if (t) return t.def;
  const names = orderedTargets(registry).map((x) => x.name);
  throw usageError('E_UNKNOWN_TARGET', `unknown target "${name}"${didYouMean(name, names)}; known targets: ${names.join(', ')}, auto`);
}

/** Run every target's detect(); a target whose detection throws is reported as not found, with the reason. */
export async function detectTargets(
  targets: readonly TargetDefinition<any>[],
  ctx: Omit<DetectContext, 'options'> & { options?: TargetOptionsMap },
): Promise<DetectedTarget[]> {
  return Promise.all(
    targets.map(async (target) => {
      try {
        return { target, detection: await target.detect({ root: ctx.root, env: ctx.env, options: ctx.options?.[target.name] ?? {} }) };
      } catch (e) {
        return { target, detection: { found: false, description: `detection failed: ${(e as Error).message}` } };
      }
    }),
  );
}

/** What `--target auto` picks among detected targets (see the module comment), or undefined when nothing is found. */
export function chooseAutoTarget(detected: readonly DetectedTarget[]): DetectedTarget | undefined {
  const found = detected.filter((d) => d.detection.found);
  const gpus = found.filter((d) => d.target.family !== 'cpu');
  const pool = gpus.length ? gpus : found;
  const index = (d: DetectedTarget) => d.detection.deviceIndex ?? Number.MAX_SAFE_INTEGER;
  return [...pool].sort(
    (a, b) => RANK[a.target.family] - RANK[b.target.family] || index(a) - index(b) || a.target.name.localeCompare(b.target.name),
  )[0];
}

/** Select the run's target: a named one (not detected yet), or `auto`. */
export async function resolveTarget(
  name: string,
  registry: Registry,
  opts: { targetOptions: TargetOptionsMap; env: NodeJS.ProcessEnv; root?: string },
): Promise<{ target: ResolvedTarget; reason: string }> {
  if (name !== 'auto') {
    const definition = targetByName(registry, name);
    return { target: { name, definition, detection: null, options: opts.targetOptions[name] ?? {} }, reason: 'selected' };
  }
  const all = orderedTargets(registry);
  const detected = await detectTargets(all, { root: opts.root ?? '/', env: opts.env, options: opts.targetOptions });
  const failed = detected.find((d) => d.target.family !== 'cpu' && d.detection.description.startsWith('detection failed:'));
  if (failed) throw new RocmflowError('E_DETECT', `target ${failed.target.name}: ${failed.detection.description}`);
  const chosen = chooseAutoTarget(detected);
  if (!chosen) throw new RocmflowError('E_NO_TARGET', 'auto: no GPU target detected and no cpu target is registered', { exitCode: 2 });
  const { target: definition, detection } = chosen;
  const reason = definition.family === 'cpu' ? 'auto: no GPU detected' : `auto: ${detection.description}`;
  return { target: { name: definition.name, definition, detection, options: opts.targetOptions[definition.name] ?? {} }, reason };
}
