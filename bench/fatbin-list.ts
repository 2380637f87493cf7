/**
 * `rocmflow fatbin list` on a large fat library (Debian's 1 GB
 * librocblas.so.4.4) against baselines in the same run: `readelf -SW` (reads
 * only the section headers), `cat FILE > /dev/null` (reads every byte), and,
 * given a ROCm root, `clang-offload-bundler --list` on the file's first
 * bundle. Each is a separate process measured by GNU time (wall time and
 * peak RSS); rows are medians of --runs runs with a warm page cache.
 *
 *   node bin/run-ts.js bench/fatbin-list.ts FILE [--root SID_ROOT] [--runs 5]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { archesOf } from '../src/fatbin/arches-of.js';
import { humanBytes } from '../src/image/report.js';

const REPO = resolve(import.meta.dirname, '..');

interface Row {
  method: string;
  what: string;
  seconds: number;
  rssKiB: number;
}

/** Wall seconds and peak RSS (KiB) of one run of `cmd`, from GNU time. */
function measure(cmd: string[]): { seconds: number; rssKiB: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', ...cmd], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')}: exit ${r.status}: ${r.stderr}`);
  const [s, m] = r.stderr.trim().split('\n').pop()!.split(' ');
  return { seconds: Number(s), rssKiB: Number(m) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function bench(method: string, what: string, cmd: string[], runs: number): Row {
  measure(cmd); // warm the page cache and the compiled mirror
  const ms = Array.from({ length: runs }, () => measure(cmd));
  return { method, what, seconds: median(ms.map((m) => m.seconds)), rssKiB: median(ms.map((m) => m.rssKiB)) };
}

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args.splice(i, 2)[1] : undefined;
};
const runs = Number(opt('runs') ?? 5);
const root = opt('root');
const file = resolve(args[0] ?? '');
if (!args[0]) throw new Error('usage: bench/fatbin-list.ts FILE [--root SID_ROOT] [--runs N]');

const listing = await archesOf(file);
const inProcess: number[] = [];
for (let i = 0; i < runs; i++) {
  const t = process.hrtime.bigint();
  await archesOf(file);
  inProcess.push(Number(process.hrtime.bigint() - t) / 1e9);
}
const rows: Row[] = [
  { method: '`archesOf()`', what: 'the listing alone, inside this process (no Node start)', seconds: median(inProcess), rssKiB: NaN },
  bench('`rocmflow fatbin list`', `the whole CLI: ${listing.containers.length} bundles, ${Object.keys(listing.arches).length} arches`, ['node', join(REPO, 'bin/rocmflow.js'), 'fatbin', 'list', file], runs),
  bench('`node -e 0`', 'Node start alone (floor for the row above)', ['node', '-e', '0'], runs),
  bench('`readelf -SW`', 'section headers only', ['readelf', '-SW', file], runs),
  bench('`cat > /dev/null`', 'every byte of the file', ['sh', '-c', `cat '${file}' > /dev/null`], runs),
];
if (root) {
  const work = mkdtempSync(join(tmpdir(), 'rocmflow-bench-'));
  try {
    const first = listing.containers[0]!;
    const bytes = Buffer.alloc(first.size);
    const fd = openSync(file, 'r');
    readSync(fd, bytes, 0, first.size, first.offset);
    closeSync(fd);
    writeFileSync(join(work, 'bundle'), bytes);
    const inRoot = ['bwrap', '--ro-bind', root, '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--ro-bind', join(work, 'bundle'), '/tmp/bundle'];
    rows.push(bench('`clang-offload-bundler --list`', `one bundle (${humanBytes(first.size)}, cut out beforehand), in the sid root via bwrap`, [...inRoot, 'clang-offload-bundler-21', '--list', '--type=o', '--input=/tmp/bundle'], runs));
    rows.push(bench('`bwrap ... true`', 'entering the sid root alone (floor for the row above)', [...inRoot, 'true'], runs));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

console.log(`${file}: ${humanBytes(statSync(file).size)}; ${execFileSync('node', ['--version'], { encoding: 'utf8' }).trim()}; median of ${runs} runs, warm page cache`);
console.log('| method | what | wall time | peak RSS |\n|---|---|---:|---:|');
for (const r of rows) console.log(`| ${r.method} | ${r.what} | ${r.seconds.toFixed(3)} s | ${Number.isNaN(r.rssKiB) ? '—' : `${(r.rssKiB / 1024).toFixed(1)} MiB`} |`);
console.log(`load average during the run: ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(', ')} on ${(await import('node:os')).cpus().length} CPUs`);
