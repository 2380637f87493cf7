/**
 * The zx `$` a task gets: bound to the run's AbortSignal and cwd, every
 * child in its own process group (so cancelling kills the whole tree),
 * and all command lines and output written to the task's log file.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type { WriteStream } from 'node:fs';
import type { Shell } from 'zx';

export interface TaskShell {
  $: Shell;
  /** Kill every child process group still running (TERM, then KILL after `graceMs`). */
  killAll(graceMs?: number): Promise<void>;
  /** Stop listening to the run's signal (it outlives the task: every task of a run shares it). */
  dispose(): void;
}

/** zx takes about a quarter of a second to import: only runs that execute a task pay for it. */
export async function createTaskShell(opts: {
  cwd: string;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  log: WriteStream;
  onOutput?: (line: string) => void;
}): Promise<TaskShell> {
  const { $: zx$ } = await import('zx');
  const children = new Set<ChildProcess>();
  const trackedSpawn = ((cmd: string, args: readonly string[], o: SpawnOptions) => {
    const child = spawn(cmd, args, { ...o, detached: true });
    children.add(child);
    child.on('exit', () => children.delete(child));
    return child;
  }) as unknown as typeof spawn;
  const write = (s: string) => {
    if (!opts.log.writableEnded) opts.log.write(s);
  };
  const $ = zx$({
    cwd: opts.cwd,
    env: opts.env,
    signal: opts.signal,
    quiet: true,
    verbose: false,
    spawn: trackedSpawn,
    log: (entry: { kind: string; cmd?: string; data?: Buffer | string }) => {
      if (entry.kind === 'cmd') write(`$ ${entry.cmd}\n`);
      else if (entry.kind === 'stdout' || entry.kind === 'stderr') {
        const text = String(entry.data);
        write(text);
        if (opts.onOutput) for (const line of text.split('\n')) if (line) opts.onOutput(line);
      }
    },
  } as never) as unknown as Shell;
  const killAll = async (graceMs = 3000) => {
    const signalAll = (sig: NodeJS.Signals) => {
      for (const c of children) {
        try {
          if (c.pid) process.kill(-c.pid, sig);
        } catch {}
      }
    };
    if (!children.size) return;
    signalAll('SIGTERM');
    const deadline = Date.now() + graceMs;
    while (children.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    signalAll('SIGKILL');
  };
  const onAbort = () => void killAll();
  opts.signal.addEventListener('abort', onAbort, { once: true });
  return { $, killAll, dispose: () => opts.signal.removeEventListener('abort', onAbort) };
}
