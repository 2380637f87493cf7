/**
 * Runs the real rocmflow CLI (bin/rocmflow.js) in temp workspaces and reads
 * its --json event stream.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../..');
export const BIN = join(REPO, 'bin/rocmflow.js');
/** Import specifier for the plugin API from a temp workspace. */
export const PLUGIN_API = join(REPO, 'src/plugin/index.ts');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  events: any[];
}

export function parseEvents(stdout: string): any[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

/** Run the CLI synchronously in `cwd`. */
export function rocmflow(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...env }, maxBuffer: 64 << 20, timeout: 600_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, events: parseEvents(r.stdout) };
}

/** Start the CLI without waiting (for signals and concurrency tests). */
export function rocmflowAsync(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<CliResult>((res) => child.on('close', (code) => res({ code, stdout, stderr, events: parseEvents(stdout) })));
  return { child, done };
}

/** The state of each task from a run's events. */
export function states(r: CliResult): Record<string, string> {
  return Object.fromEntries(r.events.filter((e) => e.type === 'task').map((e) => [e.task, e.state]));
}

/** A temp workspace with a rocmflow.config.ts and a tasks file. */
export function workspace(opts: { config?: string; tasks: string; files?: Record<string, string> }): string {
  const dir = mkdtempSync(join(tmpdir(), 'rocmflow-ws-'));
  writeFileSync(join(dir, 'rocmflow.config.ts'), opts.config ?? `export default { target: 'cpu', plugins: ['./tasks.ts'] };\n`);
  writeFileSync(join(dir, 'tasks.ts'), `import { defineTask, s } from ${JSON.stringify(PLUGIN_API)};\n${opts.tasks}`);
  for (const [f, content] of Object.entries(opts.files ?? {})) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), content);
  }
  return dir;
}
