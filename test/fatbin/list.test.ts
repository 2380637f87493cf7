import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { archesOf } from '../../src/fatbin/arches-of.js';
import { bufferSource } from '../../src/fatbin/byte-source.js';
import { readElfSections } from '../../src/fatbin/elf-sections.js';
import { REPO, rocmflow } from '../helpers/cli.js';
import { cleanTemps, cudaOracle, fixture, hipOracle, readelfSections, sha256, temp, zstdDecompressCcob } from './helpers.js';

afterAll(cleanTemps);

const HIP = ['libtiny-hip.so', 'libtiny-hip-ccob2.so', 'libtiny-hip-ccob3.so'];

describe('readElfSections', () => {
  it.each([...HIP, 'libtiny-cuda.so', '/bin/ls'])('agrees with readelf -S on %s', async (name) => {
    const file = name.startsWith('/') ? name : fixture(name);
    const ours = await readElfSections(bufferSource(readFileSync(file), file));
    const theirs = readelfSections(file);
    expect(ours!.filter((s) => s.index > 0).map((s) => s.name)).toEqual([...theirs.keys()].filter((n) => n !== 'NULL'));
    for (const s of ours!) if (theirs.has(s.name) && s.type !== 8) expect({ offset: s.offset, size: s.size }).toEqual(theirs.get(s.name));
  });

  it('is null for a file that is not ELF', async () => {
    expect(await readElfSections(bufferSource(Buffer.from('#!/bin/sh\necho hi\n'), 'x.sh'))).toBeNull();
  });
});

describe('archesOf on HIP libraries', () => {
  it.each(HIP)('%s: the bundles, targets and code objects clang-offload-bundler sees', async (name) => {
    const file = fixture(name);
    const oracle = hipOracle[name]!;
    const l = await archesOf(file);
    expect(l.format).toBe('hip');
    // one bundle per __hip_fatbin_wrapper (24 bytes each) in .hipFatBinSegment
    expect(l.containers).toHaveLength(readelfSections(file).get('.hipFatBinSegment')!.size / 24);
    expect(l.containers).toHaveLength(oracle.bundles.length);
    const bytes = readFileSync(file);
    const section = readelfSections(file).get('.hip_fatbin')!;
    l.containers.forEach((c, i) => {
      const o = oracle.bundles[i]!;
      expect(c.offset - section.offset).toBe(o.sectionOffset);
      expect(c.kind).toBe(o.compressed ? 'compressed-bundle' : 'bundle');
      expect(c.entries.map((e) => e.id).sort()).toEqual(o.targets);
      // the bytes at each entry's offset are the code object the bundler unbundles
      const inner = c.compressed ? zstdDecompressCcob(bytes.subarray(c.offset, c.offset + c.size)) : bytes;
      if (c.compressed) expect(inner.length).toBe(c.compressed.uncompressedSize);
      for (const e of c.entries) {
        expect(e.size).toBe(o.objects[e.id]!.size);
        expect(sha256(inner.subarray(e.offset, e.offset + e.size))).toBe(o.objects[e.id]!.sha256);
      }
    });
    const sum = (arch: string) => oracle.bundles.reduce((n, b) => n + b.objects[`hipv4-amdgcn-amd-amdhsa--${arch}`]!.size, 0);
    expect(l.arches).toEqual({ gfx1100: sum('gfx1100'), gfx1151: sum('gfx1151') });
  });

  it('reads the compressed headers: version, method, sizes', async () => {
    for (const [name, version, headerSize] of [['libtiny-hip-ccob2.so', 2, 24], ['libtiny-hip-ccob3.so', 3, 32]] as const) {
      const l = await archesOf(fixture(name));
      for (const c of l.containers) {
        expect(c.compressed).toMatchObject({ version, method: 'zstd', headerSize });
        expect(c.compressed!.totalSize).toBe(c.size);
        expect(c.compressed!.hash).toMatch(/^[0-9a-f]{16}$/);
      }
    }
  });
});

