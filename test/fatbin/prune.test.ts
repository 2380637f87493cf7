import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, lstatSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { archesOf } from '../../src/fatbin/arches-of.js';
import { pruneFile } from '../../src/fatbin/prune-file.js';
import { rocmflow } from '../helpers/cli.js';
import { cleanTemps, cudaOracle, fixture, hipOracle, readelfSections, sha256, temp, zstdDecompressCcob } from './helpers.js';

afterAll(cleanTemps);

const GFX1100 = 'hipv4-amdgcn-amd-amdhsa--gfx1100';

/** Bytes of `a` and `b` outside [from, to) are identical. */
function sameOutside(a: Buffer, b: Buffer, from: number, to: number): boolean {
  return a.length === b.length && a.subarray(0, from).equals(b.subarray(0, from)) && a.subarray(to).equals(b.subarray(to));
}

describe('pruneFile: plain bundles', () => {
  it('keeps gfx1100 byte-identical where it was, drops gfx1151 to a hole, rewrites each bundle header', async () => {
    const src = fixture('libtiny-hip.so');
    const dest = join(temp(), 'out.so');
    const r = await pruneFile(src, dest, { keep: ['gfx1100'] });
    const a = readFileSync(src);
    const b = readFileSync(dest);
    expect(r.sizes.apparent).toBe(a.length);
    expect(b.length).toBe(a.length);
    expect(r.kept).toEqual({ gfx1100: 9824 });
    expect(r.dropped).toEqual({ gfx1151: 9824 });
    expect(r.pruned.map((p) => p.arch)).toEqual(['gfx1151', 'gfx1151']);

    const before = await archesOf(src);
    const after = await archesOf(dest);
    expect(after.arches).toEqual({ gfx1100: 9824 });
    expect(after.containers.map((c) => c.offset)).toEqual(before.containers.map((c) => c.offset));
    for (const [i, c] of after.containers.entries()) {
      expect(c.entries.map((e) => e.id).sort()).toEqual([GFX1100, 'host-x86_64-unknown-linux-gnu-']);
      const kept = c.entries.find((e) => e.id === GFX1100)!;
      // same offset, same bytes, and those are the bytes clang-offload-bundler unbundled from the original
      expect(kept.offset).toBe(before.containers[i]!.entries.find((e) => e.id === GFX1100)!.offset);
      expect(sha256(b.subarray(kept.offset, kept.offset + kept.size))).toBe(hipOracle['libtiny-hip.so']!.bundles[i]!.objects[GFX1100]!.sha256);
      const dropped = before.containers[i]!.entries.find((e) => e.arch === 'gfx1151')!;
      expect(b.subarray(dropped.offset, dropped.offset + dropped.size).every((x) => x === 0)).toBe(true);
    }
    // nothing outside .hip_fatbin changed
    const sec = readelfSections(src).get('.hip_fatbin')!;
    expect(sameOutside(a, b, sec.offset, sec.offset + sec.size)).toBe(true);
    // the dropped code objects (4 KiB-aligned, over 4 KiB each) are holes: fewer blocks on disk
    expect(r.sizes.allocated).toBe(statSync(dest).blocks * 512);
    expect(r.sizes.allocated).toBeLessThanOrEqual(r.sizes.sourceAllocated - 2 * 4096);
    expect(statSync(dest).mode).toBe(statSync(src).mode);
  });

  it('keeps a target by processor: gfx1151 keeps gfx1151 code; a missing arch empties the bundles and says so', async () => {
    const dir = temp();
    const r = await pruneFile(fixture('libtiny-hip.so'), join(dir, 'a.so'), { keep: ['gfx1151'] });
    expect(r.kept).toEqual({ gfx1151: 9824 });
    const none = await pruneFile(fixture('libtiny-hip.so'), join(dir, 'b.so'), { keep: ['gfx1030'] });
    expect(none.kept).toEqual({});
    expect(none.emptied).toBe(2);
    expect((await archesOf(join(dir, 'b.so'))).containers.every((c) => c.entries.length === 1 && c.entries[0]!.kind === 'host')).toBe(true);
  });

  it('prunes in place through a new file: a hard link to the old one keeps its bytes', async () => {
    const dir = temp();
    const file = join(dir, 'lib.so');
    copyFileSync(fixture('libtiny-hip.so'), file);
    linkSync(file, join(dir, 'link.so'));
    await pruneFile(file, file, { keep: ['gfx1100'] });
    expect((await archesOf(file)).arches).toEqual({ gfx1100: 9824 });
    expect(readFileSync(join(dir, 'link.so')).equals(readFileSync(fixture('libtiny-hip.so')))).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['lib.so', 'link.so']);
  });
});

