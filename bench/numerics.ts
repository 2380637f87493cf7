/**
 * What the numeric check costs a cpu pipeline run: the same project run with
 * `tasks.numerics-reference.enabled` true and false, side by side, forcing
 * the tasks the check touches (numerics-reference, strace-trace,
 * trim-runtime); build-llama and model come from the cache. Prints the
 * seconds of each forced task in both variants and the difference.
 *
 *   node bin/run-ts.js bench/numerics.ts [--dir WORKDIR] [--runs 3]
 *
 * WORKDIR (default: a directory under the system's temp dir) gets a project
 * whose config is the repository's own plus the switch; set
 * ROCMFLOW_CACHE_DIR to a warm cache to skip the first llama.cpp build.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '..');
const flag = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const dir = resolve(flag('dir', join(tmpdir(), 'rocmflow-bench-numerics')));
const runs = Number(flag('runs', '3'));
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'rocmflow.config.ts'), `import project from ${JSON.stringify(join(REPO, 'rocmflow.config.ts'))};
const on = process.env.BENCH_NUMERICS !== 'off';
export default { ...project, stateDir: 'state', tasks: { ...project.tasks, 'numerics-reference': { enabled: on } } };
`);

const TASKS = ['numerics-reference', 'strace-trace', 'trim-runtime'];
function run(variant: 'on' | 'off', force: boolean): Record<string, number> {
  const args = [join(REPO, 'bin/rocmflow.js'), 'run', 'trim-runtime', '--target', 'cpu', '--json', ...(force ? TASKS.flatMap((t) => ['--force', t]) : [])];
  const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', maxBuffer: 256 << 20, env: { ...process.env, BENCH_NUMERICS: variant } });
  const ends = r.stdout.split('\n').filter((l) => l.includes('"type":"task"')).map((l) => JSON.parse(l) as { task: string; state: string; ms: number });
  if (r.status !== 0) throw new Error(`run (${variant}) failed: ${ends.filter((e) => e.state === 'failed').map((e) => e.task).join(', ')}\n${r.stderr.slice(-2000)}`);
  return Object.fromEntries(ends.filter((e) => TASKS.includes(e.task)).map((e) => [e.task, e.ms / 1000]));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

run('on', false); // bring the cache up (the first time builds llama.cpp)
const seen: Record<'on' | 'off', Record<string, number[]>> = { on: {}, off: {} };
for (let i = 0; i < runs; i++) {
  for (const v of ['off', 'on'] as const) {
    for (const [t, s] of Object.entries(run(v, true))) (seen[v][t] ??= []).push(s);
  }
}
const m = (v: 'on' | 'off', t: string) => (seen[v][t] ? median(seen[v][t]!) : 0);
const total = (v: 'on' | 'off') => TASKS.reduce((n, t) => n + m(v, t), 0);
console.log(`| task (median of ${runs}, forced) | numeric check on | off | added |`);
console.log('|---|---|---|---|');
for (const t of TASKS) console.log(`| ${t} | ${m('on', t).toFixed(2)} s | ${m('off', t).toFixed(2)} s | +${(m('on', t) - m('off', t)).toFixed(2)} s |`);
console.log(`| the three together | ${total('on').toFixed(2)} s | ${total('off').toFixed(2)} s | +${(total('on') - total('off')).toFixed(2)} s |`);
