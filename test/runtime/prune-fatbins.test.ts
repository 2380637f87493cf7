import type { TargetDefinition } from '../../src/plugin/types.js';
/**
 * trim-runtime's pruning step on a synthetic trimmed root holding the real
 * fat-binary fixtures (HIP plain and compressed bundles, CUDA fatbins), with
 * its manifest; and the target option that turns it on.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, linkSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { archesOf } from '../../src/fatbin/arches-of.js';
import { allocatedBytes, pruneRootFatbins } from '../../src/runtime/prune-fatbins.js';
import type { RootManifest } from '../../src/runtime/assemble.js';
import { pruneSettings } from '../../src/pipeline/coverage.js';
import { scanCoverage } from '../../src/fatbin/scan-coverage.js';
import gfx1100 from '../../plugins/gfx1100.js';
import cuda from '../../plugins/cuda.js';
import cpu from '../../plugins/cpu.js';
import { cleanTemps, cudaOracle, fixture, hipOracle, temp } from '../fatbin/helpers.js';

afterAll(cleanTemps);

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

/** A root with `files` (in-root path → fixture name) and its manifest, as assembleRoot writes it. */
function makeRoot(files: Record<string, string>, links: Record<string, string> = {}): { rootfs: string; manifest: RootManifest; manifestPath: string } {
  const dir = temp();
  const rootfs = join(dir, 'rootfs');
  const entries: RootManifest['entries'] = [];
  for (const [p, fx] of Object.entries(files)) {
    mkdirSync(join(rootfs, posix.dirname(p)), { recursive: true });
    copyFileSync(fixture(fx), join(rootfs, p));
    entries.push({ path: p, type: 'file', size: statSync(join(rootfs, p)).size, sha256: sha(join(rootfs, p)), mode: 0o644, reason: 'traced' });
  }
  for (const [p, of] of Object.entries(links)) {
    linkSync(join(rootfs, of), join(rootfs, p));
    entries.push({ path: p, type: 'file', size: statSync(join(rootfs, p)).size, mode: 0o644, reason: 'traced', hardlinkOf: of });
  }
  entries.sort((a, b) => (a.path < b.path ? -1 : 1));
  const primaries = entries.filter((e) => !e.hardlinkOf);
  const manifest = { entries, files: primaries.length, bytes: primaries.reduce((n, e) => n + e.size, 0) };
  const manifestPath = join(dir, 'rootfs.manifest.json');
  writeFileSync(manifestPath, JSON.stringify(manifest));
  return { rootfs, manifest, manifestPath };
}

const GFX1100 = 'hipv4-amdgcn-amd-amdhsa--gfx1100';

