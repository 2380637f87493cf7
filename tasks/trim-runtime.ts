/**
 * trim-runtime: the full runtime + the traced access set + the target's
 * rules → a trimmed root (`rootfs/`), verified by running the traced
 * workload inside it (identical texts or the task fails, listing the paths
 * the trimmed run missed), then written as OCI images: the minimal runtime
 * and the full one it is measured against. Also the trim report and the
 * reproducibility record.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineTask, s } from '../src/plugin/core.js';
import { PACKAGE_ROOT } from '../src/plugin/load.js';
import { gpuArch, pruneSettings } from '../src/pipeline/coverage.js';

export function rocmflowVersion(): string {
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/** `tasks.gpu-coverage.strict`: a trimmed root without code for the target fails too. */
export const strictCoverage = (tasks: Readonly<Record<string, unknown>>): boolean => (tasks['gpu-coverage'] as { strict?: boolean } | undefined)?.strict ?? false;

/** `tasks.trim-runtime` options. */
export interface TrimRuntimeOptions {
  /** Strip symbol tables and debug sections from the trimmed root's ELF files (before verification). @default true */
  strip?: boolean;
}

export default defineTask<TrimRuntimeOptions>({
  name: 'trim-runtime',
  description: 'Trim the full runtime to what the trace needs, verify it with the same workload, write the minimal and full OCI images and the report',
  deps: ['strace-trace', 'base-root', 'build-llama', 'fetch-rocm', 'model', 'snapshot-rocm', 'numerics-reference'],
  options: s.object({ strip: s.optional(s.boolean()) }),
  inputs(ctx) {
    const def = ctx.target.definition;
    return {
      // the rules decide what is kept; the base root (base-root's record, a dependency) decides where the system files come from
      params: {
        strip: ctx.options.strip ?? true, keep: def.keep as never, drop: def.drop, hostProvided: def.hostProvided, devices: def.devices, version: rocmflowVersion(),
        // fat-binary pruning and the coverage check of the trimmed root
        arch: gpuArch(ctx.target), pruneFatBinaries: pruneSettings(ctx.target), strictCoverage: strictCoverage(ctx.config.tasks),
      },
      env: ['SOURCE_DATE_EPOCH'],
      tools: ['bwrap --version', 'zstd --version', 'strip --version'],
    };
  },
  outputs: ['rootfs', 'rootfs.manifest.json', 'images', 'report.md', 'report.json', 'report.html', 'reproducibility.json'],
  // the work itself is loaded only when the task runs: a fresh check needs none of it
  run: async (ctx) => (await import('./run/trim-runtime.js')).run(ctx),
});
