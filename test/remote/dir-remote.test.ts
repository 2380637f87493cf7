/**
 * The shared-directory backend (an NFS mount in real life): concurrent
 * writers from separate processes, readers that verify, no partial files.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rocmflow, rocmflowAsync } from '../helpers/cli.js';
import { bodiesRun, counterFile, eventsOf, outcome, outputTree, pipelineWorkspace, runPipeline, sharedTasks } from './fixture.js';

const TASKS = ['gen', 'big', 'sum', 'same'];

/** Every file under `dir`, relative. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath ?? (d as unknown as { path: string }).path, d.name).slice(dir.length + 1));
}

describe('remote cache in a shared directory', () => {
  it('two processes push the same and different results at once; readers get them all, verified', async () => {
    const shared = mkdtempSync(join(tmpdir(), 'rocmflow-share-'));
    const counter = counterFile();
    // 24 MB outputs keep both uploads in flight together
    const tasks = sharedTasks({ counter, bigBytes: 24 << 20, sameBytes: 24 << 20 });
    const url = `file://${shared}`;
    // runs only read; the uploads below are the explicit concurrent pushes
    const a = pipelineWorkspace({ tasks, remote: { url, mode: 'read' }, input: 'one\ntwo\n' });
    const b = pipelineWorkspace({ tasks, remote: { url, mode: 'read' }, input: 'three\nfour\n' });
    expect(runPipeline(a).code).toBe(0);
    expect(runPipeline(b).code).toBe(0);
    expect(filesUnder(shared)).toEqual([]);

    // `same` has one key in both workspaces; gen/big/sum differ by input
    const env = { ROCMFLOW_REMOTE_CACHE_MODE: 'read-write' };
    const pa = rocmflowAsync(a, ['cache', 'push', '--all', '--json', '--cache-dir', join(a, 'local-cache')], env);
    const pb = rocmflowAsync(b, ['cache', 'push', '--all', '--json', '--cache-dir', join(b, 'local-cache')], env);
    const [ra, rb] = await Promise.all([pa.done, pb.done]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    expect(JSON.parse(ra.stdout.trim())).toMatchObject({ ok: true, entriesUp: 4 });
    expect(JSON.parse(rb.stdout.trim())).toMatchObject({ ok: true, entriesUp: 4 });

    const files = filesUnder(shared);
    // no temp file survived, and 7 distinct entries (same is shared)
    expect(files.filter((f) => f.includes('.tmp'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('ac/'))).toHaveLength(7);
    // every blob is exactly the content its name says
    for (const f of files.filter((x) => x.startsWith('cas/'))) {
      const digest = f.split('/').at(-1)!;
      expect(f).toBe(`cas/${digest.slice(0, 2)}/${digest}`);
      expect(createHash('sha256').update(readFileSync(join(shared, f))).digest('hex')).toBe(digest);
    }

    // two new machines, one per input: everything comes from the share
    const before = bodiesRun(counter).length;
    for (const [input, src] of [['one\ntwo\n', a], ['three\nfour\n', b]] as const) {
      const c = pipelineWorkspace({ tasks, remote: { url, mode: 'read' }, input });
      const rc = runPipeline(c);
      expect(rc.code, rc.stderr).toBe(0);
      expect(outcome(rc)).toEqual({ gen: 'cached/remote', big: 'cached/remote', sum: 'cached/remote', same: 'cached/remote' });
      for (const t of TASKS) expect(outputTree(c, t), t).toEqual(outputTree(src, t));
    }
    expect(bodiesRun(counter)).toHaveLength(before);
  });

  it('a reader rejects a corrupted blob in the share and reruns the task', () => {
    const shared = mkdtempSync(join(tmpdir(), 'rocmflow-share-'));
    const counter = counterFile();
    const tasks = sharedTasks({ counter });
    const a = pipelineWorkspace({ tasks, remote: { url: shared } });
    expect(runPipeline(a).code).toBe(0);
    const digest = outputTree(a, 'same')['same.bin']!.split(':')[2]!;
    const blob = join(shared, 'cas', digest.slice(0, 2), digest);
    writeFileSync(blob, Buffer.alloc(1024, 7));

    const b = pipelineWorkspace({ tasks, remote: { url: shared, mode: 'read' } });
    const rb = runPipeline(b);
    expect(rb.code).toBe(0);
    expect(outcome(rb).same).toBe('ran');
    expect(outcome(rb).gen).toBe('cached/remote');
    const warnings = eventsOf(rb, 'warning');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].message).toContain(digest);
  });

  it('a share that is not mounted is one warning and a local run', () => {
    const counter = counterFile();
    const missing = join(mkdtempSync(join(tmpdir(), 'rocmflow-share-')), 'not-mounted');
    const a = pipelineWorkspace({ tasks: sharedTasks({ counter }), remote: { url: `file://${missing}` } });
    const r = runPipeline(a);
    expect(r.code, r.stderr).toBe(0);
    expect(outcome(r)).toEqual({ gen: 'ran', big: 'ran', sum: 'ran', same: 'ran' });
    const warnings = eventsOf(r, 'warning');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].message).toContain(`shared cache directory ${missing}: ENOENT`);
  });
});

describe('a shared directory another writer tampered with', () => {
  it('a link in place of ac/ or cas/ is refused by name and nothing is written through it', () => {
    const counter = counterFile();
    const tasks = sharedTasks({ counter });
    for (const planted of ['ac', 'cas']) {
      const shared = mkdtempSync(join(tmpdir(), 'rocmflow-share-'));
      const victim = mkdtempSync(join(tmpdir(), 'rocmflow-victim-'));
      symlinkSync(victim, join(shared, planted));
      const ws = pipelineWorkspace({ tasks, remote: { url: `file://${shared}`, mode: 'read' }, input: 'one\n' });
      expect(runPipeline(ws).code).toBe(0);
      const r = rocmflow(ws, ['cache', 'push', '--all', '--json', '--cache-dir', join(ws, 'local-cache')], { ROCMFLOW_REMOTE_CACHE_MODE: 'read-write' });
      expect(r.stdout + r.stderr).toContain(`${join(shared, planted)}: not a directory (a link or a file); refusing to write through it`);
      expect(readdirSync(victim, { recursive: true })).toEqual([]);
    }
  });
});
