/**
 * detect-target: a dependency without dependencies of its own. It checks
 * that the target's device is here before anything is downloaded or built
 * (the engine runs it first and a failure cancels the rest); its output
 * (the detection) carries the device index the workload's environment pins.
 *
 * `noDevice` (`--no-device`, or `tasks.detect-target.noDevice` in the
 * config) lets a GPU target run without its GPU: the detection is recorded
 * as it is, the workload runs without any device node (HIP finds none and
 * ggml's CPU backend runs), and what only a device loads is added by the
 * target's keep rules; the report says so.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineTask, s } from '../src/plugin/core.js';
import { requireDevice } from '../src/pipeline/device.js';

/** `tasks.detect-target` options. */
export interface DetectTargetOptions {
  /** Run the pipeline without the target's GPU (CPU fallback; device-only files kept by rule). @default false */
  noDevice?: boolean;
}

export default defineTask<DetectTargetOptions>({
  name: 'detect-target',
  description: "Check that the target's device is present (before anything is fetched or built); record the detection",
  options: s.object({ noDevice: s.optional(s.boolean()) }),
  async inputs(ctx) {
    // detection runs while the key is computed: a missing GPU fails here, first
    const noDevice = ctx.options.noDevice === true;
    const d = await requireDevice(ctx.target, { noDevice });
    return { params: { target: ctx.target.name, detection: JSON.parse(JSON.stringify(d)), ...(noDevice ? { noDevice } : {}) } };
  },
  outputs: ['device.json'],
  async run(ctx) {
    const noDevice = ctx.options.noDevice === true && ctx.target.definition.family !== 'cpu';
    const d = await requireDevice(ctx.target, { noDevice });
    await writeFile(join(ctx.outDir, 'device.json'), JSON.stringify({ target: ctx.target.name, family: ctx.target.definition.family, detection: d, noDevice }, null, 2) + '\n');
    return { summary: [noDevice ? `${ctx.target.name}: --no-device: not run on a ${ctx.target.definition.arch ?? ctx.target.name} (${d.description}); CPU fallback, device-only files kept by rule` : `${ctx.target.name}: ${d.description}`] };
  },
});