describe('pruneFile: compressed bundles', () => {
  it.each(['libtiny-hip-ccob2.so', 'libtiny-hip-ccob3.so'])('%s: rebuilt at the same start, smaller, gfx1100 identical, hash and sizes right', async (name) => {
    const src = fixture(name);
    const dest = join(temp(), 'out.so');
    const r = await pruneFile(src, dest, { keep: ['gfx1100'] });
    expect(r.leftWhole).toEqual([]);
    const before = await archesOf(src);
    const after = await archesOf(dest);
    expect(after.arches).toEqual({ gfx1100: 9824 });
    const b = readFileSync(dest);
    for (const [i, c] of after.containers.entries()) {
      const old = before.containers[i]!;
      expect(c.offset).toBe(old.offset);
      expect(c.size).toBeLessThan(old.size);
      expect(c.compressed).toMatchObject({ version: old.compressed!.version, method: 'zstd' });
      const inner = zstdDecompressCcob(b.subarray(c.offset, c.offset + c.size));
      expect(inner.length).toBe(c.compressed!.uncompressedSize);
      // LLVM's hash: the first 8 bytes of the MD5 of the decompressed bundle
      expect(c.compressed!.hash).toBe(createHash('md5').update(inner).digest('hex').slice(0, 16));
      const e = c.entries.find((x) => x.id === GFX1100)!;
      expect(e.offset % 4096).toBe(0);
      expect(sha256(inner.subarray(e.offset, e.offset + e.size))).toBe(hipOracle[name]!.bundles[i]!.objects[GFX1100]!.sha256);
      // the rest of the old bundle's range is zeros
      expect(b.subarray(c.offset + c.size, old.offset + old.size).every((x) => x === 0)).toBe(true);
    }
  });

  it('a version 1 bundle (no total size) is left whole, and the result says why', async () => {
    // v1 = the v2 header without its total-size field; the data is the same
    const dir = temp();
    const file = join(dir, 'v1.so');
    const buf = readFileSync(fixture('libtiny-hip-ccob2.so'));
    for (const c of (await archesOf(fixture('libtiny-hip-ccob2.so'))).containers) {
      const v2 = buf.subarray(c.offset, c.offset + c.size);
      const v1 = Buffer.concat([Buffer.from('CCOB'), Buffer.from([1, 0]), v2.subarray(6, 8), v2.subarray(12, 16), v2.subarray(16, 24), v2.subarray(24)]);
      buf.fill(0, c.offset, c.offset + c.size);
      v1.copy(buf, c.offset);
    }
    writeFileSync(file, buf);
    const l = await archesOf(file);
    expect(l.containers.map((c) => c.compressed!.version)).toEqual([1, 1]);
    expect(l.arches).toEqual({ gfx1100: 9824, gfx1151: 9824 });
    const r = await pruneFile(file, join(dir, 'out.so'), { keep: ['gfx1100'] });
    expect(r.leftWhole.map((w) => w.reason)).toEqual([expect.stringContaining('v1'), expect.stringContaining('v1')]);
    expect(readFileSync(join(dir, 'out.so')).equals(buf)).toBe(true);
  });
});

