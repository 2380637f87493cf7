/**
 * `rocmflow snapshot create` against `tar --sort=name -C DIR -cf - . | zstd
 * -T0 -3` on the same tree, side by side in one run, alternating: archive
 * sizes, wall times (median), CPU time (user + system of the whole process
 * tree), as Markdown table rows. Both run as separate processes, pinned to
 * the first N cores with `taskset` when --cpus N is given.
 *
 *   node bin/run-ts.js bench/snapshot.ts [--tree DIR] [--size-mb 2048] [--cpus N] [--runs 3] [--level 3] [--keep] [--work DIR] [--other-cli PATH/bin/rocmflow.js]
 *
 * --other-cli adds a third row, in the same alternation: the CLI of another
 * checkout (e.g. `git worktree add /tmp/old <commit>`).
 *
 * Without --tree, or when DIR does not exist yet, a tree of --size-mb is
 * generated (see generateTree); a generated --tree DIR is kept.
 */
import { spawn } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { humanBytes } from '../src/image/report.js';

/** One measured method. */
export interface BenchRow {
  method: string;
  what: string;
  bytes: number;
  /** Median wall time. */
  seconds: number;
  /** Median CPU time (user + system) of the process tree. */
  cpu: number;
  runs: number;
}

/**
 * A tree shaped like a GPU runtime install, reproducible for a given size:
 * 55% in large libraries of device-code-like bytes (half noise, half runs:
 * they compress to about half), 15% in incompressible blobs (already
 * compressed kernel packs), 15% in mid-sized libraries (1-8 MiB), 15% in
 * small kernel files (4-256 KiB), plus links.
 */
export function generateTree(dir: string, totalBytes: number): void {
  // an AES-CTR keystream with a fixed key: fast, reproducible noise
  const stream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
  let state = 0x9e3779b9;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  const bytes = (n: number, noise: boolean) => {
    const b = stream.update(Buffer.alloc(n));
    if (!noise) {
      // every other 32-bit word zero: compresses to about half, like device code
      const words = new Uint32Array(b.buffer, b.byteOffset, n >> 2);
      for (let i = 1; i < words.length; i += 2) words[i] = 0;
    }
    return b;
  };
  const write = (path: string, n: number, noise = false) => {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), bytes(n, noise));
  };
  const fill = (share: number, size: () => number, name: (i: number) => string, noise = false) => {
    for (let i = 0, left = Math.floor(totalBytes * share); left > 0; i++) {
      const n = Math.min(size(), left);
      write(name(i), n, noise);
      left -= n;
    }
  };
  fill(0.55, () => 64 << 20, (i) => `lib/libbig${i}.so`);
  fill(0.15, () => 32 << 20, (i) => `lib/kpack/blob${i}.kpack`, true);
  fill(0.15, () => (1 + (next() % 8)) << 20, (i) => `lib/libmid${i}.so.1`);
  fill(0.15, () => (4 + (next() % 252)) << 10, (i) => `lib/rocblas/library/Kernels.so-${String(i).padStart(5, '0')}-gfx1151.hsaco`);
  symlinkSync('libbig0.so', join(dir, 'lib/libbig.so'));
  symlinkSync('lib', join(dir, 'lib64'));
}

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Run `cmd` under sh (pinned with taskset when cpus is set); wall and CPU seconds of its process tree. */
function measured(cmd: string, cpus?: number): Promise<{ wall: number; cpu: number }> {
  const pinned = cpus ? `taskset -c 0-${cpus - 1} sh -c '${cmd.replace(/'/g, `'\\''`)}'` : cmd;
  const script = `${pinned}; times`;
  return new Promise((resolveRun, reject) => {
    const t = process.hrtime.bigint();
    let out = '';
    const p = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.on('error', reject).on('close', (code) => {
      const wall = Number(process.hrtime.bigint() - t) / 1e9;
      if (code !== 0) return reject(new Error(`${cmd}: exit ${code}`));
      // `times` prints the shell's own and then its children's user/system times: take the children's line
      const line = out.trim().split('\n').pop() ?? '';
      const secs = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
      resolveRun({ wall, cpu: secs.reduce((a, b) => a + b, 0) });
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Both methods on `tree`, `runs` times each, alternating, writing archives into `work`. */
export async function benchSnapshot(tree: string, work: string, opts: { level?: number; runs?: number; cpus?: number; otherCli?: string } = {}): Promise<BenchRow[]> {
  const level = opts.level ?? 3;
  const runs = opts.runs ?? 3;
  const ours = join(work, 'snapshot.tar.zst');
  const gnu = join(work, 'gnu.tar.zst');
  const cli = join(REPO, 'bin/rocmflow.js');
  const q = (p: string) => `'${p.replace(/'/g, `'\\''`)}'`;
  // the first start of the CLI may compile its sources: not part of any run
  await measured(`${q(process.execPath)} ${q(cli)} snapshot --help > /dev/null`);
  const a: { wall: number; cpu: number }[] = [];
  const b: { wall: number; cpu: number }[] = [];
  const c: { wall: number; cpu: number }[] = [];
  const other = join(work, 'other.tar.zst');
  if (opts.otherCli) await measured(`${q(process.execPath)} ${q(opts.otherCli)} snapshot --help > /dev/null`);
  for (let i = 0; i < runs; i++) {
    if (opts.otherCli) c.push(await measured(`${q(process.execPath)} ${q(opts.otherCli)} snapshot create ${q(tree)} ${q(other)} --level ${level} --mtime 0 > /dev/null`, opts.cpus));
    a.push(await measured(`${q(process.execPath)} ${q(cli)} snapshot create ${q(tree)} ${q(ours)} --level ${level} --mtime 0 > /dev/null`, opts.cpus));
    b.push(await measured(`tar --sort=name -C ${q(tree)} -cf - . | zstd -T0 -q -${level} -c > ${q(gnu)}`, opts.cpus));
  }
  const rows: BenchRow[] = [
    { method: 'rocmflow snapshot create', what: `tar + zstd -T0 -${level} + per-file sha256 + both OCI digests + manifest`, bytes: statSync(ours).size, seconds: median(a.map((r) => r.wall)), cpu: median(a.map((r) => r.cpu)), runs },
    { method: 'tar --sort=name \\| zstd -T0', what: `GNU tar + zstd -T0 -${level}`, bytes: statSync(gnu).size, seconds: median(b.map((r) => r.wall)), cpu: median(b.map((r) => r.cpu)), runs },
  ];
  if (opts.otherCli)
    rows.push({ method: `rocmflow snapshot create (${opts.otherCli})`, what: 'another checkout, e.g. an earlier commit', bytes: statSync(other).size, seconds: median(c.map((r) => r.wall)), cpu: median(c.map((r) => r.cpu)), runs });
  return rows;
}

