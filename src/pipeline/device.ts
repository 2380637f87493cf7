/**
 * The device check of the pipeline: a GPU target without its GPU is a clear
 * error, before anything is fetched or built, naming what to use instead.
 */
import { RocmflowError } from '../errors.js';
import type { Detection, ResolvedTarget } from '../plugin/types.js';

/** Detect the target's device; a GPU target without its GPU is a clear error naming what to use instead. */
export async function requireDevice(target: ResolvedTarget): Promise<Detection> {
  const def = target.definition;
  const detection = target.detection ?? (await def.detect({ root: '/', env: process.env, options: target.options }));
  if (def.family !== 'cpu' && !detection.found) {
    const what = def.arch ? `${def.arch} GPU` : `${def.family.toUpperCase()} GPU`;
    throw new RocmflowError('E_NO_DEVICE', `no ${what} found for target ${target.name} (${detection.description}): use --target cpu, or --target auto`);
  }
  return detection;
}