describe('pruneFile: CUDA fatbins', () => {
  it('keeps sm_90 (the cubin nvcc made, byte for byte), compacts each fatbin at its old start, updates its size', async () => {
    const src = fixture('libtiny-cuda.so');
    const dest = join(temp(), 'out.so');
    const r = await pruneFile(src, dest, { keep: ['sm_90'] });
    expect(r.dropped).toEqual({ sm_80: 4712, compute_90: 368 });
    const before = await archesOf(src);
    const after = await archesOf(dest);
    expect(after.arches).toEqual({ sm_90: before.arches['sm_90'] });
    expect(after.containers.map((c) => c.offset)).toEqual(before.containers.map((c) => c.offset));
    const b = readFileSync(dest);
    const a = readFileSync(src);
    for (const [i, c] of after.containers.entries()) {
      expect(c.entries.map((e) => e.arch)).toEqual(['sm_90']);
      expect(b.readBigUInt64LE(c.offset + 8)).toBe(BigInt(c.size - c.headerSize));
      const [e] = c.entries;
      const old = before.containers[i]!.entries.find((x) => x.arch === 'sm_90')!;
      // header and payload moved as they were
      expect(b.subarray(e!.offset - e!.headerSize!, e!.offset + e!.size).equals(a.subarray(old.offset - old.headerSize!, old.offset + old.size))).toBe(true);
      expect(b.subarray(c.offset + c.size, before.containers[i]!.offset + before.containers[i]!.size).every((x) => x === 0)).toBe(true);
    }
    const hashes = after.containers.flatMap((c) => c.entries).map((e) => sha256(b.subarray(e.offset, e.offset + e.size)));
    expect(hashes).toContain(cudaOracle['sm_90']!.sha256);
    const sec = readelfSections(src).get('.nv_fatbin')!;
    expect(sameOutside(a, b, sec.offset, sec.offset + sec.size)).toBe(true);
  });

  it('keeps several arches, PTX included', async () => {
    const dest = join(temp(), 'out.so');
    await pruneFile(fixture('libtiny-cuda.so'), dest, { keep: ['sm_90', 'compute_90'] });
    expect(Object.keys((await archesOf(dest)).arches)).toEqual(['sm_90', 'compute_90']);
  });
});

