/**
 * The CPU pipeline's real results for tests that take them further (run its
 * images in podman and docker, push them, render its report): one real
 * `rocmflow run trim-runtime --target cpu` with the project's config, in a
 * workspace under WORK whose cache is WORK's shared rocmflow cache. The
 * end-to-end test (test/pipeline/trim-runtime.test.ts) uses the same cache,
 * so whichever runs first builds llama.cpp and the other restores the
 * results (the cache's per-key lock makes the second wait for the first):
 * one llama.cpp build per test run, not one per file.
 *
 * Every caller runs the CLI: a workspace already up to date is all fresh
 * and returns in about a second; after a code change, what changed reruns.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, rocmflowAsync, type CliResult } from './cli.js';
import { WORK } from './llama.js';

/** The rocmflow cache the pipeline tests share (downloads and task results). */
export const SHARED_CACHE = join(WORK, 'rocmflow-cache');

export interface CpuPipeline {
  /** The workspace (project root) of the run. */
  ws: string;
  /** A task's output directory. */
  out(task: string): string;
  run: CliResult;
}

/** Run (or bring up to date) the shared CPU pipeline and return where its outputs are. */
export async function cpuPipeline(): Promise<CpuPipeline> {
  const ws = join(WORK, 'cpu-pipeline');
  mkdirSync(ws, { recursive: true });
  writeFileSync(join(ws, 'rocmflow.config.ts'), `import project from ${JSON.stringify(join(REPO, 'rocmflow.config.ts'))};
export default { ...project, stateDir: 'state' };
`);
  const run = await rocmflowAsync(ws, ['run', 'trim-runtime', '--target', 'cpu', '--json'], { ROCMFLOW_CACHE_DIR: SHARED_CACHE }).done;
  if (run.code !== 0) {
    const failed = run.events.filter((e) => e.type === 'task' && e.state === 'failed').map((e) => `${e.task}: ${e.error}`);
    throw new Error(`the shared CPU pipeline run failed (${failed.join('; ') || `exit ${run.code}`}): ${run.stderr.slice(-2000)}`);
  }
  return { ws, out: (task) => join(ws, 'state', 'out', 'cpu', task), run };
}
