/**
 * Ctrl-C stops everything a task started: a grandchild that ignores SIGTERM,
 * in the task's process group or in a session of its own, is killed after
 * the grace period.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rocmflowAsync, workspace } from '../helpers/cli.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    // a zombie has exited; only its parent has yet to reap it
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
};

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('interrupting a run', () => {
  it('kills grandchildren that ignore SIGTERM, in the group and in their own session', async () => {
    const ws = workspace({
      tasks: `export default defineTask({ name: 'stubborn', outputs: ['done'], async run(ctx) {
        await ctx.$\`sh -c '(trap "" TERM; exec sleep 300) & echo $! > \${ctx.projectRoot}/in-group.pid; setsid sh -c "trap \\"\\" TERM; exec sleep 301" & echo $! > \${ctx.projectRoot}/own-session.pid; wait'\`;
      } });`,
    });
    const { child, done } = rocmflowAsync(ws, ['run', 'stubborn', '--json']);
    const pidFiles = ['in-group.pid', 'own-session.pid'].map((f) => join(ws, f));
    await waitFor(() => pidFiles.every((f) => existsSync(f) && readFileSync(f, 'utf8').trim() !== ''), 60_000);
    const pids = pidFiles.map((f) => Number(readFileSync(f, 'utf8')));
    // setsid forks when it leads a group: wait for the sleeps to be exec'ed
    await new Promise((r) => setTimeout(r, 300));
    expect(pids.every(alive)).toBe(true);
    child.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(1);
    try {
      await waitFor(() => !pids.some(alive), 10_000).catch((e) => {
        throw new Error(`${e.message}: ${pids.map((p) => (alive(p) ? readFileSync(`/proc/${p}/stat`, 'latin1').slice(0, 60) : `${p} gone`)).join(' | ')}; ${r.stderr}`);
      });
    } finally {
      for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
    }
  }, 90_000);
});
