/**
 * fetch-rocm: get the GPU runtime (ROCm) the target needs, from TheRock's
 * tarballs, any tarball URL, an existing install (hashed in place, not
 * copied), or Debian packages. The source is `tasks.fetch-rocm.source`, else
 * the target's `runtime`. Outputs `rocm/` (or `rocm.json` for a directory)
 * and `fetch.json`, which records URL, size, sha256 and the ROCm version.
 *
 * With an `apt` source and a base root other than the host's, ROCm is not
 * unpacked here: base-root installed the packages into the root (Debian's
 * layout), and this task checks they are there and records their versions.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineTask, RocmflowError, s, type RuntimeSource, type TaskContext } from '../src/plugin/core.js';
import type { BaseRootRecord } from '../src/baseroot/types.js';
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

/** An apt source installs into the base root when that root is not the host's. */
function inRoot(ctx: TaskContext<FetchRocmOptions>): boolean {
  const base = (ctx.config.tasks['base-root'] as { source?: unknown } | undefined)?.source ?? 'host';
  return sourceOf(ctx).kind === 'apt' && base !== 'host';
}

export default defineTask<FetchRocmOptions>({
  name: 'fetch-rocm',
  description: 'Fetch the GPU runtime (TheRock tarball, URL, directory or apt packages) for the target',
  deps: ['base-root'],
  options: s.object({ source: s.optional(runtimeSourceSchema) }),
  async inputs(ctx) {
    // installed into the base root: its record (a dependency) carries the versions
    if (inRoot(ctx)) return { params: { source: sourceOf(ctx) as never, inRoot: true } };
    return runtimeInputs(sourceOf(ctx), {
      cacheDir: ctx.config.cacheDir,
      warn: (m) => ctx.log.warn(m),
    });
  },
  outputs: (ctx) => (inRoot(ctx) ? ['fetch.json'] : runtimeOutputs(sourceOf(ctx))),
  async run(ctx) {
    const source = sourceOf(ctx);
    if (source.kind === 'apt' && inRoot(ctx)) {
      const rootJson = join(ctx.deps['base-root']!.outDir, 'root.json');
      const root = JSON.parse(await readFile(rootJson, 'utf8')) as BaseRootRecord;
      const names = source.packages.map((p) => p.split('=')[0]!);
      const found = names.map((n) => root.packages.find((p) => p.name === n || p.name === n.replace(/:.*$/, '')));
      const missing = names.filter((_, i) => !found[i]);
      if (missing.length)
        throw new RocmflowError('E_APT_PACKAGE', `fetch-rocm: ${missing.join(', ')} not installed in the base root (${rootJson}): a ${root.kind} root gets the apt packages only when base-root makes it with debootstrap; install them into it`);
      const hip = root.packages.find((p) => /^libamdhip64-\d+$/.test(p.name));
      const record = {
        kind: 'apt', inRoot: true, files: 0,
        version: hip ? hip.version.replace(/^\d+:/, '').replace(/[-+~].*$/, '') : undefined,
        packages: found.map((p) => ({ name: p!.name, version: p!.version })),
        note: 'installed into the base root with its own apt-get (Debian layout under /usr); no /opt/rocm layer',
      };
      await writeFile(join(ctx.outDir, 'fetch.json'), JSON.stringify(record, null, 2) + '\n');
      return { summary: [`ROCm ${record.version ?? ''} from apt, in the base root: ${record.packages.map((p) => `${p.name}=${p.version}`).join(' ')}`] };
    }
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
