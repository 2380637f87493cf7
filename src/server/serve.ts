/**
 * `rocmflow server`: a long-lived process that answers `rocmflow run` when
 * the run has nothing to do. Half of a no-op's time is Node loading
 * rocmflow's modules and SQLite's (docs/DESIGN.md, "Start-up"); the server
 * has them loaded, so a client (bin/server-client.js) pays Node's start,
 * one connection and the check itself.
 *
 * It answers only no-ops, and runs them with the executor's `onlyFresh`:
 * the first task that would hash changed inputs, restore or run stops the
 * request, and the client runs the command itself as it would have without
 * a server. Work (tasks, their processes, their signals and terminals)
 * never runs in the server.
 *
 * Each request is checked from what is on disk then, as a fresh process
 * would: in the client's directory, environment and umask; with the config
 * and plugins loaded again through the bundler, which refuses what it
 * cannot see change (npm packages, computed imports: util/typescript-loader.ts);
 * with the code hashes and closures this process computed forgotten; with
 * the index opened and closed. Whatever the request's code writes to
 * stdout or stderr goes to the client, in order. When rocmflow's own files
 * change, the server declines and exits. One request at a time: another
 * that comes meanwhile is declined at once.
 *
 * The socket lives in a directory of the user's alone (0700, checked by
 * server and client alike), so only that user can ask or answer.
 */
