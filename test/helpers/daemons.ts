/**
 * Real daemons for the image tests, each in its own temp directory and on
 * its own socket or port, stopped by the test that started them:
 * - Debian's docker.io daemon with the vfs storage driver and no bridge
 *   network (no iptables, no overlay: what a VM or a CI container allows);
 * - Debian's docker-registry (distribution 2.8) on 127.0.0.1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/llama/server.js';
import { which } from '../../src/util/which.js';

export interface Daemon {
  /** `DOCKER_HOST` for the docker daemon; `host:port` for the registry. */
  address: string;
  dir: string;
  log(): string;
  stop(): Promise<void>;
}

function track(child: ChildProcess): { log: () => string; exited: Promise<void> } {
  let out = '';
  child.stdout?.on('data', (d) => (out = (out + d).slice(-20_000)));
  child.stderr?.on('data', (d) => (out = (out + d).slice(-20_000)));
  return { log: () => out, exited: new Promise((r) => child.on('close', () => r())) };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, log: () => string, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`${what} did not come up in ${ms / 1000} s:\n${log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
}

/** Unmount whatever a daemon left mounted under `dir` (dockerd's network namespace files, podman's overlay home), deepest first. */
export function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m): m is string => !!m && m.startsWith(dir + '/'));
  for (const m of mounts.sort((a, b) => b.length - a.length)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
}

/** The docker daemon binary, when docker.io is installed. */
export const DOCKERD = which('dockerd') ?? (existsSync('/usr/sbin/dockerd') ? '/usr/sbin/dockerd' : null);

/** Start dockerd (vfs, no bridge, no iptables) on a socket of its own. */
export async function startDockerd(): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'rocmflow-dockerd-'));
  const sock = join(dir, 'docker.sock');
  const child = spawn(DOCKERD!, [
    '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'docker.pid'), '-H', `unix://${sock}`,
    '--storage-driver', 'vfs', '--bridge', 'none', '--iptables=false', '--ip6tables=false', '--ip-masq=false',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const { log, exited } = track(child);
  const address = `unix://${sock}`;
  await until('dockerd', () => {
    if (child.exitCode !== null) throw new Error(`dockerd exited with ${child.exitCode}:\n${log().slice(-3000)}`);
    return spawnSync('docker', ['-H', address, 'info', '--format', '{{.ServerVersion}}'], { stdio: 'ignore' }).status === 0;
  }, log);
  return {
    address, dir, log,
    stop: async () => {
      await stopChild(child, exited);
      unmountUnder(dir);
    },
  };
}

/** Start Debian's docker-registry on a free 127.0.0.1 port, storing under a temp directory. */
export async function startRegistry(): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'rocmflow-registry-'));
  const port = await freePort();
  const config = join(dir, 'config.yml');
  writeFileSync(config, [
    'version: 0.1',
    'log:',
    '  level: info',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n'));
  const bin = which('docker-registry') ?? '/usr/bin/docker-registry';
  const child = spawn(bin, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const { log, exited } = track(child);
  await until('docker-registry', async () => {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}:\n${log()}`);
    return fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.status === 200, () => false);
  }, log);
  return { address: `127.0.0.1:${port}`, dir, log, stop: () => stopChild(child, exited) };
}
