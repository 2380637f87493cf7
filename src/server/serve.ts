/**
 * `rocmflow server`: a long-lived process that answers `rocmflow run` when
 * the run has nothing to do. Half of a no-op's time is Node loading
 * rocmflow's modules and SQLite's (docs/DESIGN.md, "Start-up"); the server
 * has them loaded, so a client (bin/server-client.js) pays Node's start,
 * one connection and the check itself.
 *
 * It answers only no-ops, and runs them with the executor's `onlyFresh`:
 * the first task that would hash changed inputs, restore or run stops the
 * request before anything is written or printed, and the client runs the
 * command itself as it would have without a server. Work (tasks, their
 * processes, their signals and terminals) never runs in the server.
 *
 * Each request is checked from what is on disk then, as a fresh process
 * would: the request's directory and environment are the client's, the
 * config and plugins are loaded again (through the bundler, whose cache is
 * checked against every file that went into a bundle), the code hashes and
 * closures this process computed are forgotten, and the index is opened
 * and closed. When rocmflow's own sources change, the server declines and
 * exits. Requests run one at a time.
 *
 * The socket lives in a directory of the user's alone (0700, checked by
 * server and client alike), so only that user can ask or answer.
 */
import { chmodSync, existsSync, lstatSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RocmflowError } from '../errors.js';
import { RUNNING_ROOT, SOURCE_ROOT } from '../util/source-root.js';
import { privateDir, forgetPrivateDirs } from '../util/private-dir.js';
import { bundleEveryImport } from '../util/typescript-loader.js';
import { forgetClosures } from '../util/module-closure.js';
import { forgetCodeHashes } from '../engine/fingerprint-task.js';
import { NotANoOp } from '../engine/executor.js';
import { CacheIndex } from '../cache/cache-index.js';
import type { CommandIO } from '../cli/command.js';

/** The client's module (bin/server-client.js): socket path, protocol, what may be served. */
interface ClientModule {
  PROTOCOL: number;
  servable(argv: readonly string[]): boolean;
  socketPath(packageRoot: string): string;
  trustedSocket(sock: string): boolean;
  request(sock: string, message: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown> | null>;
}

/** The package's directory (holds bin/): the checkout, or the installed package above dist/. */
export function packageRoot(): string {
  return existsSync(join(SOURCE_ROOT, 'bin', 'rocmflow.js')) ? SOURCE_ROOT : resolve(SOURCE_ROOT, '..');
}

export async function clientModule(): Promise<ClientModule> {
  return (await import(pathToFileURL(join(packageRoot(), 'bin', 'server-client.js')).href)) as ClientModule;
}

/** A request larger than this is not a command line and an environment. */
const MAX_REQUEST = 4 << 20;
/** A reply larger than this is not a no-op's output: declined. */
const MAX_OUTPUT = 32 << 20;

interface RunRequest {
  v: number;
  type: 'run';
  root: string;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  stdoutTTY: boolean;
  columns: number;
}

function isRunRequest(x: unknown): x is RunRequest {
  const r = x as RunRequest;
  return (
    typeof r === 'object' && r !== null && r.type === 'run' && typeof r.root === 'string' && Array.isArray(r.argv) && r.argv.every((a) => typeof a === 'string') &&
    typeof r.cwd === 'string' && r.cwd.startsWith('/') && typeof r.env === 'object' && r.env !== null && Object.values(r.env).every((v) => typeof v === 'string') &&
    typeof r.stdoutTTY === 'boolean' && Number.isInteger(r.columns)
  );
}

export interface ServerOptions {
  /** Exit after this long without a request. */
  idleMs: number;
  /** Exit after this many requests (each loads the config and plugins anew, and modules are never unloaded). */
  maxRequests?: number;
  log?: (line: string) => void;
}

export interface ServerStats {
  pid: number;
  startedAt: string;
  requests: number;
  served: number;
  declined: number;
  lastDeclined?: string;
}

/** Is the code this process runs still the code on disk? */
async function codeCheck(): Promise<() => boolean> {
  const root = packageRoot();
  if (existsSync(join(root, 'src', 'cli', 'main.ts'))) {
    // a checkout: the compiled mirror this process runs must still be the current one
    const { currentRoot } = (await import(pathToFileURL(join(root, 'bin', 'build-cache.js')).href)) as { currentRoot(): string | null };
    return () => currentRoot() === RUNNING_ROOT;
  }
  // an installed package: its files change only when it is installed again
  const stamp = () => {
    const st = statSync(join(root, 'package.json'), { throwIfNoEntry: false });
    return st ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : '-';
  };
  const first = stamp();
  return () => stamp() === first;
}

export async function serve(opts: ServerOptions): Promise<void> {
  const log = opts.log ?? (() => {});
  const client = await clientModule();
  const root = packageRoot();
  const sock = client.socketPath(root);
  if (!privateDir(dirname(sock))) throw new RocmflowError('E_SERVER', `server: ${dirname(sock)} is not a directory of this user's alone; not listening there`);
  if (existsSync(sock)) {
    if (client.trustedSocket(sock) && (await client.request(sock, { type: 'status' }, 5000))) throw new RocmflowError('E_SERVER', `server: one is running already (${sock})`);
    // what is left of one that did not stop cleanly (or not a socket at all: the directory is ours alone)
    rmSync(sock, { force: true });
  }
  const current = await codeCheck();
  bundleEveryImport();
  CacheIndex.reuseParsedStates();
  const stats: ServerStats = { pid: process.pid, startedAt: new Date().toISOString(), requests: 0, served: 0, declined: 0 };
  const { runCommand } = await import('../cli/commands/run.js');

  let server: Server;
  let idle: NodeJS.Timeout | undefined;
  let queue: Promise<void> = Promise.resolve();
  let stopping = false;
  const stopped = new Promise<void>((r) => {
    const stop = (why: string) => {
      if (stopping) return;
      stopping = true;
      log(`stopping: ${why}`);
      clearTimeout(idle);
      server.close(() => r());
      rmSync(sock, { force: true });
    };
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => stop(`idle for ${Math.round(opts.idleMs / 60_000)} min`), opts.idleMs);
      idle.unref?.();
    };
    const onSignal = () => stop('signal');
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);