import { existsSync, lstatSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RocmflowError } from '../errors.js';
import { RUNNING_ROOT, SOURCE_ROOT } from '../util/source-root.js';
import { privateDir, forgetPrivateDirs } from '../util/private-dir.js';
import { setLongLived } from '../util/long-lived.js';
import { forgetClosures } from '../util/module-closure.js';
import { forgetCodeHashes } from '../engine/fingerprint-task.js';
import { NotANoOp } from '../engine/executor.js';
import { CacheIndex } from '../cache/cache-index.js';
import type { CommandIO } from '../cli/command.js';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The client's module (bin/server-client.js): socket path, protocol, what may be served. */
interface ClientModule {
  PROTOCOL: number;
  servable(argv: readonly string[]): boolean;
  socketPath(packageRoot: string): string;
  trustedSocket(sock: string): boolean;
  listening(sock: string): Promise<boolean>;
  fsView(): { ns: string | null; root: string | null; cwd: string | null };
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
/** A reply larger than this (bytes of JSON) is not a no-op's output: declined. The client takes up to 64 MiB. */
const MAX_REPLY = 32 << 20;
/** A connection that has not sent its whole request by then is dropped. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Stop after the request that takes the process past this (modules a config imported are never unloaded). */
const MAX_RSS = 1 << 30;
/**
 * What the server cannot take from the client per request: the locale is
 * read once at start (Intl); sources run through tsx are not what it runs.
 */
const FIXED_ENV = /^(LANG|LANGUAGE|LC_[A-Z]+|ROCMFLOW_NO_BUILD_CACHE)$/;

interface RunRequest {
  v: number;
  type: 'run';
  root: string;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  umask: number | null;
  view: { ns: string | null; root: string | null; cwd: string | null };
  stdoutTTY: boolean;
  columns: number;
}

function isRunRequest(x: unknown): x is RunRequest {
  const r = x as RunRequest;
  return (
    typeof r === 'object' && r !== null && r.type === 'run' && typeof r.root === 'string' && Array.isArray(r.argv) && r.argv.every((a) => typeof a === 'string') &&
    typeof r.cwd === 'string' && r.cwd.startsWith('/') && typeof r.env === 'object' && r.env !== null && !Array.isArray(r.env) &&
    Object.values(r.env).every((v) => typeof v === 'string') && (r.umask === null || (Number.isInteger(r.umask) && r.umask >= 0 && r.umask <= 0o777)) &&
    typeof r.view === 'object' && r.view !== null && ['ns', 'root', 'cwd'].every((k) => ['string', 'object'].includes(typeof (r.view as Record<string, unknown>)[k])) &&
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

/**
 * A file's inode, size and mtime: what an edit, an install or a file put in
 * its place changes. Not its ctime, which a hard link to it moves too (the
 * content store links what tasks produce).
 */
function stampOf(path: string): string {
  const st = statSync(path, { throwIfNoEntry: false });
  return st ? `${st.ino}:${st.size}:${st.mtimeMs}` : '-';
}

/** Is the code this process runs still the code on disk? */
async function codeCheck(): Promise<() => boolean> {
  const root = packageRoot();
  // besides the sources: the client's protocol, the package's own dependencies (npm ci, a lockfile update)
  const files = [
    join(root, 'package.json'), join(root, 'package-lock.json'), join(root, 'node_modules', '.package-lock.json'),
    ...readdirSync(join(root, 'bin')).filter((f) => f.endsWith('.js')).map((f) => join(root, 'bin', f)),
  ];
  const first = files.map(stampOf).join('\n');
  const same = () => files.map(stampOf).join('\n') === first;
  if (existsSync(join(root, 'src', 'cli', 'main.ts'))) {
    // a checkout: the compiled mirror this process runs must still be the current one
    const { currentRoot } = (await import(pathToFileURL(join(root, 'bin', 'build-cache.js')).href)) as { currentRoot(): string | null };
    return () => currentRoot() === RUNNING_ROOT && same();
  }
  return same;
}

/** globalThis's own data properties, by name. */
function globalsNow(): Map<string, unknown> {
  const m = new Map<string, unknown>();
  for (const n of Object.getOwnPropertyNames(globalThis)) {
    const d = Object.getOwnPropertyDescriptor(globalThis, n);
    m.set(n, d && 'value' in d ? d.value : GETTER);
  }
  return m;
}
const GETTER = Symbol('accessor');

/**
 * A name the request added to globalThis (removed again, so the next
 * request does not find it), or one whose value it changed; null when it
 * left globalThis as it was. Node's own lazy globals turn from accessors
 * into values when first read: not a change.
 */
function globalsLeft(before: Map<string, unknown>): string | null {
  let found: string | null = null;
  for (const [n, v] of globalsNow()) {
    if (!before.has(n)) {
      found ??= n;
      try {
        delete (globalThis as Record<string, unknown>)[n];
      } catch {}
    } else if (before.get(n) !== GETTER && v !== GETTER && !Object.is(before.get(n), v)) found ??= n;
  }
  return found;
}

function processListeners(): number {
  return process.eventNames().reduce((n, e) => n + process.listenerCount(e), 0);
}

/** Make process.env (the real environment, which os.homedir(), os.tmpdir() and TZ read) hold exactly `env`. */
function setEnv(env: Record<string, string | undefined>): void {
  for (const k of Object.keys(process.env)) if (!(k in env)) delete process.env[k];
  for (const [k, v] of Object.entries(env)) if (v !== undefined && process.env[k] !== v) process.env[k] = v;
}

export async function serve(opts: ServerOptions): Promise<void> {
  // the server's own lines go to its log even while a request's output is being captured
  const log = (line: string) => {
    const cur = process.stderr.write;
    process.stderr.write = write.err;
    try {
      opts.log?.(line);
    } finally {
      process.stderr.write = cur;
    }
  };
  const write = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
  const client = await clientModule();
  const root = packageRoot();
  const sock = client.socketPath(root);
  const dir = dirname(sock);
  const st = privateDir(dir) ? lstatSync(dir) : null;
  // the client's rule: nobody but this user may even look into it
  if (!st || st.mode & 0o077) throw new RocmflowError('E_SERVER', `server: ${dir} is not a directory of this user's alone (mode 0700); not listening there`);
  if (existsSync(sock)) {
    if (await client.listening(sock)) throw new RocmflowError('E_SERVER', `server: one is running already (${sock})`);
    // what is left of one that did not stop cleanly (the directory is ours alone)
    rmSync(sock, { force: true });
  }
  const current = await codeCheck();
  setLongLived();
  CacheIndex.reuseParsedStates();
  const startEnv = { ...process.env };
  const stats: ServerStats = { pid: process.pid, startedAt: new Date().toISOString(), requests: 0, served: 0, declined: 0 };
  const { runCommand } = await import('../cli/commands/run.js');
  // rocmflow's own CommonJS dependencies that load on demand, loaded now: a module that
  // appears in require.cache during a request is then the config's or a plugin's
  await import('esbuild');
  await import('cosmiconfig');

  let server: Server;
  let idle: NodeJS.Timeout | undefined;
  let busy = false;
  let stopping = false;
  let ownSocket: number | null = null;
  const conns = new Set<Socket>();
  const stopped = new Promise<void>((r) => {
    const stop = (why: string) => {
      if (stopping) return;
      stopping = true;
      log(`stopping: ${why}`);
      clearTimeout(idle);
      server.close(() => r());
      for (const c of conns) if (!c.writableEnded) c.destroy();
      // only the socket this server made: another that started meanwhile may own the name now
      if (ownSocket !== null && lstatSync(sock, { throwIfNoEntry: false })?.ino === ownSocket) rmSync(sock, { force: true });
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
      for (const k of new Set([...Object.keys(req.env), ...Object.keys(startEnv)])) {
        if (FIXED_ENV.test(k) && req.env[k] !== startEnv[k]) return decline(`the client's ${k} is not the server's`);
      }
      if (!current()) {
        setImmediate(() => stop('rocmflow changed on disk'));
        return decline('rocmflow changed on disk');
      }
      forgetCodeHashes();
      forgetClosures();
      forgetPrivateDirs();
      const savedCwd = process.cwd();
      try {
        process.chdir(req.cwd);
      } catch {
        return decline(`cannot enter ${req.cwd}`);
      }
      // the same files under the same names: the client's mount namespace, root and directory are ours
      const here = client.fsView();
      if (here.ns !== req.view.ns || here.root !== req.view.root || here.cwd !== req.view.cwd || here.cwd === null) {
        process.chdir(savedCwd);
        return decline('the client sees another file system (another mount namespace, root or directory)');
      }
      const savedEnv = { ...process.env };
      const savedUmask = req.umask === null ? null : process.umask(req.umask);
      const output: [1 | 2, string][] = [];
      let size = 0;
      const add = (fd: 1 | 2, s: string) => {
        size += Buffer.byteLength(s) + 16;
        if (size <= MAX_REPLY) output.push([fd, s]);
      };
      // what the request's code prints (its config's console.log, a warning) goes where the CLI would print it
      const capture = (fd: 1 | 2) => ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        add(fd, typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
        const cb = rest.find((x) => typeof x === 'function') as (() => void) | undefined;
        cb?.();
        return true;
      }) as typeof process.stdout.write;
      process.stdout.write = capture(1);
      process.stderr.write = capture(2);
      setEnv(req.env);
      const color = req.stdoutTTY && !('NO_COLOR' in req.env) && req.env.TERM !== 'dumb';
      const io: CommandIO = {
        out: (line) => add(1, line + '\n'),
        err: (line) => add(2, line + '\n'),
        cwd: req.cwd,
        env: process.env,
        color,
        signal: new AbortController().signal,
        onlyFresh: true,
        stdout: { isTTY: req.stdoutTTY, columns: req.columns, write: (s: string | Uint8Array) => (add(1, String(s)), true) } as never,
      };
      const modules = new Set(Object.keys(require.cache));
      const globals = globalsNow();
      let why: string | null = null;
      let code = 1;
      try {
        code = await runCommand.run(req.argv.slice(1), io);
        if (code !== 0) why = `exit code ${code}`;
        else if (size > MAX_REPLY) why = 'output too large';
      } catch (e) {
        why = e instanceof NotANoOp ? e.message : `error: ${String((e as Error)?.message ?? e).split('\n')[0]}`;
      } finally {
        process.stdout.write = write.out;
        process.stderr.write = write.err;
        setEnv(savedEnv);
        if (savedUmask !== null) process.umask(savedUmask);
        try {
          process.chdir(savedCwd);
        } catch {}
      }
      // what the request's code left behind would answer the next request in its place: taken away
      // again (so the next request loads it anew), and this request declined
      const loaded = Object.keys(require.cache).filter((m) => !modules.has(m) && !m.startsWith(root + '/'));
      for (const m of loaded) delete require.cache[m];
      const left = globalsLeft(globals);
      if (loaded.length) why = `the config or a plugin loads CommonJS modules (${loaded[0]}), which a long-lived process keeps`;
      else if (left) why = `the config or a plugin keeps state on globalThis (${left})`;
      if (why !== null) return decline(why);
      stats.served++;
      return { served: true, code, output };
    }

    // the client half-closes after its request and waits for the reply: keep our side open until then
    server = createServer({ allowHalfOpen: true }, (conn) => {
      conns.add(conn);
      conn.on('close', () => conns.delete(conn));
      conn.on('error', () => {});
      // the whole request within this, however slowly it trickles in
      const deadline = setTimeout(() => conn.destroy(), REQUEST_TIMEOUT_MS);
      conn.on('close', () => clearTimeout(deadline));
      const chunks: Buffer[] = [];
      let size = 0;
      conn.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_REQUEST) conn.destroy();
        else chunks.push(d);
      });
      conn.on('end', () => {
        clearTimeout(deadline);
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return reply(conn, { served: false, why: 'not JSON' });
        }
        // status and stop in any protocol version: a client of a newer rocmflow can still see and stop this one
        if (msg?.type === 'status') return reply(conn, { ...stats });
        if (msg?.type === 'stop') {
          reply(conn, { stopping: true });
          return stop('asked to');
        }
        if (msg?.v !== client.PROTOCOL) return reply(conn, { served: false, why: `protocol ${String(msg?.v)}, not ${client.PROTOCOL}` });
        if (!isRunRequest(msg)) return reply(conn, decline('not a run request'));
        // one at a time; a second client runs the command itself rather than wait behind the first
        if (busy || stopping) return reply(conn, decline(busy ? 'busy with another request' : 'stopping'));
        busy = true;
        arm();
        const listeners = processListeners();
        void answer(msg).then((body) => {
          busy = false;
          reply(conn, body);
          arm();
          if (opts.maxRequests && stats.requests >= opts.maxRequests) stop(`${stats.requests} requests served`);
          else if (process.memoryUsage().rss > MAX_RSS) stop(`memory above ${MAX_RSS >> 20} MiB`);
          // a config or plugin that hooks the process on load would do it again on every request
          else if (processListeners() > listeners) stop('the request left listeners on the process (a config or plugin adds them when loaded)');
        });
      });
    });
    server.on('error', (e) => {
      log(`error: ${e.message}`);
      stop('socket error');
    });
    // made 0600 from the start (the directory is 0700 besides)
    const umask = process.umask(0o077);
    server.listen(sock, () => {
      process.umask(umask);
      ownSocket = lstatSync(sock).ino;
      log(`listening on ${sock} (pid ${process.pid})`);
      arm();
    });
  });
  await stopped;
}

/** Ask the running server of this rocmflow one thing; null when none answers (or its socket is not to be trusted). */
async function ask(type: 'status' | 'stop'): Promise<{ sock: string; reply: Record<string, unknown> | null }> {
  const client = await clientModule();
  const sock = client.socketPath(packageRoot());
  return { sock, reply: client.trustedSocket(sock) ? await client.request(sock, { type }, 5000) : null };
}

/** What a running server says of itself, or null when none answers. */
export async function serverStatus(): Promise<ServerStats | null> {
  const { reply } = await ask('status');
  return reply && typeof reply.pid === 'number' ? (reply as unknown as ServerStats) : null;
}

/** Ask the running server to stop; true when one did. */
export async function stopServer(): Promise<boolean> {
  const { sock, reply } = await ask('stop');
  if (!reply) return false;
  // gone when its socket is
  for (let i = 0; i < 100 && lstatSync(sock, { throwIfNoEntry: false }); i++) await new Promise((res) => setTimeout(res, 50));
  return true;
}

export async function serverSocket(): Promise<string> {
  return (await clientModule()).socketPath(packageRoot());
}
