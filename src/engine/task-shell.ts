/**
 * The zx `$` a task gets: bound to the run's AbortSignal and cwd, every
 * child in its own process group (so cancelling kills the whole tree),
 * and all command lines and output written to the task's log file.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync, type WriteStream } from 'node:fs';
import type { Shell } from 'zx';

export interface TaskShell {
  $: Shell;
  /** Kill every child process group still running (TERM, then KILL after `graceMs`). */
  killAll(graceMs?: number): Promise<void>;
  /** Stop listening to the run's signal (it outlives the task: every task of a run shares it). */
  dispose(): void;
}

/** pid → [ppid, start time] of every process, from /proc. */
function processTable(): Map<number, [number, string]> {
  const t = new Map<number, [number, string]>();
  let names: string[] = [];
  try {
    names = readdirSync('/proc');
  } catch {
    return t;
  }
  for (const n of names) {
    if (n.charCodeAt(0) < 48 || n.charCodeAt(0) > 57) continue;
    try {
      const stat = readFileSync(`/proc/${n}/stat`, 'latin1');
      // the command name may hold spaces and parentheses: fields start after the last ')'
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (f[0] === 'Z' || f[0] === 'X') continue; // exited, waiting to be reaped
      t.set(Number(n), [Number(f[1]), f[19]!]);
    } catch {}
  }
  return t;
}

/**
 * Every process a task started, however far down, and wherever it went: a
 * process is known from the moment it is seen below a known one, by pid and
 * start time (so a reused pid is never signalled), and stays known after its
 * parent dies and it is reparented, or after it leaves its process group.
 */
class ProcessTree {
  private readonly known = new Map<number, string>();

  /** Add the descendants of `roots` and of every process already known; returns the live ones. */
  refresh(roots: Iterable<number>): Map<number, string> {
    const table = processTable();
    const kids = new Map<number, number[]>();
    for (const [pid, [ppid]] of table) {
      const k = kids.get(ppid);
      if (k) k.push(pid);
      else kids.set(ppid, [pid]);
    }
    // forget the dead, and pids now used by another process
    for (const [pid, start] of this.known) if (table.get(pid)?.[1] !== start) this.known.delete(pid);
    const queue = [...roots, ...this.known.keys()];
    for (const r of roots) if (table.has(r)) this.known.set(r, table.get(r)![1]);
    while (queue.length) {
      for (const c of kids.get(queue.pop()!) ?? []) {
        if (this.known.has(c)) continue;
        this.known.set(c, table.get(c)![1]);
        queue.push(c);
      }
    }
    return this.known;
  }
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
  const tree = new ProcessTree();
  // each child leads its own process group (detached); its descendants may leave it (setsid)
  const groups = new Set<number>();
  const groupAlive = (g: number) => {
    try {
      process.kill(-g, 0);
      return true;
    } catch {
      return false;
    }
  };
  const killAll = async (graceMs = 3000) => {
    for (const c of children) if (c.pid) groups.add(c.pid);
    const roots = () => [...children].map((c) => c.pid!).filter(Boolean);
    const signalAll = (sig: NodeJS.Signals) => {
      // the tree is read before anything is signalled: once a parent dies, its children are reparented out of it
      const pids = [...tree.refresh(roots()).keys()];
      for (const g of groups)
        try {
          process.kill(-g, sig);
        } catch {}
      for (const pid of pids)
        try {
          process.kill(pid, sig);
        } catch {}
    };
    for (const g of [...groups]) if (!groupAlive(g)) groups.delete(g);
    if (!children.size && !groups.size && !tree.refresh([]).size) return;
    signalAll('SIGTERM');
    // a grace period for everything to exit, then SIGKILL for whatever ignored SIGTERM
    const deadline = Date.now() + graceMs;
    const left = () => [...groups].some(groupAlive) || tree.refresh(roots()).size > 0;
    while (Date.now() < deadline && left()) await new Promise((r) => setTimeout(r, 50));
    if (left()) signalAll('SIGKILL');
    groups.clear();
  };
  const onAbort = () => void killAll();
  opts.signal.addEventListener('abort', onAbort, { once: true });
  return { $, killAll, dispose: () => opts.signal.removeEventListener('abort', onAbort) };
}
