import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { $ } from 'zx';
import task, { locateRocmTree, snapshotRocmOptions } from '../../tasks/snapshot-rocm.js';
import { defineTarget, type RunContext, type RuntimeSource } from '../../src/plugin/index.js';
import { readManifest, restoreSnapshot } from '../../src/image/snapshot.js';
import { describeTree, makeTree, tempDir } from '../image/fixtures.js';

function context(d: string, fetchOut: string, opts: { level?: number; mtime?: number } = {}, runtime: RuntimeSource = { kind: 'none' }, fetchSource?: unknown) {
  const outDir = join(d, 'out');
  const workDir = join(d, 'work');
  mkdirSync(outDir, { recursive: true });
  mkdirSync(workDir, { recursive: true });
  const progress: [number, number | undefined][] = [];
  const definition = defineTarget({
    name: 'test', family: 'rocm', description: 'test target', runtime, devices: [], keep: [], drop: [], hostProvided: [],
    detect: async () => ({ found: false, description: 'test' }), cmakeFlags: () => [], env: () => ({}),
  });
  const ctx: RunContext<typeof opts> = {
    task: 'snapshot-rocm',
    target: { name: 'test', definition, detection: null, options: {} },
    options: opts,
    config: { configFile: null, projectRoot: d, cacheDir: join(d, 'cache'), modelsDir: null, tasks: fetchSource ? { 'fetch-rocm': { source: fetchSource } } : {}, targets: {} },
    projectRoot: d,
    outDir,
    workDir,
    deps: { 'fetch-rocm': { outDir: fetchOut, outputs: ['rocm', 'fetch.json'] } },
    $,
    signal: new AbortController().signal,
    logFile: join(d, 'log'),
    log: { info() {}, warn() {}, debug() {} },
    progress: { start: () => ({ update: (a, b) => progress.push([a, b]), done() {} }) },
    cacheDir: join(d, 'cache'),
    isStoredBlob: () => false,
    storedBlob: () => null,
  };
  return { ctx, progress, outDir };
}

describe('snapshot-rocm task', () => {
  it('snapshots the extracted tree (therock/url/apt sources) with the version from fetch.json', async () => {
    const d = tempDir();
    const fetchOut = join(d, 'fetch');
    makeTree(join(fetchOut, 'rocm'));
    writeFileSync(join(fetchOut, 'fetch.json'), JSON.stringify({ kind: 'therock', url: 'http://x/therock-dist-linux-gfx1151-7.13.0a20260430.tar.gz', version: { version: '7.13.0', buildId: 'a20260430' } }));
    const { ctx, progress, outDir } = context(d, fetchOut, { level: 6 });
    expect(task.name).toBe('snapshot-rocm');
    expect(task.deps).toEqual(['fetch-rocm']);
    expect(typeof task.outputs === 'function' ? task.outputs(ctx) : task.outputs).toEqual(['rocm.tar.zst', 'rocm.manifest.json']);
    const result = await task.run(ctx);
    expect(result?.summary?.[0]).toMatch(/^ROCm snapshot 7\.13\.0\+a20260430: \d+ files, .* → .* zstd$/);
    const m = await readManifest(join(outDir, 'rocm.manifest.json'));
    expect(m.version).toBe('7.13.0+a20260430');
    expect(progress.at(-1)).toEqual([m.totals.bytes, m.totals.bytes]);
    // the paths are the runtime images' (opt/rocm/...), so the archive is the full image's layer as is
    expect(m.files.slice(0, 2).map((f) => f.path)).toEqual(['opt', 'opt/rocm']);
    expect(m.files.every((f) => f.path === 'opt' || f.path === 'opt/rocm' || f.path.startsWith('opt/rocm/'))).toBe(true);
    await restoreSnapshot(join(outDir, 'rocm.tar.zst'), join(d, 'back'));
    expect(describeTree(join(d, 'back/opt/rocm'))).toBe(describeTree(join(fetchOut, 'rocm')));
  });

  it('reads a dir source in place through rocm.json, and declares that tree as an input', async () => {
    const d = tempDir();
    const install = makeTree(join(d, 'opt-rocm-7.1.1'));
    const fetchOut = join(d, 'fetch');
    mkdirSync(fetchOut);
    writeFileSync(join(fetchOut, 'fetch.json'), JSON.stringify({ kind: 'dir', version: '7.1.1' }));
    writeFileSync(join(fetchOut, 'rocm.json'), JSON.stringify({ path: install }));
    const { ctx, outDir } = context(d, fetchOut, {}, { kind: 'dir', path: install });
    expect(await task.inputs!(ctx)).toMatchObject({ files: [install], params: { level: null, mtime: null }, env: ['SOURCE_DATE_EPOCH'] });
    // the config's fetch-rocm source wins over the target's default
    expect((await task.inputs!(context(d, fetchOut, {}, { kind: 'none' }, { kind: 'dir', path: 'opt-rocm-7.1.1' }).ctx)).files).toEqual([install]);
    expect((await task.inputs!(context(d, fetchOut).ctx)).files).toBeUndefined();
    await task.run(ctx);
    const m = await readManifest(join(outDir, 'rocm.manifest.json'));
    expect(m.version).toBe('7.1.1');
    expect(m.files.some((f) => f.path === 'opt/rocm/lib/libamdhip64.so.7')).toBe(true);
    expect((await locateRocmTree(fetchOut)).dir).toBe(install);
  });

  it('writes an empty snapshot when the target has no GPU runtime', async () => {
    const d = tempDir();
    const fetchOut = join(d, 'fetch');
    mkdirSync(fetchOut);
    writeFileSync(join(fetchOut, 'fetch.json'), JSON.stringify({ kind: 'none' }));
    const { ctx, outDir } = context(d, fetchOut);
    const result = await task.run(ctx);
    expect(result?.summary?.[0]).toContain('no GPU runtime: empty tree');
    const m = await readManifest(join(outDir, 'rocm.manifest.json'));
    expect(m.files).toEqual([]);
    expect(m.version).toBeNull();
    expect(readFileSync(join(outDir, 'rocm.tar.zst')).length).toBe(m.layer.size);
  });

  it('names the file when fetch-rocm left no usable record, and validates its options by key path', async () => {
    const d = tempDir();
    const fetchOut = join(d, 'fetch');
    mkdirSync(fetchOut);
    await expect(task.run(context(d, fetchOut).ctx)).rejects.toMatchObject({ code: 'E_BAD_FETCH_RECORD', message: `${join(fetchOut, 'fetch.json')} not found: fetch-rocm did not record what it fetched` });
    writeFileSync(join(fetchOut, 'fetch.json'), JSON.stringify({ kind: 'dir' }));
    await expect(locateRocmTree(fetchOut)).rejects.toMatchObject({ message: `${join(fetchOut, 'rocm.json')} not found: fetch-rocm did not record what it fetched` });
    writeFileSync(join(fetchOut, 'fetch.json'), '[1]');
    await expect(locateRocmTree(fetchOut)).rejects.toMatchObject({ message: `${join(fetchOut, 'fetch.json')} is not a JSON object` });
    expect(() => snapshotRocmOptions.parse({ level: 30 }, 'tasks.snapshot-rocm')).toThrow('tasks.snapshot-rocm.level: expected a number <= 22');
    expect(() => snapshotRocmOptions.parse({ levle: 3 }, 'tasks.snapshot-rocm')).toThrow('tasks.snapshot-rocm.levle: unknown key (did you mean "level"?)');
    expect(snapshotRocmOptions.parse({ level: 19, mtime: 0 }, 'tasks.snapshot-rocm')).toEqual({ level: 19, mtime: 0 });
  });
});
