/**
 * snapshot() against `tar --sort=name ... | zstd` on the same generated tree,
 * side by side: archive sizes and wall times, as Markdown table rows.
 *
 *   node bin/run-ts.js bench/snapshot.ts [--size-mb 1024] [--level 3] [--keep]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { humanBytes } from '../src/image/report.js';
import { snapshot } from '../src/image/snapshot.js';

/** One measured method. */
export interface BenchRow {
  method: string;
  what: string;
  bytes: number;
  seconds: number;
}

/**
 * A tree shaped like a ROCm install: a few big libraries of half-compressible
 * bytes, many small kernel files, some links. Reproducible for a given size.
 */
export function generateTree(dir: string, totalBytes: number): void {
  let x = 0x9e3779b9;
  const bytes = (n: number) => {
    const b = Buffer.alloc(n);
    // half noise, half runs: compresses about like device code
    for (let i = 0; i + 4 <= n; i += 8) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b.writeUInt32LE(x >>> 0, i);
    }
    return b;
  };
  mkdirSync(join(dir, 'lib/rocblas/library'), { recursive: true });
  const big = Math.floor(totalBytes * 0.8);
  const chunk = 64 << 20;
  for (let i = 0, left = big; left > 0; i++, left -= chunk) writeFileSync(join(dir, `lib/libbig${i}.so`), bytes(Math.min(chunk, left)));
  const small = 64 << 10;
  for (let i = 0, left = totalBytes - big; left > 0; i++, left -= small)
    writeFileSync(join(dir, `lib/rocblas/library/Kernels.so-${String(i).padStart(4, '0')}-gfx1151.hsaco`), bytes(Math.min(small, left)));
  symlinkSync('libbig0.so', join(dir, 'lib/libbig.so'));
  symlinkSync('lib', join(dir, 'lib64'));
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

function shell(cmd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('error', reject).on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd}: exit ${code}`))));
  });
}

/** Run both methods on `tree`, writing archives into `work`. */
export async function benchSnapshot(tree: string, work: string, level = 3): Promise<BenchRow[]> {
  const ours = join(work, 'snapshot.tar.zst');
  const gnu = join(work, 'gnu.tar.zst');
  const a = await timed(async () => void (await snapshot({ source: tree, out: ours, level, mtime: 0 })));
  const b = await timed(() =>
    shell(`tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=posix --pax-option=delete=atime,delete=ctime -C '${tree}' -cf - . | zstd -T0 -q -${level} -c > '${gnu}'`),
  );
  return [
    { method: 'rocmflow snapshot()', what: `tar + zstd -${level} + per-file sha256 + manifest`, bytes: statSync(ours).size, seconds: a },
    { method: 'tar --sort=name \\| zstd', what: `GNU tar (posix) + zstd -T0 -${level}`, bytes: statSync(gnu).size, seconds: b },
  ];
}

export function markdownRows(rows: readonly BenchRow[], treeBytes: number): string {
  const head = '| method | what | tree | archive | wall time | throughput |\n|---|---|---:|---:|---:|---:|';
  const body = rows.map((r) => `| ${r.method} | ${r.what} | ${humanBytes(treeBytes)} | ${humanBytes(r.bytes)} | ${r.seconds.toFixed(2)} s | ${humanBytes(treeBytes / r.seconds)}/s |`);
  return [head, ...body].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name: string, def: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : def;
  };
  const size = arg('size-mb', 1024) * 1024 * 1024;
  const work = mkdtempSync(join(tmpdir(), 'rocmflow-bench-'));
  try {
    generateTree(join(work, 'tree'), size);
    const rows = await benchSnapshot(join(work, 'tree'), work, arg('level', 3));
    console.log(markdownRows(rows, size));
  } finally {
    if (!process.argv.includes('--keep')) rmSync(work, { recursive: true, force: true });
  }
}