describe('pruning a trimmed root', () => {
  it('prunes every HIP library to gfx1100, keeps the code objects clang-offload-bundler unbundled, updates the manifest and hard links', async () => {
    const { rootfs, manifest, manifestPath } = makeRoot(
      { '/opt/llama/lib/libggml-hip.so': 'libtiny-hip.so', '/usr/lib/x86_64-linux-gnu/librocblas.so.4.4': 'libtiny-hip-ccob3.so', '/opt/llama/bin/llama-server': 'libtiny-hip.so' },
      { '/usr/lib/x86_64-linux-gnu/librocblas-link.so.4.4': '/usr/lib/x86_64-linux-gnu/librocblas.so.4.4' },
    );
    const allocatedBefore = await allocatedBytes(rootfs, manifest);
    const r = await pruneRootFatbins(rootfs, manifest, manifestPath, { target: 'gfx1100' });
    // shared libraries only: the executable (same bytes) is not a library and stays as it was
    expect(r.files.map((f) => [f.path, f.keep, f.dropped, f.skipped])).toEqual([
      ['/opt/llama/lib/libggml-hip.so', ['gfx1100'], { gfx1151: 9824 }, undefined],
      ['/usr/lib/x86_64-linux-gnu/librocblas.so.4.4', ['gfx1100'], { gfx1151: 9824 }, undefined],
    ]);
    expect(sha(join(rootfs, '/opt/llama/bin/llama-server'))).toBe(sha(fixture('libtiny-hip.so')));

    const hip = join(rootfs, '/opt/llama/lib/libggml-hip.so');
    const listing = await archesOf(hip);
    expect(listing.arches).toEqual({ gfx1100: 9824 });
    const bytes = readFileSync(hip);
    for (const [i, c] of listing.containers.entries()) {
      const e = c.entries.find((x) => x.id === GFX1100)!;
      expect(createHash('sha256').update(bytes.subarray(e.offset, e.offset + e.size)).digest('hex')).toBe(hipOracle['libtiny-hip.so']!.bundles[i]!.objects[GFX1100]!.sha256);
    }
    expect((await archesOf(join(rootfs, '/usr/lib/x86_64-linux-gnu/librocblas.so.4.4'))).arches).toEqual({ gfx1100: 9824 });

    // the manifest says what is on disk now, and what was pruned
    const written = JSON.parse(readFileSync(manifestPath, 'utf8')) as RootManifest;
    expect(written).toEqual(r.manifest);
    for (const e of written.entries.filter((x) => !x.hardlinkOf)) expect(e.sha256).toBe(sha(join(rootfs, e.path)));
    const pruned = written.entries.find((e) => e.path === '/opt/llama/lib/libggml-hip.so')!.pruned!;
    expect(pruned).toEqual({ keep: ['gfx1100'], dropped: { gfx1151: 9824 }, allocatedBefore: statSync(fixture('libtiny-hip.so')).blocks * 512, allocatedAfter: statSync(hip).blocks * 512 });
    // the plain bundles' dropped code objects became holes
    expect(pruned.allocatedAfter).toBeLessThan(pruned.allocatedBefore);
    expect(r.files[0]!.apparent).toBe(statSync(hip).size);
    expect(await allocatedBytes(rootfs, r.manifest)).toBeLessThan(allocatedBefore);
    // the hard link still shares the pruned file
    const a = statSync(join(rootfs, '/usr/lib/x86_64-linux-gnu/librocblas.so.4.4'));
    const b = statSync(join(rootfs, '/usr/lib/x86_64-linux-gnu/librocblas-link.so.4.4'));
    expect(b.ino).toBe(a.ino);

    // the coverage check of the pruned root still finds gfx1100 and nothing else
    const fs = await scanCoverage([{ dir: rootfs, as: '/' }], 'gfx1100');
    expect(fs.map((f) => [f.library, f.arches, f.missing])).toEqual([
      ['/opt/llama/lib/libggml-hip.so', ['gfx1100'], false],
      // one of the two hard links, whichever the walk met first
      [expect.stringMatching(/^\/usr\/lib\/x86_64-linux-gnu\/librocblas(-link)?\.so\.4\.4$/), ['gfx1100'], false],
    ]);
  });

  it('leaves a library without code for the target whole, and one with only kept arches untouched', async () => {
    const { rootfs, manifest, manifestPath } = makeRoot({ '/usr/lib/libggml-hip.so': 'libtiny-hip.so' });
    const r = await pruneRootFatbins(rootfs, manifest, manifestPath, { target: 'gfx1030' });
    expect(r.files).toMatchObject([{ keep: [], skipped: 'no code for gfx1030: left whole' }]);
    expect(sha(join(rootfs, '/usr/lib/libggml-hip.so'))).toBe(sha(fixture('libtiny-hip.so')));
    await pruneRootFatbins(rootfs, manifest, manifestPath, { target: 'gfx1100' });
    const again = await pruneRootFatbins(rootfs, JSON.parse(readFileSync(manifestPath, 'utf8')), manifestPath, { target: 'gfx1100' });
    expect(again.files).toMatchObject([{ keep: ['gfx1100'], skipped: 'carries only kept arches' }]);
  });

  it('CUDA at 9.0: keeps sm_90 (and the compute_90 PTX unless the fallback is off); an explicit list keeps exactly it', async () => {
    const { rootfs, manifest, manifestPath } = makeRoot({ '/usr/local/cuda/lib64/libtiny-cuda.so': 'libtiny-cuda.so', '/usr/local/cuda/lib64/libtiny-cuda-variants.so.1': 'libtiny-cuda-variants.so' });
    const r = await pruneRootFatbins(rootfs, manifest, manifestPath, { target: '9.0', fallback: false });
    expect(r.files.map((f) => [f.path.split('/').pop(), f.keep])).toEqual([['libtiny-cuda-variants.so.1', ['sm_90a']], ['libtiny-cuda.so', ['sm_90']]]);
    const lib = join(rootfs, '/usr/local/cuda/lib64/libtiny-cuda.so');
    const listing = await archesOf(lib);
    expect(Object.keys(listing.arches)).toEqual(['sm_90']);
    // the kept cubin is the one nvcc wrote for sm_90 (its payload, uncompressed in this fixture)
    const bytes = readFileSync(lib);
    const hashes = listing.containers.flatMap((c) => c.entries).filter((x) => x.arch === 'sm_90').map((x) => createHash('sha256').update(bytes.subarray(x.offset, x.offset + x.size)).digest('hex'));
    expect(hashes).toContain(cudaOracle.sm_90!.sha256);

    const other = makeRoot({ '/lib64/libtiny-cuda.so': 'libtiny-cuda.so' });
    const withPtx = await pruneRootFatbins(other.rootfs, other.manifest, other.manifestPath, { target: '9.0' });
    expect(withPtx.files[0]!.keep).toEqual(['sm_90', 'compute_90']);
    const listed = makeRoot({ '/lib64/libtiny-cuda.so': 'libtiny-cuda.so' });
    const explicit = await pruneRootFatbins(listed.rootfs, listed.manifest, listed.manifestPath, { target: '9.0', keep: ['sm_80'] });
    expect(explicit.files[0]!.keep).toEqual(['sm_80']);
    expect(Object.keys((await archesOf(join(listed.rootfs, '/lib64/libtiny-cuda.so'))).arches)).toEqual(['sm_80']);
  });
});

