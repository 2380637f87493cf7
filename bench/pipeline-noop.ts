/**
 * The second run of the main job: `rocmflow run trim-runtime` when every
 * task is already fresh, against `node -e 0` (Node's own start-up), side by
 * side, and the same run answered by a `rocmflow server` (src/server/) the
 * bench starts for itself, all three alternated. Run it in a project whose
 * pipeline has run once.
 *
 *   node bin/run-ts.js bench/pipeline-noop.ts [--dir PROJECT] [--runs 7] [--target cpu] [--task trim-runtime] [--config FILE]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '..');
const flag = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const dir = resolve(flag('dir', REPO));
const runs = Number(flag('runs', '7'));
const target = flag('target', 'cpu');
const task = flag('task', 'trim-runtime');
const config = flag('config', '');

// without a server (a running `rocmflow server` of the user's must not answer these), and with one of the bench's own
const ALONE = { ...process.env, ROCMFLOW_NO_SERVER: '1' };
const SERVED = { ...process.env, ROCMFLOW_NO_SERVER: '', TMPDIR: mkdtempSync(join(tmpdir(), 'rocmflow-bench-server-')) };

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = ALONE): { s: number; stdout: string; code: number | null } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20, env });
  return { s: (performance.now() - t0) / 1000, stdout: r.stdout, code: r.status };
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const args = [resolve(REPO, 'bin/rocmflow.js'), 'run', task, '--target', target, '--json', ...(config ? ['--config', resolve(config)] : [])];
const warm = timed(process.execPath, args);
if (warm.code !== 0) throw new Error(`rocmflow run ${task} failed; run the pipeline once first:\n${warm.stdout.slice(-2000)}`);
const cli = (env: NodeJS.ProcessEnv, ...a: string[]) => timed(process.execPath, [resolve(REPO, 'bin/rocmflow.js'), ...a], env);
if (cli(SERVED, 'server', 'start').code !== 0) throw new Error('rocmflow server start failed');
timed(process.execPath, args, SERVED);
const rocm: number[] = [];
const served: number[] = [];
const floor: number[] = [];
let states = '';
const check = (r: ReturnType<typeof timed>) => {
  const ends = r.stdout.split('\n').filter((l) => l.includes('"type":"task"')).map((l) => JSON.parse(l));
  if (ends.some((e) => e.state !== 'fresh' && e.state !== 'cached')) throw new Error(`not a no-op run: ${ends.map((e) => `${e.task}=${e.state}`).join(' ')}`);
  states = ends.map((e) => `${e.task}=${e.state}`).join(', ');
  return r.s;
};
try {
  for (let i = 0; i < runs; i++) {
    rocm.push(check(timed(process.execPath, args)));
    served.push(check(timed(process.execPath, args, SERVED)));
    floor.push(timed(process.execPath, ['-e', '0']).s);
  }
  const status = JSON.parse(cli(SERVED, 'server', 'status', '--json').stdout) as { served?: number };
  if (status.served !== runs + 1) throw new Error(`the server answered ${status.served} of ${runs + 1} runs`);
} finally {
  cli(SERVED, 'server', 'stop');
  rmSync(SERVED.TMPDIR, { recursive: true, force: true });
}
const a = median(rocm);
const c = median(served);
const b = median(floor);
const n = states.split(', ').length;
console.log(`| second \`rocmflow run ${task} --target ${target}\` (all ${n} tasks fresh; median of ${runs}) | ${a.toFixed(3)} s | \`node -e 0\`: ${b.toFixed(3)} s | +${(a - b).toFixed(3)} s over Node's start |`);
console.log(`| the same with \`rocmflow server\` running (alternated with the row above; median of ${runs}) | ${c.toFixed(3)} s | \`node -e 0\`: ${b.toFixed(3)} s | +${(c - b).toFixed(3)} s over Node's start |`);
console.log(`states: ${states}`);
