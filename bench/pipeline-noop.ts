/**
 * The second run of the main job: `rocmflow run trim-runtime` when every
 * task is already fresh, against `node -e 0` (Node's own start-up), side by
 * side. Run it in a project whose pipeline has run once.
 *
 *   node bin/run-ts.js bench/pipeline-noop.ts [--dir PROJECT] [--runs 7] [--target cpu] [--task trim-runtime]
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '..');
const flag = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const dir = resolve(flag('dir', REPO));
const runs = Number(flag('runs', '7'));
const target = flag('target', 'cpu');
const task = flag('task', 'trim-runtime');

function timed(cmd: string, args: string[]): { s: number; stdout: string; code: number | null } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { s: (performance.now() - t0) / 1000, stdout: r.stdout, code: r.status };
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const args = [resolve(REPO, 'bin/rocmflow.js'), 'run', task, '--target', target, '--json'];
const warm = timed(process.execPath, args);
if (warm.code !== 0) throw new Error(`rocmflow run ${task} failed; run the pipeline once first:\n${warm.stdout.slice(-2000)}`);
const rocm: number[] = [];
const floor: number[] = [];
let states = '';
for (let i = 0; i < runs; i++) {
  const r = timed(process.execPath, args);
  const ends = r.stdout.split('\n').filter((l) => l.includes('"type":"task"')).map((l) => JSON.parse(l));
  if (ends.some((e) => e.state !== 'fresh' && e.state !== 'cached')) throw new Error(`not a no-op run: ${ends.map((e) => `${e.task}=${e.state}`).join(' ')}`);
  states = ends.map((e) => `${e.task}=${e.state}`).join(', ');
  rocm.push(r.s);
  floor.push(timed(process.execPath, ['-e', '0']).s);
}
const a = median(rocm);
const b = median(floor);
console.log(`| second \`rocmflow run ${task} --target ${target}\` (all ${states.split(', ').length} tasks fresh; median of ${runs}) | ${a.toFixed(3)} s | \`node -e 0\`: ${b.toFixed(3)} s | +${(a - b).toFixed(3)} s over Node's start |`);
console.log(`states: ${states}`);
