import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { writeLayer } from '../../src/image/layer.js';
import { collectTree } from '../../src/image/tar-entries.js';
import { writeTar } from '../../src/image/tar-writer.js';
import { writeTarZstd } from '../../src/image/tar-zstd-writer.js';
import { makeTree, noise, sh, tempDir } from './fixtures.js';

/** makeTree plus a file split over three segments, one that ends exactly on a segment, and many small ones. */
const SEG = 64 << 10;
function bigTree(root: string): string {
  makeTree(root);
  writeFileSync(join(root, 'lib/libhuge.so'), noise(2 * SEG + 12345, 7));
  writeFileSync(join(root, 'lib/libexact.so'), noise(SEG, 9));
  mkdirSync(join(root, 'lib/kernels'));
  for (let i = 0; i < 60; i++) writeFileSync(join(root, `lib/kernels/k${String(i).padStart(3, '0')}.hsaco`), noise(1000 + i * 97, i + 11));
  return root;
}

describe('writeTarZstd', () => {
  it('gives the same bytes on 1 thread and on 6, the same tar as the streaming writer, and every file sha256 right', async () => {
    const d = tempDir();
    const src = bigTree(join(d, 'src'));
    const entries = await collectTree(src);
    const run = async (threads: number) => {
      const hashes = new Map<string, string>();
      const out = join(d, `t${threads}.tar.zst`);
      const r = await writeTarZstd(entries, out, { level: 3, mtime: 0, threads, segment: SEG, onFile: (e, sha) => hashes.set(e.path, sha) });
      return { out, r, hashes };
    };
    const one = await run(1);
    const six = await run(6);
    expect(readFileSync(six.out).equals(readFileSync(one.out))).toBe(true);
    expect(six.r).toEqual(one.r);
    expect([...six.hashes].sort()).toEqual([...one.hashes].sort());
    // the tar inside is byte for byte what the one-stream writer makes
    const chunks: Buffer[] = [];
    const sink = new PassThrough();
    sink.on('data', (c: Buffer) => chunks.push(c));
    await writeTar(entries, sink, { mtime: 0 });
    const tar = execFileSync('zstd', ['-dcq', one.out], { maxBuffer: 64 << 20 });
    expect(tar.equals(Buffer.concat(chunks))).toBe(true);
    expect(one.r.compressed).toEqual({ digest: `sha256:${sh('sha256sum', [one.out]).split(' ')[0]}`, size: readFileSync(one.out).length });
    expect(one.r.uncompressed).toEqual({ digest: `sha256:${execFileSync('sha256sum', { input: tar, encoding: 'utf8' }).split(' ')[0]}`, size: tar.length });
    const files = entries.filter((e) => e.type === 'file');
    const sums = sh('sha256sum', files.map((f) => f.path), { cwd: src }).trim().split('\n').map((l) => `${l.slice(66)} ${l.slice(0, 64)}`);
    expect(files.map((f) => `${f.path} ${one.hashes.get(f.path)}`)).toEqual(sums);
  });

  it('fails with E_TREE_CHANGED when a file shrinks after the walk, whole or split, and writeLayer leaves no blob', async () => {
    const d = tempDir();
    const src = bigTree(join(d, 'src'));
    mkdirSync(join(d, 'out'));
    for (const victim of ['lib/kernels/k010.hsaco', 'lib/libhuge.so']) {
      const entries = await collectTree(src);
      truncateSync(join(src, victim), 10);
      const out = join(d, 'out', 'layer.tar.zst');
      await expect(writeTarZstd(entries, join(d, 'direct.tar.zst'), { level: 3, threads: 3, segment: SEG, onFile: () => {} })).rejects.toMatchObject({ code: 'E_TREE_CHANGED', message: expect.stringContaining(victim) });
      await expect(writeLayer({ from: { entries }, out, threads: 3, onFile: () => {} })).rejects.toMatchObject({ code: 'E_TREE_CHANGED' });
      expect(readdirSync(join(d, 'out'))).toEqual([]);
    }
  });
});
