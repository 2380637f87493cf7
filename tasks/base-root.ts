/**
 * base-root: the directory builds, traces and images use as `/`. The host's
 * own `/` by default; a debootstrapped Debian/Ubuntu root with the packages
 * the build needs; an existing directory; or an OCI image unpacked with
 * umoci (see src/baseroot). Its record, `root.json` (os-release and every
 * installed package with its version), is part of the key of every task
 * that runs inside the root.
 *
 * When ROCm comes from apt (`tasks.fetch-rocm.source.kind: "apt"`) and the
 * root is not the host's, the ROCm packages are installed into the root
 * with its own apt-get, in Debian's layout (/usr/lib/x86_64-linux-gnu).
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { defineTask, s, type RuntimeSource, type TaskContext, type TaskInputs } from '../src/plugin/index.js';
import { baseRootSourceSchema, type BaseRootSource } from '../src/baseroot/types.js';
import { debootstrapPlan, makeBaseRoot } from '../src/baseroot/make.js';

/** `tasks.base-root` options. */
export interface BaseRootOptions {
  /** @default "host" */
  source?: BaseRootSource;
}

/** The ROCm packages an `apt` runtime source installs into a non-host root. */
export function rocmPackagesForRoot(ctx: Pick<TaskContext, 'config' | 'target'>, source: BaseRootSource): string[] {
  if (source === 'host' || !('debootstrap' in source)) return [];
  const rt = ((ctx.config.tasks['fetch-rocm'] as { source?: RuntimeSource } | undefined)?.source ?? ctx.target.definition.runtime) as RuntimeSource;
  return rt.kind === 'apt' ? rt.packages : [];
}

export default defineTask<BaseRootOptions>({
  name: 'base-root',
  description: 'The root builds, traces and images use as / (host, debootstrap, directory or OCI image); records its OS and packages',
  options: s.object({ source: s.optional(baseRootSourceSchema) }),
  inputs(ctx): TaskInputs {
    const source = ctx.options.source ?? 'host';
    if (source === 'host') return { params: { source: 'host' }, files: ['/etc/os-release'] };
    if ('dir' in source) {
      const dir = resolve(ctx.projectRoot, source.dir);
      // the package database and os-release stand for the whole tree (hashing gigabytes per run is not affordable)
      return { params: { source: source as never }, files: [join(dir, 'var/lib/dpkg/status'), join(dir, 'etc/os-release')].filter((f) => existsSync(f)) };
    }
    if ('debootstrap' in source)
      return {
        params: { source: { debootstrap: debootstrapPlan(source.debootstrap, rocmPackagesForRoot(ctx, source)) } as never },
        uncacheable: 'the root is kept beside the cache (roots/) and checked on every run; root.json carries the key',
      };
    return { params: { source: source as never }, uncacheable: 'the unpacked image is kept beside the cache (roots/) and checked on every run' };
  },
  outputs: ['root.json'],
  async run(ctx) {
    // loaded when the task runs, not for the check that finds it fresh
    const { rootPath } = await import('../src/baseroot/inspect.js');
    const { humanBytes } = await import('../src/image/report.js');
    const source = ctx.options.source ?? 'host';
    const record = await makeBaseRoot(source, {
      cacheDir: ctx.cacheDir,
      projectRoot: ctx.projectRoot,
      extraPackages: rocmPackagesForRoot(ctx, source),
      signal: ctx.signal,
      onLine: (l) => ctx.log.debug(l),
      info: (m) => ctx.log.info(m),
    });
    await writeFile(join(ctx.outDir, 'root.json'), JSON.stringify(record, null, 2) + '\n');
    const where = rootPath(record, ctx.cacheDir, ctx.projectRoot);
    const size = record.size ? `, ${record.size.files.toLocaleString('en-US')} files, ${humanBytes(record.size.bytes)}` : '';
    return { summary: [`base root: ${record.os.prettyName ?? 'unknown OS'} (${record.kind}) at ${where}${record.packages.length ? `, ${record.packages.length} packages` : ''}${size}`] };
  },
});
