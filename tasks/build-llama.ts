/**
 * build-llama: llama.cpp built for the selected target against the GPU
 * runtime that fetch-rocm produced. Outputs `llama/bin/` (executables and
 * their shared libraries, RUNPATH $ORIGIN), `build-info.json` and `build.log`.
 */
import { defineTask } from '../src/plugin/core.js';
import { buildLlama, buildLlamaInputs, buildLlamaOptionsSchema, type BuildLlamaOptions } from '../src/llama/build.js';
import { runtimeRootFromDeps } from '../src/pipeline/runtime.js';

export default defineTask<BuildLlamaOptions>({
  name: 'build-llama',
  description: 'Build llama.cpp (llama-server, llama-cli, llama-completion) for the target',
  deps: ['fetch-rocm'],
  options: buildLlamaOptionsSchema,
  inputs: (ctx) => buildLlamaInputs(ctx.target, ctx.options, ctx.config.cacheDir),
  outputs: ['llama', 'build-info.json', 'build.log'],
  async run(ctx) {
    const runtimeRoot = ctx.target.definition.family === 'cpu' ? undefined : await runtimeRootFromDeps(ctx.deps);
    const info = await buildLlama({
      target: ctx.target,
      options: ctx.options,
      runtimeRoot,
      outDir: ctx.outDir,
      workDir: ctx.workDir,
      cacheDir: ctx.cacheDir,
      signal: ctx.signal,
      log: ctx.log,
      progress: ctx.progress,
    });
    return {
      summary: [
        `llama.cpp ${info.describe} (${info.commit ?? 'local tree'}) for ${info.target}: ${info.installed.executables.length} executables, ${info.installed.libraries.length} libraries in ${info.durationSeconds}s`,
      ],
    };
  },
});
