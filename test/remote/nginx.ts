/**
 * A real nginx with WebDAV PUT on 127.0.0.1, in its own temp directory
 * (config, logs, body temp files and document root), for remote cache tests
 * and the benchmark.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Nginx {
  port: number;
  /** The directory nginx serves; the cache lives under `<root>/cache`. */
  root: string;
  /** `http://127.0.0.1:<port>/cache` */
  url: string;
  pid: number;
  /** Stop it gracefully and remove its directory. */
  stop(): Promise<void>;
  /** SIGKILL the master and its worker (a crashed server). */
  kill(): Promise<void>;
}

/** A port that was free a moment ago (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, dir: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${readFileSync(join(dir, 'logs/error.log'), 'utf8')}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/`, { method: 'HEAD' });
      await r.body?.cancel();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nginx did not listen on ${port}`);
}

/** Where a server block may put things. */
export interface NginxPlaces {
  port: number;
  /** nginx's own temp directory (config, logs, pid). */
  dir: string;
  /** The document root; the cache lives under `<root>/cache`. */
  root: string;
}

/**
 * Start nginx. `limitRate` (e.g. "20m") throttles each download, to catch a
 * transfer mid-way; `server` replaces the default server block.
 */
export async function startNginx(opts: { limitRate?: string; server?: (p: NginxPlaces) => string } = {}): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'rocmflow-nginx-'));
  const root = join(dir, 'root');
  chmodSync(dir, 0o755);
  // the workers run as an unprivileged user and must be able to create the tree
  mkdirSync(join(root, 'cache'), { recursive: true });
  chmodSync(join(root, 'cache'), 0o777);
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  const server =
    opts.server?.({ port, dir, root }) ??
    `server {
    listen 127.0.0.1:${port};
    root ${root};
    client_max_body_size 0;
    location /cache/ {
      dav_methods PUT DELETE;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      ${opts.limitRate ? `limit_rate ${opts.limitRate};` : ''}
    }
  }`;
  const conf = `
worker_processes 1;
error_log ${dir}/logs/error.log;
events { worker_connections 256; }
http {
  access_log ${dir}/logs/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  ${server}
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', `daemon off; pid ${dir}/nginx.pid;`], { stdio: 'ignore' });
  await waitForPort(port, child, dir);
  const exited = new Promise<void>((r) => (child.exitCode !== null ? r() : child.on('exit', () => r())));
  const workers = () => {
    try {
      return readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  return {
    port, root, url: `http://127.0.0.1:${port}/cache`, pid: child.pid!,
    async stop() {
      if (child.exitCode === null) child.kill('SIGQUIT');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
    async kill() {
      const ws = workers();
      child.kill('SIGKILL');
      for (const w of ws) {
        try {
          process.kill(w, 'SIGKILL');
        } catch {}
      }
      await exited;
    },
  };
}