describe('archesOf on CUDA libraries', () => {
  it('libtiny-cuda.so: sm_80 and sm_90 cubins nvcc made, compute_90 PTX, in two fatbins', async () => {
    const file = fixture('libtiny-cuda.so');
    const l = await archesOf(file);
    expect(l.format).toBe('cuda');
    // one fatbin per wrapper (24 bytes each) in .nvFatBinSegment
    expect(l.containers).toHaveLength(readelfSections(file).get('.nvFatBinSegment')!.size / 24);
    expect(Object.keys(l.arches)).toEqual(['sm_80', 'sm_90', 'compute_90']);
    const bytes = readFileSync(file);
    const entries = l.containers.flatMap((c) => c.entries);
    for (const arch of ['sm_80', 'sm_90']) {
      const hashes = entries.filter((e) => e.arch === arch).map((e) => sha256(bytes.subarray(e.offset, e.offset + e.size)));
      expect(hashes).toContain(cudaOracle[arch]!.sha256);
    }
    const ptx = entries.find((e) => e.kind === 'ptx')!;
    expect(ptx).toMatchObject({ arch: 'compute_90', compression: 'zstd' });
    // the compressed PTX is a zstd frame of the declared size
    const frame = bytes.subarray(ptx.offset, ptx.offset + ptx.size);
    expect(frame.readUInt32LE(0)).toBe(0xfd2fb528);
    expect(l.arches['sm_80']).toBe(entries.filter((e) => e.arch === 'sm_80').reduce((n, e) => n + e.size, 0));
  });

  it('libtiny-cuda-variants.so: sm_90a, sm_100f, LZ4-compressed entries with their decompressed sizes', async () => {
    const l = await archesOf(fixture('libtiny-cuda-variants.so'));
    expect(Object.keys(l.arches)).toEqual(['sm_90a', 'sm_100f', 'compute_75']);
    const entries = l.containers.flatMap((c) => c.entries);
    expect(entries.every((e) => e.compression === 'lz4')).toBe(true);
    for (const arch of ['sm_90a', 'sm_100f']) expect(entries.filter((e) => e.arch === arch).map((e) => e.uncompressedSize)).toContain(cudaOracle[arch]!.size);
  });

  it('a library without device code has format null', async () => {
    const l = await archesOf('/bin/ls');
    expect(l).toMatchObject({ format: null, arches: {}, containers: [] });
  });
});

describe('rocmflow fatbin list', () => {
  it('--json prints one object per file: file, format, arches', () => {
    const files = [fixture('libtiny-hip.so'), fixture('libtiny-cuda.so'), '/bin/ls'];
    const r = rocmflow(REPO, ['fatbin', 'list', '--json', ...files]);
    expect(r.code).toBe(0);
    const objs = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(objs.map((o) => [o.file, o.format])).toEqual([[files[0], 'hip'], [files[1], 'cuda'], ['/bin/ls', null]]);
    expect(objs[0].arches).toEqual({ gfx1100: 9824, gfx1151: 9824 });
    expect(objs[0].containers).toBeUndefined();
    const detailed = JSON.parse(rocmflow(REPO, ['fatbin', 'list', '--json', '--containers', files[0]!]).stdout);
    expect(detailed.containers).toHaveLength(2);
  });

  it('prints each arch with its bytes', () => {
    const r = rocmflow(temp(), ['fatbin', 'list', fixture('libtiny-hip-ccob3.so')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/hip, 2 compressed bundles in \.hip_fatbin/);
    expect(r.stdout).toMatch(/^\s+gfx1100\s+9\.59 KiB\s+9,824 bytes$/m);
    expect(r.stdout).toMatch(/^\s+gfx1151\s+9\.59 KiB\s+9,824 bytes$/m);
  });

  it('a missing file is one error line naming it, exit 1', () => {
    const r = rocmflow(temp(), ['fatbin', 'list', 'nope.so']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^rocmflow: cannot read .*nope\.so: ENOENT/);
  });
});
