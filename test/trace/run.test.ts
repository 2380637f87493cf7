/** runTraced and straceArgs against the real strace binary. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isRocmflowError } from '../../src/errors.js';
import { parseTrace, parseTraceFiles } from '../../src/trace/parse.js';
import { runTraced, straceArgs } from '../../src/trace/run.js';
import { tempDir } from './helpers.js';

describe('straceArgs', () => {
  it('builds -f or -ff (with timestamps) and ends with the command after --', () => {
    const one = straceArgs({ logPath: '/x/log' }, ['ls', '-l']);
    expect(one.slice(-4)).toEqual(['/x/log', '--', 'ls', '-l']);
    expect(one).toEqual(expect.arrayContaining(['-f', '-qq', '-y', '-o']));
    expect(one).not.toContain('-ff');
    const ff = straceArgs({ logPath: '/x/log', perPid: true, extraArgs: ['--seccomp-bpf'] }, ['ls']);
    expect(ff).toEqual(expect.arrayContaining(['-ff', '-ttt', '--seccomp-bpf']));
    expect(ff).not.toContain('-f');
  });
});

describe('runTraced', () => {
  it('passes on the exit code and the killing signal', async () => {
    const dir = tempDir();
    const exit7 = await runTraced({ command: ['/bin/sh', '-c', 'exit 7'], logPath: join(dir, 'a.log'), capture: true });
    expect(exit7).toMatchObject({ exitCode: 7, signal: null, logFiles: [join(dir, 'a.log')] });
    const killed = await runTraced({ command: ['/bin/sh', '-c', 'kill -TERM $$'], logPath: join(dir, 'b.log'), capture: true });
    expect(killed.signal).toBe('SIGTERM');
    expect(killed.exitCode).toBeNull();
  });

  it('uses the given env and cwd', async () => {
    const dir = tempDir();
    const run = await runTraced({
      command: ['/bin/sh', '-c', 'echo "$ROCMFLOW_PROBE $(pwd)"'], cwd: dir, env: { ROCMFLOW_PROBE: 'probe', PATH: '/usr/bin:/bin' },
      logPath: join(dir, 'env.log'), capture: true,
    });
    expect(run.stdout).toBe(`probe ${dir}\n`);
  });

  it('says how to install strace when it is missing', async () => {
    const dir = tempDir();
    const err = await runTraced({ command: ['true'], logPath: join(dir, 'x.log'), strace: join(dir, 'no-strace') }).catch((e: unknown) => e);
    expect(isRocmflowError(err) && err.code).toBe('E_MISSING_TOOL');
    expect((err as Error).message).toBe('strace not found: apt install strace (Debian/Ubuntu), dnf install strace (Fedora)');
  });

  it('reports a command strace could not start', async () => {
    const dir = tempDir();
    const err = await runTraced({ command: [join(dir, 'no-such-program')], logPath: join(dir, 'x.log'), capture: true }).catch((e: unknown) => e);
    expect(isRocmflowError(err) && err.code).toBe('E_TRACE_RUN');
    expect((err as Error).message).toContain('no-such-program');
  });

  it('an abort kills strace and every traced process', async () => {
    const dir = tempDir();
    const ac = new AbortController();
    const logPath = join(dir, 'abort.log');
    const started = Date.now();
    const pending = runTraced({ command: ['/bin/sh', '-c', 'sleep 30 & sleep 30; wait'], logPath, signal: ac.signal, capture: true });
    // wait until both sleeps run: the log, read while strace writes it, shows 3 pids and the sleep executable
    for (;;) {
      const p = existsSync(logPath) ? parseTrace(readFileSync(logPath, 'utf8')) : undefined;
      if (p && p.pids.length === 3 && p.access.executables.some((e) => e.endsWith('/sleep'))) break;
      if (Date.now() - started > 20_000) throw new Error('sleeps did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 200));
    ac.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
    expect(Date.now() - started).toBeLessThan(25_000);
    const pids = (await parseTraceFiles([logPath])).pids;
    expect(pids.length).toBe(3);
    await new Promise((r) => setTimeout(r, 200));
    // dead: gone, or a zombie waiting for an init that may never reap it
    const state = (pid: number) => (existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0] : 'gone');
    for (const pid of pids) expect(['gone', 'Z']).toContain(state(pid));
  });
});