describe('a library rocmflow cannot parse', () => {
  it('is shipped as it was and named, by the prune and by the coverage check', async () => {
    const { rootfs, manifest, manifestPath } = makeRoot({ '/usr/lib/libggml-hip.so': 'libtiny-hip.so', '/usr/lib/libcut.so.1': 'libtiny-hip.so' });
    const cut = join(rootfs, '/usr/lib/libcut.so.1');
    truncateSync(cut, 20_000);
    const before = sha(cut);
    const r = await pruneRootFatbins(rootfs, { ...manifest, entries: manifest.entries.map((e) => (e.path.endsWith('libcut.so.1') ? { ...e, size: 20_000, sha256: before } : e)) }, manifestPath, { target: 'gfx1100' });
    expect(r.files.map((f) => f.path)).toEqual(['/usr/lib/libggml-hip.so']);
    expect(r.unreadable).toEqual([expect.stringMatching(/libcut\.so\.1: offset 0x[0-9a-f]+: /)]);
    expect(sha(cut)).toBe(before);
    const fs = await scanCoverage([{ dir: rootfs, as: '/' }], 'gfx1100');
    expect(fs.find((f) => f.library === '/usr/lib/libcut.so.1')).toMatchObject({ missing: false, note: expect.stringMatching(/^not judged: .*libcut\.so\.1: offset/) });
  });
});

describe('the pruneFatBinaries target option', () => {
  const t = (definition: TargetDefinition<any>, options: Record<string, unknown>) => ({ definition, options });
  it('is on by default for AMD targets, off for CUDA and the CPU; takes true, false or a list', () => {
    expect(pruneSettings(t(gfx1100, {}))).toEqual({ fallback: true });
    expect(pruneSettings(t(gfx1100, { pruneFatBinaries: false }))).toBeNull();
    expect(pruneSettings(t(cuda, {}))).toBeNull();
    expect(pruneSettings(t(cuda, { pruneFatBinaries: true, pruneFallback: false }))).toEqual({ fallback: false });
    expect(pruneSettings(t(cuda, { pruneFatBinaries: ['sm_90', 'sm_90a'] }))).toEqual({ keep: ['sm_90', 'sm_90a'], fallback: true });
    expect(pruneSettings(t(cpu, { pruneFatBinaries: true }))).toBeNull();
    expect(() => pruneSettings(t(gfx1100, { pruneFatBinaries: [] }))).toThrow(/targets\.gfx1100\.pruneFatBinaries: an empty list/);
  });

  it("is part of each GPU target's options: accepted, and a wrong value names the key", () => {
    const ctx = (options: Record<string, unknown>) => ({ detection: null, options });
    expect(cuda.cmakeFlags(ctx({ pruneFatBinaries: true, computeCapability: '9.0' }))).toContain('-DCMAKE_CUDA_ARCHITECTURES=90');
    expect(gfx1100.cmakeFlags(ctx({ pruneFatBinaries: ['gfx1100', 'gfx11-generic'], pruneFallback: false }))).toContain('-DGPU_TARGETS=gfx1100');
    // target options are checked once, at load, by each target's schema
    expect(() => cuda.options!.parse({ pruneFatBinaries: 'yes' }, 'targets.cuda')).toThrow(/targets\.cuda\.pruneFatBinaries: expected true, false or a list of arches/);
    expect(() => gfx1100.options!.parse({ pruneFatBinary: true }, 'targets.gfx1100')).toThrow(/targets\.gfx1100\.pruneFatBinary: unknown key \(did you mean "pruneFatBinaries"\?\)/);
  });
});
