/**
 * Interrupts, crashes, concurrency, corrupted blobs and full disks: each
 * leaves the cache consistent and the next run correct.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rocmflow, rocmflowAsync, states, workspace } from '../helpers/cli.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitFor(cond: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('reliability', () => {
  it('SIGINT stops the task and its child processes, records nothing; the next run reruns it', async () => {
    const ws = workspace({
      tasks: `export default defineTask({ name: 'long', outputs: ['done'], async run(ctx) {
        await ctx.$\`sh -c 'sleep 300 & echo $! > \${ctx.projectRoot}/child.pid; wait'; touch done\`;
      } });`,
    });
    const { child, done } = rocmflowAsync(ws, ['run', 'long', '--json']);
    await waitFor(() => existsSync(join(ws, 'child.pid')) && readFileSync(join(ws, 'child.pid'), 'utf8').trim() !== '');
    const grandchild = Number(readFileSync(join(ws, 'child.pid'), 'utf8'));
    expect(alive(grandchild)).toBe(true);
    child.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(1);
    expect(states(r)).toEqual({ long: 'failed' });
    await waitFor(() => !alive(grandchild), 10_000);
    expect(existsSync(join(ws, '.rocmflow/out/cpu/long/done'))).toBe(false);
    // nothing recorded: the next run runs it again (and this time lets it finish)
    writeFileSync(join(ws, 'tasks.ts'), readFileSync(join(ws, 'tasks.ts'), 'utf8').replace('sleep 300', 'sleep 0'));
    const again = rocmflow(ws, ['run', 'long', '--json']);
    expect(states(again)).toEqual({ long: 'ran' });
  });

  it('kill -9 during output capture leaves the cache consistent; the next run reruns and succeeds', async () => {
    const ws = workspace({
      tasks: `export default defineTask({ name: 'big', outputs: ['blobs'], async run(ctx) {
        await ctx.$\`mkdir blobs && for i in $(seq 1 40); do head -c 8000000 /dev/urandom > blobs/f$i; done\`;
      } });`,
    });
    const { child, done } = rocmflowAsync(ws, ['run', 'big', '--json']);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    await waitFor(() => out.includes('"caching outputs"'), 120_000);
    child.kill('SIGKILL');
    await done;
    const again = rocmflow(ws, ['run', 'big', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(states(again)).toEqual({ big: 'ran' });
    const verify = rocmflow(ws, ['cache', 'verify']);
    expect(verify.code, verify.stdout).toBe(0);
    expect(verify.stdout).toMatch(/0 corrupt/);
    expect(states(rocmflow(ws, ['run', 'big', '--json']))).toEqual({ big: 'fresh' });
  });

  it('two processes running the same pipeline on one cache at once both succeed', async () => {
    const tasks = `export default { tasks: [
      defineTask({ name: 'one', outputs: ['o'], async run(ctx) { await ctx.$\`sleep 1; echo one > o\`; } }),
      defineTask({ name: 'two', deps: ['one'], outputs: ['t'], async run(ctx) { await ctx.$\`sleep 1; cat \${ctx.deps.one.outDir}/o > t; echo two >> t\`; } }),
    ]};`;
    const cache = mkdtempSync(join(tmpdir(), 'rocmflow-shared-cache-'));
    const a = workspace({ tasks });
    const b = workspace({ tasks });
    const runs = [a, a, b].map((ws) => rocmflowAsync(ws, ['run', 'two', '--json', '--cache-dir', cache]));
    const results = await Promise.all(runs.map((r) => r.done));
    for (const r of results) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.events.at(-1)).toMatchObject({ type: 'summary', ok: true });
    }
    for (const ws of [a, b]) expect(readFileSync(join(ws, '.rocmflow/out/cpu/two/t'), 'utf8')).toBe('one\ntwo\n');
    // each key ran at most once across the three processes
    const ran = results.flatMap((r) => r.events.filter((e) => e.type === 'task' && e.state === 'ran').map((e) => e.task));
    expect(ran.filter((t) => t === 'one')).toHaveLength(1);
    expect(ran.filter((t) => t === 'two')).toHaveLength(1);
    const verify = rocmflow(a, ['cache', 'verify', '--cache-dir', cache]);
    expect(verify.stdout).toMatch(/0 corrupt/);
  });

  it('a blob modified on disk is caught on restore and by cache verify; the task reruns', () => {
    const ws = workspace({ tasks: `export default defineTask({ name: 'w', outputs: ['w.txt'], async run(ctx) { await ctx.$\`echo original > w.txt\`; } });` });
    expect(rocmflow(ws, ['run', 'w']).code).toBe(0);
    const out = join(ws, '.rocmflow/out/cpu/w/w.txt');
    // the output is a hard link to its blob: writing through it modifies the blob
    chmodSync(out, 0o644);
    writeFileSync(out, 'changed!\n');
    rmSync(out);
    const r = rocmflow(ws, ['run', 'w', '--json']);
    expect(states(r)).toEqual({ w: 'ran' });
    expect(r.events.some((e) => e.type === 'warning' && /was modified on disk/.test(e.message))).toBe(true);
    expect(readFileSync(out, 'utf8')).toBe('original\n');

    // a blob corrupted behind our back with its mtime restored: only a re-hash sees it
    const cas = join(ws, 'cache/cas');
    const blob = readdirSync(cas).flatMap((d) => readdirSync(join(cas, d)).map((f) => join(cas, d, f))).find((p) => readFileSync(p, 'utf8') === 'original\n')!;
    chmodSync(blob, 0o644);
    writeFileSync(blob, 'ORIGINAL\n');
    execFileSync('touch', ['-d', '2000-01-01T00:00:00Z', blob]);
    const v = rocmflow(ws, ['cache', 'verify']);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/1 corrupt/);
    rmSync(join(ws, '.rocmflow/out'), { recursive: true });
    expect(states(rocmflow(ws, ['run', 'w', '--json']))).toEqual({ w: 'ran' });
  });

  it.skipIf(process.getuid?.() !== 0)('a full disk during capture fails that task clearly and keeps earlier entries', () => {
    const mnt = mkdtempSync(join(tmpdir(), 'rocmflow-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
    try {
      const ws = workspace({
        config: `export default { target: 'cpu', plugins: ['./tasks.ts'], cacheDir: ${JSON.stringify(join(mnt, 'cache'))} };`,
        tasks: `export default { tasks: [
          defineTask({ name: 'small', outputs: ['s'], async run(ctx) { await ctx.$\`head -c 100000 /dev/urandom > s\`; } }),
          defineTask({ name: 'huge', deps: ['small'], outputs: ['h'], async run(ctx) { await ctx.$\`head -c 8000000 /dev/urandom > h\`; } }),
        ]};`,
      });
      const r = rocmflow(ws, ['run', 'huge', '--json']);
      expect(r.code).toBe(1);
      expect(states(r)).toEqual({ small: 'ran', huge: 'failed' });
      const err = r.events.find((e) => e.type === 'task' && e.task === 'huge').error;
      expect(err).toMatch(/disk full while writing .*cache/);
      rmSync(join(ws, '.rocmflow/out/cpu/small'), { recursive: true });
      expect(states(rocmflow(ws, ['run', 'small', '--json']))).toEqual({ small: 'cached' });
      expect(rocmflow(ws, ['cache', 'verify']).stdout).toMatch(/0 corrupt/);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('a long run', () => {
  it('leaves no abort listeners behind: twelve tasks in one run print no MaxListenersExceededWarning', () => {
    const names = Array.from({ length: 12 }, (_, i) => `t${i}`);
    const ws = workspace({
      tasks: `export default { tasks: [${names.map((n, i) => `
        defineTask({ name: '${n}', ${i ? `deps: ['t${i - 1}'], ` : ''}outputs: ['o'], async run(ctx) { await ctx.$\`echo ${n} > o\`; } }),`).join('')}
      ]};`,
    });
    const r = rocmflow(ws, ['run', 't11', '--json']);
    expect(r.code).toBe(0);
    expect(Object.values(states(r))).toEqual(names.map(() => 'ran'));
    expect(r.stderr).not.toMatch(/MaxListenersExceededWarning/);
  });
});
