/**
 * `rocmflow trace parse` on a generated strace log of about 1 GB, beside
 * `wc -l` of the same file in the same run: wall time and peak RSS of each
 * (from /usr/bin/time -v), as Markdown table rows.
 *
 *   node bin/run-ts.js bench/trace-parse.ts [--size-mb 1024] [--keep]
 *
 * The log repeats the lines of test/fixtures/trace/timing.log (a real
 * `strace -f -ttt -y` log) after its first execve, with the pids and paths
 * varied so the parser sees 5,000 distinct files rather than one block.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const sizeMb = Number(args[args.indexOf('--size-mb') + 1] ?? 1024) || 1024;

function measure(cmd: string[]): { seconds: number; rssMb: number; status: number | null } {
  const r = spawnSync('/usr/bin/time', ['-v', ...cmd], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr)!;
  const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
  const rssMb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)![1]) / 1024;
  return { seconds, rssMb, status: r.status };
}

const dir = mkdtempSync(join(tmpdir(), 'rocmflow-bench-trace-'));
const log = join(dir, 'big.log');
const lines = readFileSync(join(REPO, 'test/fixtures/trace/timing.log'), 'utf8').split('\n').filter(Boolean);
const fd = openSync(log, 'w');
writeSync(fd, `${lines[0]}\n`);
const rest = lines.slice(1).join('\n') + '\n';
let written = 0;
for (let i = 0; written < sizeMb << 20; i++) {
  // a distinct file name per block (mod 5000), same syscalls
  const block = rest.replaceAll('/etc/ld.so.cache', `/etc/ld.so.cache.${i % 5000}`);
  written += writeSync(fd, block);
}
closeSync(fd);
const bytes = statSync(log).size;

const wc = measure(['wc', '-l', log]);
const rf = measure([process.execPath, join(REPO, 'bin/rocmflow.js'), 'trace', 'parse', log, '--json']);
if (rf.status !== 0) throw new Error(`trace parse exited ${rf.status}`);
const gb = (bytes / 1e9).toFixed(2);
console.log(`| trace parse of a ${gb} GB strace log | ${rf.seconds.toFixed(1)} s, peak RSS ${rf.rssMb.toFixed(0)} MB | \`wc -l\`: ${wc.seconds.toFixed(1)} s, peak RSS ${wc.rssMb.toFixed(0)} MB | ${(bytes / 1e6 / rf.seconds).toFixed(0)} MB/s |`);
if (!args.includes('--keep')) rmSync(dir, { recursive: true, force: true });
