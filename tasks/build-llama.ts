/**
 * build-llama: llama.cpp built for the selected target against the GPU
 * runtime that fetch-rocm produced. Outputs `llama/bin/` (executables and
 * their shared libraries, RUNPATH $ORIGIN), `build-info.json` and `build.log`.
 *
 * With a base root other than the host's (base-root), the build runs inside
 * it with bubblewrap and the root's own toolchain (src/llama/root-build.ts);
 * ccache's directory is `$ROCMFLOW_CCACHE_DIR`, else `<cache>/ccache`.
 */
import { defineTask } from '../src/plugin/core.js';
import { buildLlama, buildLlamaInputs, buildLlamaOptionsSchema, type BuildLlamaOptions } from '../src/llama/build.js';
import { baseRootFromDeps, runtimeRootFromDeps } from '../src/pipeline/runtime.js';

export default defineTask<BuildLlamaOptions>({
  name: 'build-llama',
  description: 'Build llama.cpp (llama-server, llama-cli, llama-completion) for the target',
  // gpu-coverage first: a runtime without code for the target is reported before a long build
  deps: ['base-root', 'fetch-rocm', 'gpu-coverage'],
  options: buildLlamaOptionsSchema,
  inputs: (ctx) => {
    const base = (ctx.config.tasks['base-root'] as { source?: unknown } | undefined)?.source ?? 'host';
    return buildLlamaInputs(ctx.target, ctx.options, ctx.config.cacheDir, undefined, base !== 'host');
  },
  outputs: ['llama', 'build-info.json', 'build.log'],
  async run(ctx) {
    const runtimeRoot = ctx.target.definition.family === 'cpu' ? undefined : await runtimeRootFromDeps(ctx.deps);
    const base = await baseRootFromDeps(ctx.deps, { cacheDir: ctx.cacheDir, projectRoot: ctx.projectRoot });
    const rec = base.record;
    const info = await buildLlama({
      ...(base.path !== '/' ? { baseRoot: base.path } : {}),
      ...(rec ? { baseRootRecord: { kind: rec.kind, os: rec.os, packages: rec.packages.length } } : {}),
      ...(process.env.ROCMFLOW_CCACHE_DIR ? { ccacheDir: process.env.ROCMFLOW_CCACHE_DIR } : {}),
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
        `llama.cpp ${info.describe} (${info.commit ?? 'local tree'}) for ${info.target}: ${info.installed.executables.length} executables, ${info.installed.libraries.length} libraries in ${info.durationSeconds}s` +
          (base.path !== '/' ? ` in the base root (${rec?.os.prettyName ?? base.path})` : '') +
          (info.ccacheStats ? `; ccache ${info.ccacheStats.hits} hits, ${info.ccacheStats.misses} misses` : ''),
      ],
    };
  },
});
