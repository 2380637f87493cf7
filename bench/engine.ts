/**
 * Engine benchmarks, each side by side with a baseline in the same run:
 *  1. no-op rerun of a 6-task pipeline over a 20,000-file / 2 GB input tree,
 *     against `node -e 0` (the floor: Node's own start-up);
 *  2. first-time hashing of that tree (rocmflow's hash pool) against
 *     `sha256sum` (one process) and `xargs -P<cores> sha256sum`, warm page cache;
 *     and a bare Node walk that lstats the same inputs (the floor of any stat check);
 *  3. restore of a 2 GB output from the cache against `cp -a` of the same tree,
 *     and `cp -al` (hard links: the floor of a restore that links blobs).
 * Prints Markdown rows for BENCHMARKS.md.
 *
 *   node bin/run-ts.js bench/engine.ts [--files 20000] [--mb 2048] [--runs 5] [--dir DIR]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hashFiles } from '../src/util/hash-pool.js';

const REPO = resolve(import.meta.dirname, '..');
const BIN = join(REPO, 'bin/rocmflow.js');
const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const FILES = arg('files', 20_000);
const MB = arg('mb', 2048);
const RUNS = arg('runs', 5);
const dirArg = process.argv.indexOf('--dir');
const root = dirArg > 0 ? process.argv[dirArg + 1]! : mkdtempSync(join(tmpdir(), 'rocmflow-bench-'));

function time(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function sh(cmd: string, args: string[], cwd?: string, env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 << 20, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** 20,000 files in 6 parts of 100 directories, sizes spread around the mean. */
function generate(tree: string): { files: string[]; bytes: number } {
  const files: string[] = [];
  let bytes = 0;
  const mean = Math.floor((MB * 1048576) / FILES);
  const pool = randomBytes(4 << 20);
  for (let i = 0; i < FILES; i++) {
    const part = i % 6;
    const dir = join(tree, `part${part}`, `d${Math.floor(i / 6) % 100}`);
    if (i < 600) mkdirSync(dir, { recursive: true });
    const size = Math.max(1, Math.floor(mean * (0.25 + 1.5 * ((i * 7919) % 1000) / 1000)));
    const off = (i * 104729) % (pool.length - Math.min(size, pool.length));
    const chunks: Buffer[] = [];
    for (let left = size; left > 0; left -= pool.length) chunks.push(pool.subarray(left === size ? off : 0, (left === size ? off : 0) + Math.min(left, pool.length - (left === size ? off : 0))));
    const f = join(dir, `f${i}.bin`);
    writeFileSync(f, Buffer.concat(chunks).subarray(0, size));
    files.push(f);
    bytes += size;
  }
  return { files, bytes };
}

const tree = join(root, 'ws/tree');
let files: string[] = [];
let bytes = 0;
if (readdirSyncSafe(tree).length === 0) {
  process.stderr.write(`generating ${FILES} files / ${MB} MB under ${tree}\n`);
  ({ files, bytes } = generate(tree));
} else {
  files = execFileSync('find', [tree, '-type', 'f'], { encoding: 'utf8', maxBuffer: 256 << 20 }).trim().split('\n');
  bytes = files.reduce((a, f) => a + statSync(f).size, 0);
}
function readdirSyncSafe(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}

const ws = join(root, 'ws');
writeFileSync(join(ws, 'rocmflow.config.ts'), `export default { target: 'cpu', plugins: ['./tasks.ts'], default: ['t6', 'copy'] };\n`);
writeFileSync(
  join(ws, 'tasks.ts'),
  `import { defineTask } from ${JSON.stringify(join(REPO, 'src/plugin/index.ts'))};
const chain = [0, 1, 2, 3, 4, 5].map((i) => defineTask({
  name: 't' + (i + 1), deps: i ? ['t' + i] : [],
  inputs: () => ({ files: ['tree/part' + i] }),
  outputs: ['out.txt'],
  async run(ctx) { await ctx.$\`find \${ctx.projectRoot}/tree/part\${i} -type f | wc -l > out.txt\`; },
}));
const copy = defineTask({ name: 'copy', outputs: ['tree'], inputs: () => ({ params: { v: 1 } }),
  async run(ctx) { await ctx.$\`cp -a \${ctx.projectRoot}/tree tree\`; } });
export default { tasks: [...chain, copy] };
`,
);
const cache = join(root, 'cache');
// without a server: a running `rocmflow server` of the user's must not answer the runs measured without one
const ALONE = { ...process.env, ROCMFLOW_NO_SERVER: '1' };
// with one: its own, in a directory of the bench's
const SERVED = { ...process.env, ROCMFLOW_NO_SERVER: '', TMPDIR: join(root, 'server-tmp') };
const run = (args: string[], env: NodeJS.ProcessEnv = ALONE) => sh(process.execPath, [BIN, 'run', ...args, '--cache-dir', cache], ws, env);
const cores = availableParallelism();
sh('sh', ['-c', `find ${tree} -type f -print0 | xargs -0 cat > /dev/null`]); // warm the page cache

