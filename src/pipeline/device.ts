/**
 * The device check of the pipeline: a GPU target without its GPU is a clear
 * error, before anything is fetched or built, naming what to use instead.
 */
import { RocmflowError } from '../errors.js';
import type { Detection, ResolvedTarget } from '../plugin/types.js';

/**
 * Detect the target's device; a GPU target without its GPU is a clear error
 * naming what to use instead, unless `noDevice` asks to go on without it.
 */
export async function requireDevice(target: ResolvedTarget, opts: { noDevice?: boolean } = {}): Promise<Detection> {
  const def = target.definition;
  const detection = target.detection ?? (await def.detect({ root: '/', env: process.env, options: target.options }));
  if (def.family !== 'cpu' && !detection.found && !opts.noDevice) {
    const what = def.arch ? `${def.arch} GPU` : `${def.family.toUpperCase()} GPU`;
    throw new RocmflowError('E_NO_DEVICE', `no ${what} found for target ${target.name} (${detection.description}): use --target cpu, or --target auto; or --no-device to build, trace (CPU fallback), trim and package for ${target.name} without it`);
  }
  return detection;
}
