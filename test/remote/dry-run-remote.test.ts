/**
 * A dry run and `explain` decide as the executor does (one decision
 * function) and ask the remote: a second machine's dry run says "would
 * restore" for what its run then restores, and downloads nothing.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rocmflow } from '../helpers/cli.js';
import { bodiesRun, counterFile, outcome, pipelineWorkspace, runPipeline, sharedTasks } from './fixture.js';

const blobs = (cache: string) => {
  try {
    return readdirSync(join(cache, 'cas'), { recursive: true }).filter((f) => String(f).length > 60);
  } catch {
    return [];
  }
};

describe('planning with a remote', () => {
  it('a dry run on a second machine says what its run will restore, and fetches no blob', () => {
    const shared = mkdtempSync(join(tmpdir(), 'rocmflow-share-'));
    const counter = counterFile();
    const tasks = sharedTasks({ counter });
    const url = `file://${shared}`;
    const a = pipelineWorkspace({ tasks, remote: { url, mode: 'read-write' } });
    expect(runPipeline(a).code).toBe(0);

    const b = pipelineWorkspace({ tasks, remote: { url, mode: 'read' } });
    const cache = join(b, 'local-cache');
    const dry = rocmflow(b, ['run', 'sum', 'same', '--dry-run', '--json', '--cache-dir', cache]);
    expect(dry.stderr).toBe('');
    const plan = dry.events.filter((e) => e.type === 'dry-run');
    expect(Object.fromEntries(plan.map((e) => [e.task, e.state]))).toEqual({ gen: 'cached', big: 'cached', sum: 'cached', same: 'cached' });
    expect(plan[0].reason).toBe(`restore from ${shared}`);
    expect(blobs(cache)).toEqual([]);

    const ex = rocmflow(b, ['explain', 'sum', '--json', '--cache-dir', cache]);
    expect(JSON.parse(ex.stdout)).toMatchObject({ task: 'sum', state: 'cached', upstream: [] });

    const before = bodiesRun(counter).length;
    const run = runPipeline(b);
    expect(outcome(run)).toEqual({ gen: 'cached/remote', big: 'cached/remote', sum: 'cached/remote', same: 'cached/remote' });
    expect(bodiesRun(counter).length).toBe(before);
  });
});