// 2. first-time hashing
const sizes = files.map((f) => ({ path: f, size: statSync(f).size }));
const hashRuns: number[] = [];
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  await hashFiles(sizes);
  hashRuns.push((performance.now() - t0) / 1000);
}
const tHash = median(hashRuns);
const list = join(root, 'files.txt');
writeFileSync(list, files.join('\0'));
const tSha1 = median([1, 2, 3].map(() => time(() => sh('sh', ['-c', `xargs -0 sha256sum < ${list} > /dev/null`]))));
const tShaP = median([1, 2, 3].map(() => time(() => sh('sh', ['-c', `xargs -0 -P${cores} -n 500 sha256sum < ${list} > /dev/null`]))));

// 1. no-op rerun
rmSync(cache, { recursive: true, force: true });
rmSync(join(ws, '.rocmflow'), { recursive: true, force: true });
const tFirst = time(() => run(['t6', 'copy']));
run(['t6', 'copy']);
// the same no-op answered by a running `rocmflow server` (src/server/), alternated with the others
mkdirSync(SERVED.TMPDIR!, { recursive: true });
sh(process.execPath, [BIN, 'server', 'start'], ws, SERVED);
run(['t6'], SERVED);
const noops: number[] = [];
const servedNoops: number[] = [];
const floors: number[] = [];
for (let i = 0; i < RUNS; i++) {
  noops.push(time(() => run(['t6'])));
  servedNoops.push(time(() => run(['t6'], SERVED)));
  floors.push(time(() => sh(process.execPath, ['-e', '0'])));
}
const status = JSON.parse(sh(process.execPath, [BIN, 'server', 'status', '--json'], ws, SERVED)) as { served?: number };
sh(process.execPath, [BIN, 'server', 'stop'], ws, SERVED);
if (status.served !== RUNS + 1) throw new Error(`the server answered ${status.served} of ${RUNS + 1} no-op runs`);
const noop = median(noops);
const noopServed = median(servedNoops);
const floor = median(floors);
// the least any stat-based check can do: a bare Node process that reads every
// input directory and lstats every input file, nothing else
const WALK = `const fs=require('fs');const w=(d)=>{for(const n of fs.readdirSync(d)){const p=d+'/'+n;if(fs.lstatSync(p).isDirectory())w(p);}};for(const d of process.argv.slice(1))w(d);`;
const parts = [0, 1, 2, 3, 4, 5].map((i) => join(tree, `part${i}`));
const walkFloor = median(Array.from({ length: RUNS }, () => time(() => sh(process.execPath, ['-e', WALK, ...parts]))));

// 3. restore of the 2 GB output vs cp -a
const outTree = join(ws, '.rocmflow/out/cpu/copy');
const restores: number[] = [];
const cps: number[] = [];
const links: number[] = [];
for (let i = 0; i < 3; i++) {
  rmSync(outTree, { recursive: true, force: true });
  restores.push(time(() => run(['copy'])));
  const dest = join(root, 'cp-copy');
  rmSync(dest, { recursive: true, force: true });
  cps.push(time(() => sh('cp', ['-a', tree, dest])));
  rmSync(dest, { recursive: true, force: true });
  // the floor of a restore by hard links: the same tree linked by cp itself
  links.push(time(() => sh('cp', ['-al', tree, dest])));
  rmSync(dest, { recursive: true, force: true });
}
const tRestore = median(restores);
const tCp = median(cps);
const tLink = median(links);

const gb = bytes / 1e9;
const fmt = (s: number) => `${s.toFixed(3)} s`;
console.log(`| benchmark | rocmflow | baseline | result |`);
console.log(`|---|---|---|---|`);
console.log(`| 1. no-op rerun, 6 tasks over ${FILES} files / ${gb.toFixed(2)} GB (median of ${RUNS}) | ${fmt(noop)} | \`node -e 0\`: ${fmt(floor)}; Node reading every input directory and lstat-ing every file: ${fmt(walkFloor)} | +${(noop - floor).toFixed(3)} s over Node's start; +${(noop - walkFloor).toFixed(3)} s over the bare walk |`);
console.log(`| 1b. the same no-op with \`rocmflow server\` running (median of ${RUNS}, alternated with 1) | ${fmt(noopServed)} | \`node -e 0\`: ${fmt(floor)} | +${(noopServed - floor).toFixed(3)} s over Node's start |`);
console.log(`| 2. first-time hashing of the tree, warm page cache (median of 3) | ${fmt(tHash)} = ${(gb / tHash).toFixed(2)} GB/s (${cores} threads) | \`sha256sum\`: ${fmt(tSha1)} = ${(gb / tSha1).toFixed(2)} GB/s; \`xargs -P${cores} sha256sum\`: ${fmt(tShaP)} = ${(gb / tShaP).toFixed(2)} GB/s | ${(tSha1 / tHash).toFixed(2)}× sha256sum |`);
console.log(`| 3. restore of a ${gb.toFixed(2)} GB / ${FILES}-file output from the cache, whole \`rocmflow run\` (median of 3) | ${fmt(tRestore)} | \`cp -a\`: ${fmt(tCp)}; \`cp -al\` (hard links, no checks): ${fmt(tLink)} | ${(tCp / tRestore).toFixed(1)}× faster than \`cp -a\`; \`cp -al\` is ${(tCp / tLink).toFixed(1)}× |`);
console.log(`\nfirst full run (hash ${FILES} files, run 7 tasks, capture 2 GB): ${fmt(tFirst)}`);
if (dirArg < 0) rmSync(root, { recursive: true, force: true });
