/**
 * The layer memo on real files: what changes a key, what makes a layer
 * unkeyable, and that a record is trusted only as far as the store backs it.
 */
import { linkSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BLOB_MTIME } from '../../src/cache/content-store.js';
import { layerKey, recallLayer, rememberLayer, type LayerMemo } from '../../src/image/layer-memo.js';
import type { TarEntry } from '../../src/image/tar-entries.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'rocmflow-memo-'));
const HOW = { compression: 'zstd', level: 3, mtime: 0, version: '1.0.0' };
const LAYER = { digest: `sha256:${'a'.repeat(64)}`, diffId: `sha256:${'b'.repeat(64)}`, size: 10, uncompressedSize: 20 };

/** A source file whose times are an hour old, so it is not too fresh to key. */
function oldFile(path: string, data: string): TarEntry {
  writeFileSync(path, data);
  const t = Date.now() / 1000 - 3600;
  utimesSync(path, t, t);
  return { path: `lib/${path.split('/').pop()}`, type: 'file', mode: 0o644, size: Buffer.byteLength(data), source: path };
}

describe('layerKey', () => {
  it('is the same for the same files and settings, and changes with content, settings, mode or path', () => {
    const d = tmp();
    const a = oldFile(join(d, 'a.so'), 'aaaa');
    const link: TarEntry = { path: 'lib/a.so.1', type: 'symlink', mode: 0o777, size: 0, target: 'a.so' };
    const later = Date.now() + 10_000;
    const k = layerKey([a, link], HOW, later);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(layerKey([a, link], HOW, later)).toBe(k);
    expect(layerKey([a, link], { ...HOW, level: 19 }, later)).not.toBe(k);
    expect(layerKey([a, link], { ...HOW, version: '1.0.1' }, later)).not.toBe(k);
    expect(layerKey([{ ...a, mode: 0o755 }, link], HOW, later)).not.toBe(k);
    expect(layerKey([a, { ...link, target: 'b.so' }], HOW, later)).not.toBe(k);
    // same size, the old mtime put back: only the ctime tells, and it does
    const again = oldFile(join(d, 'a.so'), 'bbbb');
    expect(layerKey([again, link], HOW, Date.now() + 10_000)).not.toBe(k);
  });

  it('keys a content-store blob by its inode and the mtime sentinel: another link does not change it, a write does', () => {
    const d = tmp();
    const blob = join(d, 'blob');
    writeFileSync(blob, 'llama');
    utimesSync(blob, BLOB_MTIME, BLOB_MTIME);
    const e: TarEntry = { path: 'opt/llama/lib/libllama.so', type: 'file', mode: 0o755, size: 5, source: blob };
    // linked just now: its ctime is fresh, which would make any other file unkeyable
    const k = layerKey([e], HOW);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    linkSync(blob, join(d, 'another-workspace'));
    expect(layerKey([e], HOW)).toBe(k);
    writeFileSync(blob, 'LLAMA');
    expect(layerKey([e], HOW)).toBeNull();
  });

  it('is null when a source is missing, not a regular file, not the size listed, or modified just now', () => {
    const d = tmp();
    const a = oldFile(join(d, 'a.so'), 'aaaa');
    const later = Date.now() + 10_000;
    expect(layerKey([{ ...a, source: join(d, 'gone') }], HOW, later)).toBeNull();
    symlinkSync('a.so', join(d, 'l.so'));
    expect(layerKey([{ ...a, source: join(d, 'l.so') }], HOW, later)).toBeNull();
    expect(layerKey([{ ...a, size: 5 }], HOW, later)).toBeNull();
    // the ctime of a file just written is now: too fresh to trust its stat
    expect(layerKey([a], HOW)).toBeNull();
  });
});

describe('recallLayer', () => {
  const memoIn = (dir: string, blobs: Record<string, number>): LayerMemo => ({
    dir, version: '1.0.0',
    storedBlob: (hex, size) => (blobs[hex] === size ? `/store/${hex}` : null),
  });
  const key = 'f'.repeat(64);

  it('gives back what was remembered when the store has the blob, with the digests as recorded', () => {
    const memo = memoIn(join(tmp(), 'layers'), { ['a'.repeat(64)]: 10 });
    expect(recallLayer(memo, key)).toBeNull();
    rememberLayer(memo, key, LAYER);
    expect(recallLayer(memo, key)).toEqual({ blob: `/store/${'a'.repeat(64)}`, recorded: { digest: LAYER.digest, diffId: LAYER.diffId, uncompressedSize: 20, stored: true } });
    // no temp file is left beside the record
    expect(readdirSync(memo.dir)).toEqual([`${key}.json`]);
  });

  it('ignores a record whose blob the store no longer has, or has at another size', () => {
    const dir = join(tmp(), 'layers');
    rememberLayer(memoIn(dir, {}), key, LAYER);
    expect(recallLayer(memoIn(dir, {}), key)).toBeNull();
    expect(recallLayer(memoIn(dir, { ['a'.repeat(64)]: 11 }), key)).toBeNull();
  });

  it('ignores malformed records and records that are not plain files', () => {
    const dir = join(tmp(), 'layers');
    mkdirSync(dir);
    const memo = memoIn(dir, { ['a'.repeat(64)]: 10, ['0'.repeat(64)]: 10 });
    const bad: unknown[] = [
      'not json', null, [], { ...LAYER, digest: 'sha256:../../etc' }, { ...LAYER, diffId: 'md5:x' }, { ...LAYER, size: -1 },
      { ...LAYER, uncompressedSize: 1.5 }, { ...LAYER, size: '10' }, { ...LAYER, digest: `SHA256:${'a'.repeat(64)}` },
    ];
    for (const [i, r] of bad.entries()) {
      const k = String(i).padStart(64, '0');
      writeFileSync(join(dir, `${k}.json`), typeof r === 'string' ? r : JSON.stringify(r));
      expect(recallLayer(memo, k)).toBeNull();
    }
    const outside = join(tmp(), 'record.json');
    writeFileSync(outside, JSON.stringify(LAYER));
    symlinkSync(outside, join(dir, `${key}.json`));
    expect(recallLayer(memo, key)).toBeNull();
    mkdirSync(join(dir, `${'e'.repeat(64)}.json`));
    expect(recallLayer(memo, 'e'.repeat(64))).toBeNull();
  });

  it('remembering where the directory cannot be made is not an error', () => {
    const file = join(tmp(), 'file');
    writeFileSync(file, 'x');
    expect(() => rememberLayer(memoIn(join(file, 'layers'), {}), key, LAYER)).not.toThrow();
  });
});
