/**
 * A small real pipeline for the remote cache tests: gen → big → sum, plus an
 * independent `same` task. Every task body appends its name to a counter
 * file outside the workspaces, so a test can prove which bodies ran.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PLUGIN_API, rocmflow, type CliResult } from '../helpers/cli.js';

export interface PipelineOptions {
  counter: string;
  /** Size of big.bin. */
  bigBytes?: number;
  /** Size of same.bin (the output two workspaces share). */
  sameBytes?: number;
}

export function tasksSource(o: PipelineOptions): string {
  return `
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const COUNTER = ${JSON.stringify(o.counter)};
// a deterministic byte pattern of n bytes, written in 1 MB pieces
function pattern(file: string, n: number, seed: string) {
  const chunk = Buffer.alloc(Math.min(n, 1 << 20));
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31 + seed.charCodeAt(i % seed.length)) & 0xff;
  writeFileSync(file, '');
  for (let done = 0; done < n; done += chunk.length) writeFileSync(file, chunk.subarray(0, Math.min(chunk.length, n - done)), { flag: 'a' });
}
const gen = defineTask({
  name: 'gen',
  inputs: () => ({ files: ['src/input.txt'] }),
  outputs: ['data.txt', 'bin/tool', 'link'],
  async run(ctx) {
    await ctx.$\`echo gen >> \${COUNTER}\`;
    await ctx.$\`sort \${join(ctx.projectRoot, 'src/input.txt')} > data.txt\`;
    mkdirSync(join(ctx.outDir, 'bin'));
    writeFileSync(join(ctx.outDir, 'bin/tool'), '#!/bin/sh\\necho tool\\n');
    await ctx.$\`chmod 755 bin/tool && ln -s data.txt link\`;
    return { summary: ['gen: sorted input'] };
  },
});
const big = defineTask({
  name: 'big',
  deps: ['gen'],
  inputs: () => ({ params: { bytes: ${o.bigBytes ?? 4096} } }),
  outputs: ['big.bin'],
  async run(ctx) {
    await ctx.$\`echo big >> \${COUNTER}\`;
    pattern(join(ctx.outDir, 'big.bin'), ${o.bigBytes ?? 4096}, 'big');
    await ctx.$\`cat \${join(ctx.deps.gen.outDir, 'data.txt')} >> big.bin\`;
  },
});
const sum = defineTask({
  name: 'sum',
  deps: ['big'],
  outputs: ['sum.txt'],
  async run(ctx) {
    await ctx.$\`echo sum >> \${COUNTER}\`;
    await ctx.$\`cd \${ctx.deps.big.outDir} && sha256sum big.bin > \${join(ctx.outDir, 'sum.txt')}\`;
  },
});
const same = defineTask({
  name: 'same',
  outputs: ['same.bin'],
  async run(ctx) {
    await ctx.$\`echo same >> \${COUNTER}\`;
    pattern(join(ctx.outDir, 'same.bin'), ${o.sameBytes ?? 1024}, 'same');
  },
});
export default { tasks: [gen, big, sum, same] };
`;
}

export interface RemoteSettings {
  url: string;
  mode?: 'read' | 'read-write' | 'auto';
  timeoutMs?: number;
  concurrency?: number;
}

/**
 * The pipeline's task module, written once outside the workspaces: both
 * "machines" load it from the same absolute path (the engine hashes a task
 * module's path with its content, so a copy elsewhere would get other keys).
 */
export function sharedTasks(o: PipelineOptions): string {
  const file = join(mkdtempSync(join(tmpdir(), 'rocmflow-tasks-')), 'tasks.ts');
  writeFileSync(file, `import { defineTask } from ${JSON.stringify(PLUGIN_API)};\n${tasksSource(o)}`);
  return file;
}

/** A workspace (a "machine") using the shared task module and a remote cache. */
export function pipelineWorkspace(o: { tasks: string; remote: RemoteSettings | null; input?: string }): string {
  const dir = mkdtempSync(join(tmpdir(), 'rocmflow-ws-'));
  const cache = o.remote ? `, cache: { remote: ${JSON.stringify({ mode: 'read-write', ...o.remote })} }` : '';
  writeFileSync(join(dir, 'rocmflow.config.ts'), `export default { target: 'cpu', plugins: [${JSON.stringify(o.tasks)}]${cache} };\n`);
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src/input.txt'), o.input ?? 'pear\napple\nfig\n');
  return dir;
}

/** Run the pipeline's tasks in `ws` with its own local cache (`<ws>/local-cache`). */
export function runPipeline(ws: string, env: NodeJS.ProcessEnv = {}, extra: string[] = []): CliResult {
  return rocmflow(ws, ['run', 'sum', 'same', '--json', '--cache-dir', join(ws, 'local-cache'), ...extra], env);
}

/** A fresh counter file path outside every workspace. */
export function counterFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'rocmflow-counter-')), 'ran.txt');
}

/** Task bodies that ran, in order. */
export function bodiesRun(counter: string): string[] {
  return existsSync(counter) ? readFileSync(counter, 'utf8').split('\n').filter(Boolean) : [];
}

/** Every entry under a task's output directory: type, mode, content digest or link target. */
export function outputTree(ws: string, task: string): Record<string, string> {
  const root = join(ws, '.rocmflow/out/cpu', task);
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    const abs = join(root, rel);
    const st = lstatSync(abs);
    if (st.isSymbolicLink()) out[rel] = `link:${readlinkSync(abs)}`;
    else if (st.isDirectory()) {
      if (rel) out[rel] = `dir`;
      for (const n of readdirSync(abs).sort()) walk(rel ? `${rel}/${n}` : n);
    } else out[rel] = `file:${st.mode & 0o111 ? 'x' : '-'}:${createHash('sha256').update(readFileSync(abs)).digest('hex')}`;
  };
  walk('');
  return out;
}

/** Events of one type from a run. */
export function eventsOf(r: { events: any[] }, type: string): any[] {
  return r.events.filter((e) => e.type === type);
}

/** task → "state/source" for each task event. */
export function outcome(r: { events: any[] }): Record<string, string> {
  return Object.fromEntries(eventsOf(r, 'task').map((e) => [e.task, e.source ? `${e.state}/${e.source}` : e.state]));
}
