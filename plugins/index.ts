/**
 * The built-in targets, in auto-detection preference order: the engine's
 * plugin loader also finds these files; commands that only need targets
 * import them from here.
 */
import type { Detection, DetectContext, TargetDefinition } from '../src/plugin/types.js';
import { autoOrder } from '../src/plugin/auto-order.js';
import gfx1151 from './gfx1151.js';
import gfx1100 from './gfx1100.js';
import cuda from './cuda.js';
import cpu from './cpu.js';

/** gfx1151 first (the project's default), then other GPUs, CPU last. */
export function builtinTargets(): TargetDefinition[] {
  return [gfx1151, gfx1100, cuda, cpu];
}

/** A target with what its detection found. */
export interface DetectedTarget {
  target: TargetDefinition;
  detection: Detection;
}

/** Run every target's detect(); a target whose detection throws is reported as not found, with the reason. */
export async function detectTargets(targets: readonly TargetDefinition[], ctx: Omit<DetectContext, 'options'> & { options?: Readonly<Record<string, Readonly<Record<string, unknown>>>> }): Promise<DetectedTarget[]> {
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

/**
 * `--target auto`: the first detected target in auto order (AMD, NVIDIA,
 * then CPU; see src/plugin/auto-order.ts), the same rule `rocmflow run` uses.
 */
export function chooseAutoTarget(detected: readonly DetectedTarget[]): DetectedTarget | undefined {
  return autoOrder(detected, (d) => d.target).find((d) => d.detection.found);
}
