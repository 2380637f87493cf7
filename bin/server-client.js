// The client side of `rocmflow server` (src/server/serve.ts): before the
// CLI loads anything of its own, `rocmflow run` asks a running server of
// this same rocmflow to do the run if it has nothing to do. The server
// answers with the run's output, or declines without having written or
// printed anything, and then the CLI runs as it always does. Plain
// JavaScript with Node's modules alone: this runs before the compiled
// mirror is checked.
import { lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Protocol version: a server and client of different versions decline each other. */
export const PROTOCOL = 2;

/** A reply larger than this is not a no-op's output. */
const MAX_REPLY = 64 << 20;

/** The flags that make a `run` more than a no-op check (or no run at all). */
const UNSERVED = new Set(['--force', '--dry-run', '--help', '-h']);

/** Whether a command line is one the server may answer: `run` with nothing that forces work. */
export function servable(argv) {
  return argv[0] === 'run' && !argv.some((a) => UNSERVED.has(a) || a.startsWith('--force='));
}

/** 64-bit FNV-1a of a string, as 16 hex digits (a name, not a secret). */
function fnv1a64(s) {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(s, 'utf8')) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return h.toString(16).padStart(16, '0');
}

/**
 * The server's socket: in a directory of this user's alone under the
 * system's tmp, named by the rocmflow package it serves and the Node that
 * runs it, so a server answers only clients of the same code.
 */
export function socketPath(packageRoot) {
  const uid = process.getuid?.() ?? 0;
  return join(tmpdir(), `rocmflow-server-${uid}`, `${fnv1a64(`${packageRoot}\0${process.version}`)}.sock`);
}

/** os.tmpdir() on POSIX, without loading node:os for it (this runs before every `rocmflow run`). */
function tmpdir() {
  const t = process.env.TMPDIR || process.env.TMP || process.env.TEMP || '/tmp';
  return t.length > 1 && t.endsWith('/') ? t.slice(0, -1) : t;
}

/**
 * The socket may be trusted when its directory is a real directory of this
 * user's that nobody else can write, and it is a socket of this user's:
 * else another user could answer in the server's place.
 */
export function trustedSocket(sock) {
  const uid = process.getuid?.();
  const dir = lstatSync(dirname(sock), { throwIfNoEntry: false });
  if (!dir?.isDirectory() || (uid !== undefined && dir.uid !== uid) || dir.mode & 0o077) return false;
  const st = lstatSync(sock, { throwIfNoEntry: false });
  return !!st?.isSocket() && (uid === undefined || st.uid === uid);
}

/** Whether something accepts connections on the socket (a server, alive, busy or not). */
export async function listening(sock) {
  // node:net loads only when there is a socket to talk to: a plain `rocmflow run` without a server pays nothing for it
  const { createConnection } = await import('node:net');
  return new Promise((resolve) => {
    const conn = createConnection(sock);
    conn.on('connect', () => {
      conn.destroy();
      resolve(true);
    });
    conn.on('error', () => resolve(false));
  });
}

/** This process's umask, without changing it (process.umask() with no argument is deprecated). */
function umask() {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? parseInt(m[1], 8) : null;
  } catch {
    return null;
  }
}

/**
 * What this process's paths lead to: its mount namespace, its root and its
 * directory (device and inode). A client in another container or mount
 * namespace that shares the socket's directory sees other files under the
 * same names; the server declines then.
 */
export function fsView() {
  const id = (p) => {
    const st = statSync(p, { throwIfNoEntry: false });
    return st ? `${st.dev}:${st.ino}` : null;
  };
  let ns = null;
  try {
    ns = readlinkSync('/proc/self/ns/mnt');
  } catch {}
  return { ns, root: id('/'), cwd: id('.') };
}

/** One JSON request, one JSON reply (or null: no server, a broken one, a reply of the wrong shape). */
export async function request(sock, message, timeoutMs = 60_000) {
  const { createConnection } = await import('node:net');
  return new Promise((resolve) => {
    let done = false;
    const chunks = [];
    let size = 0;
    const finish = (value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      conn.destroy();
      resolve(value);
    };
    const conn = createConnection(sock);
    const timer = setTimeout(() => finish(null), timeoutMs);
    conn.on('error', () => finish(null));
    conn.on('data', (d) => {
      size += d.length;
      if (size > MAX_REPLY) return finish(null);
      chunks.push(d);
    });
    conn.on('end', () => {
      try {
        finish(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        finish(null);
      }
    });
    conn.end(JSON.stringify({ v: PROTOCOL, ...message }) + '\n');
  });
}

/**
 * Ask the server to answer `rocmflow <argv>` in the current directory and
 * environment. Returns { code, output } when it did (output: [1 or 2, text]
 * in the order it was written to stdout and stderr), or null: then the
 * caller runs the command itself. Sources run through tsx
 * (ROCMFLOW_NO_BUILD_CACHE) are not what a server runs.
 */
export async function askServer(packageRoot, argv) {
  if (process.env.ROCMFLOW_NO_SERVER || process.env.ROCMFLOW_NO_BUILD_CACHE || !servable(argv)) return null;
  const sock = socketPath(packageRoot);
  if (!trustedSocket(sock)) return null;
  const reply = await request(sock, {
    type: 'run', root: packageRoot, argv, cwd: process.cwd(), env: process.env, umask: umask(), view: fsView(),
    stdoutTTY: !!process.stdout.isTTY, columns: process.stdout.columns ?? 0,
  });
  if (!reply || reply.v !== PROTOCOL || reply.served !== true || !Number.isInteger(reply.code) || !Array.isArray(reply.output)) return null;
  if (!reply.output.every((c) => Array.isArray(c) && (c[0] === 1 || c[0] === 2) && typeof c[1] === 'string')) return null;
  return { code: reply.code, output: reply.output };
}
