/**
 * detect-target: a dependency without dependencies of its own. It checks
 * that the target's device is here before anything is downloaded or built
 * (the engine runs it first and a failure cancels the rest); its output
 * (the detection) carries the device index the workload's environment pins.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineTask } from '../src/plugin/core.js';
import { requireDevice } from '../src/pipeline/device.js';

export default defineTask({
  name: 'detect-target',
  description: "Check that the target's device is present (before anything is fetched or built); record the detection",
  async inputs(ctx) {
    // detection runs while the key is computed: a missing GPU fails here, first
    const d = await requireDevice(ctx.target);
    return { params: { target: ctx.target.name, detection: JSON.parse(JSON.stringify(d)) } };
  },
  outputs: ['device.json'],
  async run(ctx) {
    const d = await requireDevice(ctx.target);
    await writeFile(join(ctx.outDir, 'device.json'), JSON.stringify({ target: ctx.target.name, family: ctx.target.definition.family, detection: d }, null, 2) + '\n');
    return { summary: [`${ctx.target.name}: ${d.description}`] };
  },
});
