/**
 * The llama-server life cycle: start it from a full argv (usually a sandbox
 * argv that wraps strace that wraps llama-server), wait until `GET /health`
 * answers 200, and stop it cleanly.
 *
 * Stopping signals the leaf processes first (llama-server itself, under
 * bwrap and strace): the server then shuts down on its own, strace sees it
 * exit and finishes its log, and bwrap follows. Only after a grace period
 * does the whole process group get SIGTERM, then SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { constants as osConstants } from 'node:os';
import { RocmflowError } from '../errors.js';

export interface LlamaServerOptions {
  /** The whole argv to spawn, e.g. `['bwrap', ..., '/opt/llama/bin/llama-server', '--port', '8080', ...]`. */
  argv: string[];
  /** Port the server listens on (127.0.0.1). */
  port: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** How long loading may take before giving up. @default 120000 */
  healthTimeoutMs?: number;
  /** Environment of the spawned process (the sandbox usually sets the workload's own). @default process.env */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** A name for messages. @default "llama-server" */
  name?: string;
}

/** How the server process ended. */
export interface ServerExit {
  /** Exit status of the spawned process, or 128 + signal number. */
  exitCode: number;
  signal: NodeJS.Signals | null;
  /** True when it ended within the grace period after the leaf SIGTERM (no group kill needed). */
  clean: boolean;
}

/** A free TCP port on 127.0.0.1 (bound and released: good enough for one test run). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A running llama-server. */
export class LlamaServer {
  readonly baseUrl: string;
  /** Milliseconds from spawn until /health answered 200 (model load included). */
  loadMs = 0;
  private readonly stderrLines: string[] = [];
  private readonly exited: Promise<ServerExit>;
  private ended: ServerExit | null = null;

  private constructor(private readonly child: ChildProcess, private readonly opts: LlamaServerOptions) {
    this.baseUrl = `http://${opts.host ?? '127.0.0.1'}:${opts.port}`;
    let partial = '';
    const keep = (chunk: Buffer) => {
      const text = partial + chunk.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      this.stderrLines.push(...lines);
      // the tail is what explains a failure; the rest is the task log's business
      if (this.stderrLines.length > 400) this.stderrLines.splice(0, this.stderrLines.length - 200);
    };
    child.stderr!.on('data', keep);
    child.stdout!.on('data', keep);
    this.exited = new Promise((resolve) => {
      child.on('close', (code, sig) => {
        if (partial) this.stderrLines.push(partial);
        this.ended = { exitCode: code ?? 128 + (sig ? ((osConstants.signals as Record<string, number>)[sig] ?? 0) : 0), signal: sig, clean: false };
        resolve(this.ended);
      });
    });
  }

  /** Spawn the server and wait for /health = 200; a server that dies or stays unready is a RocmflowError with its last output. */
  static async start(opts: LlamaServerOptions): Promise<LlamaServer> {
    const [exe, ...args] = opts.argv;
    if (!exe) throw new RocmflowError('E_SERVER', 'llama-server: empty command');
    opts.signal?.throwIfAborted();
    const child = spawn(exe, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const server = new LlamaServer(child, opts);
    const spawnError = new Promise<never>((_, reject) =>
      child.on('error', (e) => reject(new RocmflowError('E_SERVER', `cannot start ${opts.name ?? 'llama-server'} (${exe}): ${e.message}`))),
    );
    spawnError.catch(() => {});
    const t0 = performance.now();
    try {
      await Promise.race([server.waitHealthy(opts.healthTimeoutMs ?? 120_000), spawnError]);
    } catch (e) {
      await server.stop(2000);
      throw e;
    }
    server.loadMs = Math.round(performance.now() - t0);
    return server;
  }

  /** The last `n` lines the server printed. */
  tail(n = 12): string[] {
    return this.stderrLines.slice(-n);
  }

  /** The process id of the spawned argv (the process group leader). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  private async waitHealthy(timeoutMs: number): Promise<void> {
    const name = this.opts.name ?? 'llama-server';
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
      this.opts.signal?.throwIfAborted();
      if (this.ended) {
        throw new RocmflowError('E_SERVER', `${name} exited with ${this.ended.exitCode} before it was ready on ${this.baseUrl}`, {
          details: this.tail(),
        });
      }
      try {
        const res = await fetch(`${this.baseUrl}/health`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        if (res.status === 200) return;
        last = `HTTP ${res.status}`;
      } catch (e) {
        last = (e as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new RocmflowError('E_SERVER', `${name} was not ready on ${this.baseUrl}/health after ${Math.round(timeoutMs / 1000)} s (last: ${last})`, {
      details: this.tail(),
    });
  }

  /**
   * Stop the server: SIGTERM to the leaf processes (the server itself), wait
   * up to `graceMs`, then SIGTERM and finally SIGKILL to the process group.
   */
  async stop(graceMs = 10_000): Promise<ServerExit> {
    if (this.ended) return this.ended;
    const pid = this.child.pid;
    if (!pid) return this.exited;
    const leaves = leafDescendants(pid);
    for (const p of leaves.length ? leaves : [pid]) signalPid(p, 'SIGTERM');
    const quiet = await within(this.exited, graceMs);
    if (quiet) return { ...quiet, clean: true };
    signalGroup(pid, 'SIGTERM');
    if (await within(this.exited, 2000)) return this.exited;
    signalGroup(pid, 'SIGKILL');
    return this.exited;
  }
}

function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(null), ms);
    p.then((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });
}

function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {}
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {}
}

/** Descendants of `root` that have no children themselves, from /proc. */
export function leafDescendants(root: number): number[] {
  const parent = new Map<number, number>();
  let names: string[] = [];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    try {
      // "pid (comm) state ppid ...": comm may hold spaces and parens, so split after the last ')'
      const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(n), ppid);
    } catch {}
  }
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parent) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      if (children.has(c)) walk(c);
      else out.push(c);
    }
  };
  walk(root);
  return out;
}
