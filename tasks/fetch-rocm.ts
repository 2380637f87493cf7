/**
 * fetch-rocm: get the GPU runtime (ROCm) the target needs, from TheRock's
 * tarballs, any tarball URL, an existing install (hashed in place, not
 * copied), or Debian packages. The source is `tasks.fetch-rocm.source`, else
 * the target's `runtime`. Outputs `rocm/` (or `rocm.json` for a directory)
 * and `fetch.json`, which records URL, size, sha256 and the ROCm version.
 */
import { defineTask, s, type RuntimeSource, type TaskContext } from '../src/plugin/core.js';
import { fetchRuntime, runtimeInputs, runtimeOutputs } from '../src/fetch/fetch-runtime.js';
import { runtimeSourceSchema } from '../src/fetch/source-schema.js';

/** `tasks.fetch-rocm` in the config. */
export interface FetchRocmOptions {
  /** Where the runtime comes from; defaults to the target's `runtime`. */
  source?: RuntimeSource;
}

function sourceOf(ctx: TaskContext<FetchRocmOptions>): RuntimeSource {
  return ctx.options.source ?? ctx.target.definition.runtime;
}

export default defineTask<FetchRocmOptions>({
  name: 'fetch-rocm',
  description: 'Fetch the GPU runtime (TheRock tarball, URL, directory or apt packages) for the target',
  options: s.object({ source: s.optional(runtimeSourceSchema) }),
  async inputs(ctx) {
    return runtimeInputs(sourceOf(ctx), {
      cacheDir: ctx.config.cacheDir,
      warn: (m) => ctx.log.warn(m),
    });
  },
  outputs: (ctx) => runtimeOutputs(sourceOf(ctx)),
  async run(ctx) {
    const source = sourceOf(ctx);
    const r = await fetchRuntime(source, ctx.outDir, {
      cacheDir: ctx.cacheDir, signal: ctx.signal, progress: ctx.progress,
      warn: (m) => ctx.log.warn(m), info: (m) => ctx.log.info(m),
    });
    if (r.kind === 'none') return { summary: ['no GPU runtime for this target'] };
    const what = r.kind === 'apt' ? r.packages!.map((p) => `${p.name}=${p.version}`).join(' ') : r.url ?? r.path;
    const size = r.size !== undefined ? `, ${(r.size / 1e6).toFixed(1)} MB` : '';
    return { summary: [`ROCm ${r.version ?? '(unknown version)'}${r.buildId ? ` (${r.buildId})` : ''} from ${what}${size}, ${r.files} files`] };
  },
});
