/**
 * gpu-coverage: before anything is built, does the GPU runtime in use carry
 * code for the target? Checks every kernel directory a shipped library reads
 * (rocBLAS/hipBLASLt `library/`, `.kpack/`) and every library's fat binary,
 * in the fetched runtime and in the base root's library directories (where
 * a distribution's ROCm lives). A miss is a warning naming the library and
 * the arches it has (llama.cpp may never call that library for the user's
 * models), or an error with `strict`. Outputs `coverage.json`.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineTask, s } from '../src/plugin/index.js';
import { coverageFacts, coverageRoots, gpuArch, judgeCoverage } from '../src/pipeline/coverage.js';

/** `tasks.gpu-coverage` options. */
export interface GpuCoverageOptions {
  /** A library or kernel directory without code for the target fails the run (here and in trim-runtime's check of the trimmed root). @default false */
  strict?: boolean;
}

export default defineTask<GpuCoverageOptions>({
  name: 'gpu-coverage',
  description: 'Check that every GPU library and kernel directory of the runtime carries code for the target arch',
  // the base root: a distribution's ROCm (Debian's, in /usr/lib/x86_64-linux-gnu) lives there, not in fetch-rocm's tree
  deps: ['fetch-rocm', 'base-root'],
  options: s.object({ strict: s.optional(s.boolean()) }),
  inputs(ctx) {
    // both trees are dependencies' results: base-root's record carries what the root holds (packages and versions)
    return { params: { arch: gpuArch(ctx.target), strict: ctx.options.strict ?? false } };
  },
  outputs: ['coverage.json'],
  async run(ctx) {
    // loaded when the task runs, not for the check that finds it fresh
    const { baseRootFromDeps, runtimeRootFromDeps } = await import('../src/pipeline/runtime.js');
    const { scanCoverage } = await import('../src/fatbin/scan-coverage.js');
    const arch = gpuArch(ctx.target);
    const out = join(ctx.outDir, 'coverage.json');
    if (!arch) {
      const why = ctx.target.definition.family === 'cpu' ? 'the CPU target has no GPU code to check' : `the arch of ${ctx.target.name} is unknown (set targets.${ctx.target.name}.computeCapability)`;
      await writeFile(out, JSON.stringify({ target: null, coverage: [] }, null, 2) + '\n');
      // the CPU has nothing to say; a GPU target whose arch is unknown says so
      return { summary: ctx.target.definition.family === 'cpu' ? [] : [`coverage: not checked: ${why}`], facts: { target: null, coverage: [] } };
    }
    const base = await baseRootFromDeps(ctx.deps, { cacheDir: ctx.cacheDir, projectRoot: ctx.projectRoot });
    const roots = coverageRoots(await runtimeRootFromDeps(ctx.deps), base.path);
    const findings = await scanCoverage(roots, arch, { signal: ctx.signal });
    const coverage = coverageFacts(findings);
    await writeFile(out, JSON.stringify({ target: arch, roots: roots.map((r) => ({ as: r.as, only: r.only ?? null })), coverage }, null, 2) + '\n');
    const lines = judgeCoverage(findings, arch, { strict: ctx.options.strict ?? false, where: 'before the build', task: 'gpu-coverage', warn: (m) => ctx.log.warn(m) });
    return { summary: lines, facts: { target: arch, coverage } };
  },
});