export function markdownRows(rows: readonly BenchRow[], treeBytes: number, cpus: string): string {
  const head = '| method | what | cores | tree | archive | wall time (median) | CPU time | throughput |\n|---|---|---:|---:|---:|---:|---:|---:|';
  const body = rows.map((r) => `| ${r.method} | ${r.what} | ${cpus} | ${humanBytes(treeBytes)} | ${humanBytes(r.bytes)} | ${r.seconds.toFixed(2)} s | ${r.cpu.toFixed(1)} s | ${humanBytes(treeBytes / r.seconds)}/s |`);
  const ratio = rows[1]!.seconds / rows[0]!.seconds;
  return [head, ...body, '', `rocmflow / baseline wall time: ${(rows[0]!.seconds / rows[1]!.seconds).toFixed(2)} (${ratio >= 1 ? `${ratio.toFixed(2)}× as fast` : `${(1 / ratio).toFixed(2)}× slower`}), ${rows[0]!.runs} runs each, alternating`].join('\n');
}

function treeBytes(dir: string): number {
  let n = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) n += statSync(p).size;
    }
  };
  walk(dir);
  return n;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const num = (name: string, def: number) => (arg(name) === undefined ? def : Number(arg(name)));
  const cpus = arg('cpus') === undefined ? undefined : Number(arg('cpus'));
  const work = mkdtempSync(join(arg('work') ?? tmpdir(), 'rocmflow-bench-'));
  try {
    // a --tree that does not exist yet is generated there and kept (for the next run)
    let tree = arg('tree');
    if (!tree || !existsSync(tree)) {
      tree ??= join(work, 'tree');
      generateTree(tree, num('size-mb', 2048) * 1024 * 1024);
    }
    const size = treeBytes(tree);
    const rows = await benchSnapshot(tree, work, { level: num('level', 3), runs: num('runs', 3), cpus, otherCli: arg('other-cli') });
    console.log(markdownRows(rows, size, String(cpus ?? availableParallelism())));
  } finally {
    if (!process.argv.includes('--keep')) rmSync(work, { recursive: true, force: true });
  }
}