describe('refusals: nothing is written', () => {
  /** A copy of a fixture with bytes changed, and a directory to write into. */
  function damaged(name: string, edit: (b: Buffer) => Buffer): { file: string; dir: string } {
    const dir = temp();
    const file = join(dir, 'in.so');
    writeFileSync(file, edit(readFileSync(fixture(name))));
    return { file, dir };
  }

  it('a library cut off in the middle of .hip_fatbin: file and offset named, no output', async () => {
    const sec = readelfSections(fixture('libtiny-hip.so')).get('.hip_fatbin')!;
    const { file, dir } = damaged('libtiny-hip.so', (b) => b.subarray(0, sec.offset + 5000));
    const out = join(dir, 'out.so');
    await expect(pruneFile(file, out, { keep: ['gfx1100'] })).rejects.toMatchObject({ code: 'E_FATBIN_MALFORMED', message: expect.stringMatching(new RegExp(`^${file}: offset 0x[0-9a-f]+: `)) });
    expect(readdirSync(dir)).toEqual(['in.so']);
  });

  it('a bundle entry whose size runs past its section names the entry table offset', async () => {
    const sec = readelfSections(fixture('libtiny-hip.so')).get('.hip_fatbin')!;
    // entry 1 of the first bundle: after magic (24) + count (8) + entry 0 (24 + 30-byte host id)
    const entry1 = sec.offset + 32 + 24 + 30;
    const { file, dir } = damaged('libtiny-hip.so', (b) => {
      b.writeBigUInt64LE(1n << 40n, entry1 + 8);
      return b;
    });
    const r = rocmflow(dir, ['fatbin', 'prune', file, '--keep', 'gfx1100', '--out', join(dir, 'out.so')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([`rocmflow: ${file}: offset 0x${entry1.toString(16)}: entry 1 (hipv4-amdgcn-amd-amdhsa--gfx1100): 1099511627776 bytes at +4096 run past the end of the ${sec.size} bytes the bundle can have`]);
    expect(readdirSync(dir)).toEqual(['in.so']);
  });

  it('a compressed bundle whose data is corrupt: refused at its offset, nothing left behind', async () => {
    const l = await archesOf(fixture('libtiny-hip-ccob3.so'));
    const c = l.containers[1]!;
    const { file, dir } = damaged('libtiny-hip-ccob3.so', (b) => {
      // past the first blocks the listing reads, inside the zstd data
      b.fill(0x55, c.offset + c.size - 200, c.offset + c.size - 20);
      return b;
    });
    await expect(pruneFile(file, join(dir, 'out.so'), { keep: ['gfx1100'] })).rejects.toMatchObject({ code: 'E_FATBIN_MALFORMED', message: expect.stringContaining(`${file}: offset 0x${c.offset.toString(16)}: compressed bundle`) });
    expect(readdirSync(dir)).toEqual(['in.so']);
  });

  it('a CUDA fatbin whose size runs past .nv_fatbin', async () => {
    const sec = readelfSections(fixture('libtiny-cuda.so')).get('.nv_fatbin')!;
    const { file, dir } = damaged('libtiny-cuda.so', (b) => {
      b.writeBigUInt64LE(BigInt(sec.size), sec.offset + 8);
      return b;
    });
    await expect(pruneFile(file, join(dir, 'out.so'), { keep: ['sm_90'] })).rejects.toMatchObject({ message: `${file}: offset 0x${(sec.offset + 8).toString(16)}: CUDA fatbin: ${sec.size} bytes of entries run past the end of section .nv_fatbin (${sec.size - 16} bytes left)` });
    expect(readdirSync(dir)).toEqual(['in.so']);
  });

  it('a destination that is a symbolic link is refused (the rename would replace the link)', async () => {
    const dir = temp();
    copyFileSync(fixture('libtiny-hip.so'), join(dir, 'real.so'));
    symlinkSync('real.so', join(dir, 'link.so'));
    await expect(pruneFile(join(dir, 'link.so'), join(dir, 'link.so'), { keep: ['gfx1100'] })).rejects.toMatchObject({ code: 'E_FATBIN_DEST' });
    expect(lstatSync(join(dir, 'link.so')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(dir, 'real.so')).equals(readFileSync(fixture('libtiny-hip.so')))).toBe(true);
  });

  it('a file without device code, and an empty --keep', async () => {
    const dir = temp();
    await expect(pruneFile('/bin/ls', join(dir, 'ls'), { keep: ['gfx1100'] })).rejects.toMatchObject({ code: 'E_FATBIN_NONE' });
    const r = rocmflow(dir, ['fatbin', 'prune', fixture('libtiny-hip.so'), '--out', join(dir, 'x.so')]);
    expect(r.code).toBe(2);
    expect(existsSync(join(dir, 'x.so'))).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('rocmflow fatbin prune', () => {
  it('reports apparent and allocated sizes and what was dropped; --json has the record', () => {
    const dir = temp();
    const out = join(dir, 'out.so');
    const r = rocmflow(dir, ['fatbin', 'prune', fixture('libtiny-hip.so'), '--keep', 'gfx1100', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/kept gfx1100 \(9\.59 KiB\); dropped gfx1151 \(9\.59 KiB\): 2 entries from 2 containers/);
    expect(r.stdout).toMatch(/size 56\.4 KiB apparent; on disk [\d.]+ KiB \(source [\d.]+ KiB\)/);
    const j = JSON.parse(rocmflow(dir, ['fatbin', 'prune', fixture('libtiny-cuda.so'), '--keep', 'sm_90,sm_90a', '--out', out, '--json']).stdout);
    expect(j).toMatchObject({ format: 'cuda', keep: ['sm_90', 'sm_90a'], kept: { sm_90: expect.any(Number) } });
    expect(j.pruned.map((p: { arch: string }) => p.arch).sort()).toEqual(['compute_90', 'sm_80', 'sm_80']);
    expect(j.pruned[0]).toMatchObject({ section: '.nv_fatbin', containerKind: 'nv-fatbin', offset: expect.any(Number), size: expect.any(Number) });
  });
});
