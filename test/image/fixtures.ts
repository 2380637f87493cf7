/**
 * Real trees on disk for the image tests: every kind of entry a ROCm tree
 * holds (modes, relative links, hardlinks, empty dirs, long paths), built in
 * a fresh temp dir.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];
// temp trees hold multi-MB files: remove them after each test file (ROCMFLOW_KEEP_TMP=1 keeps them for debugging)
afterAll(() => {
  if (!process.env.ROCMFLOW_KEEP_TMP) for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix = 'rocmflow-image-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

/** Reproducible pseudo-random bytes (xorshift), so big files compress like real binaries. */
export function noise(size: number, seed = 1): Buffer {
  const b = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, Math.min(i, size - 4));
  }
  return b;
}

export const LONG_DIR = `lib/rocblas/library/${'gfx1151_'.repeat(6)}kernels`;
export const LONG_FILE = `${LONG_DIR}/Kernels.so-000-gfx1151-${'x'.repeat(40)}.hsaco`;

/** A small TheRock-shaped tree with every entry type we must keep exactly. */
export function makeTree(root: string): string {
  const f = (p: string, data: string | Buffer, mode = 0o644) => {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), data);
    chmodSync(join(root, p), mode);
  };
  f('bin/hipconfig', '#!/bin/sh\necho 7.13\n', 0o755);
  f('lib/libamdhip64.so.7.13.0', noise(3 * 1024 * 1024 + 17, 7), 0o755);
  f('lib/llvm/bin/clang', noise(70_000, 3), 0o750);
  f('lib/llvm/amdgcn/bitcode/ocml.bc', noise(4096, 5), 0o444);
  f('share/therock/therock_manifest.json', '{"version":"7.13.0a20260430"}\n', 0o600);
  f('share/empty.txt', '', 0o644);
  f('bin/setuid-helper', 'x', 0o4755);
  f(LONG_FILE, noise(1000, 9), 0o644);
  f('share/doc/ünïcode-名前.txt', 'utf-8 name\n');
  symlinkSync('libamdhip64.so.7.13.0', join(root, 'lib/libamdhip64.so.7'));
  symlinkSync('libamdhip64.so.7', join(root, 'lib/libamdhip64.so'));
  symlinkSync('lib/llvm', join(root, 'llvm'));
  symlinkSync('lib/llvm/amdgcn', join(root, 'amdgcn'));
  symlinkSync(`../${LONG_FILE}`, join(root, 'lib/long-target-link'));
  linkSync(join(root, 'lib/llvm/bin/clang'), join(root, 'lib/llvm/bin/clang++'));
  mkdirSync(join(root, '.kpack'), { recursive: true });
  mkdirSync(join(root, 'include/empty'), { recursive: true });
  chmodSync(join(root, 'include'), 0o700);
  mkdirSync(join(root, 'share/readonly'), { recursive: true });
  writeFileSync(join(root, 'share/readonly/data'), 'ro');
  chmodSync(join(root, 'share/readonly'), 0o555);
  return root;
}

/**
 * What a tree holds, described by find(1) rather than by our own code:
 * path, type, mode, link target, link count and content hash, one line each.
 */
export function describeTree(root: string): string {
  const list = execFileSync('find', ['.', '-mindepth', '1', '-printf', '%P\t%y\t%m\t%l\t%n\n'], { cwd: root, encoding: 'utf8' });
  const lines = list.trim().split('\n').sort();
  return lines
    .map((l) => {
      const [p, type] = l.split('\t');
      if (type !== 'f') return l;
      return `${l}\t${execFileSync('sha256sum', ['--', p!], { cwd: root, encoding: 'utf8' }).split(' ')[0]}`;
    })
    .join('\n');
}

export function sh(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  return execFileSync(cmd, args, { cwd: opts.cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}