    const reply = (conn: Socket, body: Record<string, unknown>) => {
      conn.on('error', () => {});
      conn.end(JSON.stringify({ v: client.PROTOCOL, ...body }));
    };

    const decline = (why: string): Record<string, unknown> => {
      stats.declined++;
      stats.lastDeclined = why;
      log(`declined: ${why}`);
      return { served: false, why };
    };

    async function answer(req: RunRequest): Promise<Record<string, unknown>> {
      stats.requests++;
      if (req.root !== root) return decline('a client of another rocmflow');
      if (!client.servable(req.argv)) return decline('not a plain run');
      if (!current()) {
        setImmediate(() => stop('rocmflow changed on disk'));
        return decline('rocmflow changed on disk');
      }
      forgetCodeHashes();
      forgetClosures();
      forgetPrivateDirs();
      const savedEnv = process.env;
      const savedCwd = process.cwd();
      try {
        process.chdir(req.cwd);
      } catch {
        return decline(`cannot enter ${req.cwd}`);
      }
      process.env = { ...req.env };
      const out: string[] = [];
      const err: string[] = [];
      let size = 0;
      const add = (buf: string[], s: string) => {
        size += s.length;
        buf.push(s);
      };
      const color = req.stdoutTTY && !('NO_COLOR' in req.env) && req.env.TERM !== 'dumb';
      const io: CommandIO = {
        out: (line) => add(out, line + '\n'),
        err: (line) => add(err, line + '\n'),
        cwd: req.cwd,
        env: process.env,
        color,
        signal: new AbortController().signal,
        onlyFresh: true,
        stdout: { isTTY: req.stdoutTTY, columns: req.columns, write: (s: string | Uint8Array) => (add(out, String(s)), true) } as never,
      };
      try {
        const code = await runCommand.run(req.argv.slice(1), io);
        if (code !== 0) return decline(`exit code ${code}`);
        if (size > MAX_OUTPUT) return decline('output too large');
        stats.served++;
        return { served: true, code, out: out.join(''), err: err.join('') };
      } catch (e) {
        return decline(e instanceof NotANoOp ? e.message : `error: ${(e as Error)?.message ?? e}`);
      } finally {
        process.env = savedEnv;
        try {
          process.chdir(savedCwd);
        } catch {}
      }
    }

    // the client half-closes after its request and waits for the reply: keep our side open until then
    server = createServer({ allowHalfOpen: true }, (conn) => {
      const chunks: Buffer[] = [];
      let size = 0;
      conn.on('error', () => {});
      conn.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_REQUEST) conn.destroy();
        else chunks.push(d);
      });
      conn.on('end', () => {
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return reply(conn, { served: false, why: 'not JSON' });
        }
        if (msg?.v !== client.PROTOCOL) return reply(conn, { served: false, why: `protocol ${String(msg?.v)}, not ${client.PROTOCOL}` });
        if (msg.type === 'status') return reply(conn, { ...stats });
        if (msg.type === 'stop') {
          reply(conn, { stopping: true });
          return stop('asked to');
        }
        if (!isRunRequest(msg)) return reply(conn, decline('not a run request'));
        arm();
        queue = queue.then(async () => {
          const body = stopping ? { served: false, why: 'stopping' } : await answer(msg as unknown as RunRequest);
          reply(conn, body);
          arm();
          if (opts.maxRequests && stats.requests >= opts.maxRequests) stop(`${stats.requests} requests served`);
        });
      });
    });
    server.on('error', (e) => {
      log(`error: ${e.message}`);
      stop('socket error');
    });
    server.listen(sock, () => {
      chmodSync(sock, 0o600);
      log(`listening on ${sock} (pid ${process.pid})`);
      arm();
    });
  });
  await stopped;
  await queue;
}

/** What a running server says of itself, or null when none answers. */
export async function serverStatus(): Promise<ServerStats | null> {
  const client = await clientModule();
  const sock = client.socketPath(packageRoot());
  if (!client.trustedSocket(sock)) return null;
  return (await client.request(sock, { type: 'status' }, 5000)) as ServerStats | null;
}

/** Ask the running server to stop; true when one did. */
export async function stopServer(): Promise<boolean> {
  const client = await clientModule();
  const sock = client.socketPath(packageRoot());
  if (!client.trustedSocket(sock)) return false;
  const r = await client.request(sock, { type: 'stop' }, 5000);
  if (!r) return false;
  // gone when its socket is
  for (let i = 0; i < 100 && lstatSync(sock, { throwIfNoEntry: false }); i++) await new Promise((res) => setTimeout(res, 50));
  return true;
}

export async function serverSocket(): Promise<string> {
  return (await clientModule()).socketPath(packageRoot());
}
