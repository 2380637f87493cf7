/**
 * Building inside a base root: the bubblewrap command binds the source,
 * build and ccache directories at the fixed in-root paths ccache's keys
 * depend on, with an environment of the root's own; the toolchain is probed
 * inside the root (here the host's own `/` stands in for a root: the probe
 * really runs in bubblewrap), a missing HIP compiler names the package list
 * to fix, and TheRock's clang is found through its layer at /opt/rocm.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ccacheStats, parseCcacheStats, probeRootToolchain, rootBuildArgv, rootBuildEnv, ROOT_BUILD } from '../../src/llama/root-build.js';
import { buildFlags, buildLlamaOptionsSchema } from '../../src/llama/build.js';
import gfx1151 from '../../plugins/gfx1151.js';
import { which } from '../../src/util/which.js';

const temps: string[] = [];
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});
function dirs() {
  const d = mkdtempSync(join(tmpdir(), 'rocmflow-rootbuild-'));
  temps.push(d);
  for (const s of ['src', 'build', 'ccache']) mkdirSync(join(d, s));
  writeFileSync(join(d, 'src', 'CMakeLists.txt'), 'x');
  return { root: '/', src: join(d, 'src'), build: join(d, 'build'), ccache: join(d, 'ccache') };
}

describe('a build in a base root', () => {
  it('binds source, build and ccache at /rocmflow and runs there with the root environment', () => {
    if (!which('bwrap')) return;
    const d = dirs();
    const argv = rootBuildArgv(d, ['/bin/sh', '-c', 'pwd; ls /rocmflow/src; echo $CCACHE_DIR $CCACHE_BASEDIR $PATH; touch /rocmflow/build/out; touch /rocmflow/src/no 2>/dev/null || echo ro']);
    const out = execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }).trim().split('\n');
    expect(out).toEqual([ROOT_BUILD.build, 'CMakeLists.txt', '/rocmflow/ccache /rocmflow /usr/local/bin:/usr/bin:/bin', 'ro']);
    expect(execFileSync('ls', [d.build], { encoding: 'utf8' }).trim()).toBe('out');
    expect(rootBuildEnv(true)).toMatchObject({ HIP_PATH: '/opt/rocm', PATH: '/opt/rocm/bin:/usr/local/bin:/usr/bin:/bin' });
  });

  it('probes the toolchain inside the root; a ROCm target without hipconfig names the packages to add', async () => {
    if (!which('bwrap')) return;
    const d = dirs();
    const chain = await probeRootToolchain(d, 'cpu', null);
    expect(chain.versions.cmake).toMatch(/^cmake version \d/);
    expect(chain.cmake).toBe('cmake');
    if (!which('hipconfig')) await expect(probeRootToolchain(d, 'rocm', null)).rejects.toThrow(/HIP compiler \(hipconfig -l\) in the base root \/.*add hipcc libhipblas-dev librocblas-dev to tasks\.base-root\.source\.debootstrap\.packages/);
    // TheRock at /opt/rocm on top of the root: its clang, by in-root path
    const tree = mkdtempSync(join(tmpdir(), 'rocmflow-therock-'));
    temps.push(tree);
    mkdirSync(join(tree, 'lib/llvm/bin'), { recursive: true });
    writeFileSync(join(tree, 'lib/llvm/bin/clang'), '#!/bin/sh\necho clang\n');
    chmodSync(join(tree, 'lib/llvm/bin/clang'), 0o755);
    const withLayer = await probeRootToolchain({ ...d, runtimeRoot: tree }, 'rocm', join(tree, 'lib/llvm/bin/clang'));
    expect(withLayer.hipCompiler).toBe('/opt/rocm/lib/llvm/bin/clang');
    if (which('ccache')) expect(await ccacheStats(d)).toMatchObject({ cache_miss: 0 });
  });

  it('adds -DGGML_NATIVE=OFF and the in-root HIP compiler to the flags', () => {
    const options = buildLlamaOptionsSchema.parse({ cmakeFlags: ['-DLLAMA_CURL=OFF'] }, 'tasks.build-llama');
    const flags = buildFlags({ name: 'gfx1151', definition: gfx1151, detection: null, options: {} }, options, undefined, { hipCompiler: '/usr/lib/llvm-21/bin/clang++' });
    expect(flags).toEqual(expect.arrayContaining(['-DGGML_HIP=ON', '-DGPU_TARGETS=gfx1151', '-DGGML_NATIVE=OFF', '-DCMAKE_HIP_COMPILER=/usr/lib/llvm-21/bin/clang++']));
    expect(flags.at(-1)).toBe('-DLLAMA_CURL=OFF');
    expect(buildFlags({ name: 'gfx1151', definition: gfx1151, detection: null, options: {} }, options)).not.toContain('-DGGML_NATIVE=OFF');
    expect(parseCcacheStats('direct_cache_hit\t12\ncache_miss\t3\nstats_updated_timestamp\t1700000000\n')).toEqual({ direct_cache_hit: 12, cache_miss: 3, stats_updated_timestamp: 1700000000 });
  });
});
