/**
 * The built-in tasks' defaults live in their own schemas, so a project with
 * no config plans the whole pipeline; planning declares inputs without
 * fetching anything, so it answers with the network cut; a task reading a
 * dependency it did not declare gets an error naming both tasks.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import modelTask from '../../tasks/model.js';
import cpu from '../../plugins/cpu.js';
import type { ResolvedConfigView, TaskContext } from '../../src/plugin/types.js';
import { BIN, parseEvents, rocmflow, states, workspace } from '../helpers/cli.js';

const PIPELINE = ['detect-target', 'base-root', 'fetch-rocm', 'gpu-coverage', 'build-llama', 'model', 'numerics-reference', 'strace-trace', 'snapshot-rocm', 'trim-runtime'];
const isRoot = process.getuid?.() === 0;
const canUnshare = isRoot && spawnSync('unshare', ['-n', 'true']).status === 0;

describe('an empty project', () => {
  it.skipIf(!canUnshare)('plans the whole pipeline with the network cut (unshare -n) and downloads nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rocmflow-empty-'));
    const r = spawnSync('unshare', ['-n', process.execPath, BIN, 'run', 'trim-runtime', '--target', 'cpu', '--dry-run', '--json'], {
      cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const plan = parseEvents(r.stdout).filter((e) => e.type === 'dry-run');
    expect(plan.map((e) => e.task)).toEqual(PIPELINE);
    expect(plan.every((e) => e.state === 'run')).toBe(true);
    // the cache holds its index and nothing fetched
    expect(readdirSync(join(dir, 'cache'))).toEqual(['index.sqlite']);
  });

  it('explain model answers from the defaults (it failed: tasks.model.vocab: required)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rocmflow-empty-'));
    const r = rocmflow(dir, ['explain', 'model', '--target', 'cpu', '--json']);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ task: 'model', target: 'cpu', state: 'run', reason: 'no previous run' });
    expect(existsSync(join(dir, 'cache', 'sources'))).toBe(false);
  });
});

describe('the model task', () => {
  const ctx = (cacheDir: string): TaskContext<any> => {
    const config: ResolvedConfigView = { configFile: null, projectRoot: '/project', cacheDir, modelsDir: null, tasks: {}, targets: {} };
    return {
      task: 'model', target: { name: 'cpu', definition: cpu, detection: null, options: {} }, options: modelTask.options!.parse(undefined, 'tasks.model'),
      config, projectRoot: '/project', log: { info() {}, warn() {}, debug() {} },
    };
  };

  it('declares the default vocab by its npm version: no download, and the same key wherever the cache is', async () => {
    const a = mkdtempSync(join(tmpdir(), 'rocmflow-cache-'));
    const b = mkdtempSync(join(tmpdir(), 'rocmflow-cache-'));
    const inputs = await modelTask.inputs!(ctx(a));
    expect(inputs).toEqual({ params: expect.objectContaining({ kind: 'tiny', vocab: { npm: 'node-llama-cpp@3.22.1' }, seed: 1 }) });
    expect(await modelTask.inputs!(ctx(b))).toEqual(inputs);
    expect(readdirSync(a)).toEqual([]);
  });
});

describe('dependencies', () => {
  it('reading a dependency a task did not declare is an error naming both tasks', () => {
    const ws = workspace({
      tasks: `export default { tasks: [
        defineTask({ name: 'a', outputs: ['a.txt'], async run(ctx) { await ctx.$\`touch a.txt\`; } }),
        // c after a, so a has run by the time b (after c) fails, on any machine
        defineTask({ name: 'c', deps: ['a'], outputs: ['c.txt'], async run(ctx) { await ctx.$\`touch c.txt\`; } }),
        defineTask({ name: 'b', deps: ['c'], outputs: ['b.txt'], async run(ctx) { const dir = ctx.deps.a.outDir; await ctx.$\`cp \${dir}/a.txt b.txt\`; } }),
      ]};`,
    });
    const r = rocmflow(ws, ['run', 'a', 'b', '--json']);
    expect(r.code).toBe(1);
    expect(states(r)).toMatchObject({ a: 'ran', c: 'ran', b: 'failed' });
    const failed = r.events.find((e) => e.type === 'task' && e.task === 'b');
    expect(failed.error).toBe('task b reads the result of task a (ctx.deps["a"]), but does not depend on it: add "a" to its deps (declared: c)');
  });
});
