import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import task from '../../tasks/build-llama.js';
import cpu from '../../plugins/cpu.js';
import gfx1151 from '../../plugins/gfx1151.js';
import { DEFAULT_LLAMA_CMAKE_FLAGS, parseBuildProgress, planBuild, type BuildLlamaOptions } from '../../src/llama/build.js';
import { runtimeRootFromDeps } from '../../src/pipeline/runtime.js';
import { PINNED_LLAMA_COMMIT, UPSTREAM_LLAMA_GIT } from '../../src/llama/source.js';
import { validateTask } from '../../src/plugin/load.js';
import type { ResolvedConfigView, ResolvedTarget, TaskContext } from '../../src/plugin/types.js';
import { llamaBundle } from '../helpers/llama.js';

function taskContext(target: ResolvedTarget, raw: unknown): TaskContext<BuildLlamaOptions> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'rocmflow-cache-'));
  const config: ResolvedConfigView = { configFile: null, projectRoot: process.cwd(), cacheDir, modelsDir: null, tasks: {}, targets: {} };
  const log = { info: () => {}, warn: () => {}, debug: () => {} };
  return { task: 'build-llama', target, options: task.options!.parse(raw, 'tasks.build-llama'), config, projectRoot: process.cwd(), log };
}

const cpuTarget: ResolvedTarget = { name: 'cpu', definition: cpu, detection: null, options: {} };

describe('the build-llama task', () => {
  let bundle: string;
  beforeAll(async () => {
    bundle = await llamaBundle();
  }, 900_000);

  it('is a well-formed task depending on base-root, fetch-rocm and gpu-coverage', () => {
    expect(validateTask(task, 'builtin').name).toBe('build-llama');
    expect(task.deps).toEqual(['base-root', 'fetch-rocm', 'gpu-coverage']);
    expect(task.outputs).toEqual(['llama', 'build-info.json', 'build.log']);
  });

  it('defaults to the pinned node-llama-cpp bundle and the small-runtime flags, declared without fetching', async () => {
    const ctx = taskContext(cpuTarget, undefined);
    expect(ctx.options.source).toEqual({ npm: 'node-llama-cpp@3.22.1' });
    expect(ctx.options.cmakeFlags).toEqual([...DEFAULT_LLAMA_CMAKE_FLAGS]);
    expect(ctx.options.targets).toEqual(['llama-server', 'llama-cli', 'llama-completion', 'llama-perplexity']);
    const inputs = await task.inputs!(ctx);
    expect(inputs.params).toMatchObject({ target: 'cpu', source: { kind: 'npm', package: 'node-llama-cpp@3.22.1' }, buildType: 'Release' });
    // nothing was fetched into the cache to say so
    expect(readdirSync(ctx.config.cacheDir)).toEqual([]);
    const git = await task.inputs!(taskContext(cpuTarget, { source: { git: UPSTREAM_LLAMA_GIT, ref: PINNED_LLAMA_COMMIT } }));
    expect(git.params).toMatchObject({ source: { kind: 'git', commit: PINNED_LLAMA_COMMIT } });
    expect(inputs.env).toEqual(['CC', 'CXX', 'CFLAGS', 'CXXFLAGS', 'LDFLAGS']);
    expect(inputs.tools).toEqual(['cmake --version', 'cc --version', 'c++ --version']);
  });

  it('declares the resolved commit, the target flags and user flags as inputs', async () => {
    const ctx = taskContext(cpuTarget, { source: { bundle }, cmakeFlags: ['-DGGML_OPENMP=OFF'] });
    const inputs = await task.inputs!(ctx);
    const params = inputs.params as { source: { commit: string }; flags: string[] };
    expect(params.source.commit).toBe(PINNED_LLAMA_COMMIT);
    expect(params.flags.slice(-3)).toEqual(['-DGGML_NATIVE=OFF', '-DCMAKE_BUILD_TYPE=Release', '-DGGML_OPENMP=OFF']);
    const gpu = await task.inputs!(taskContext({ name: 'gfx1151', definition: gfx1151, detection: null, options: { rocwmmaFlashAttention: true } }, { source: { bundle } }));
    expect((gpu.params as { flags: string[] }).flags).toEqual(expect.arrayContaining(['-DGGML_HIP=ON', '-DAMDGPU_TARGETS=gfx1151', '-DGGML_HIP_ROCWMMA_FATTN=ON']));
    expect(gpu.tools).toContain('hipcc --version');
  });
});

describe('the ROCm root from fetch-rocm', () => {
  it('a dir source points through rocm.json, an extracted one is rocm/, none has none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rocmflow-fetch-'));
    writeFileSync(join(dir, 'rocm.json'), JSON.stringify({ path: '/opt/rocm-7.1.1' }));
    expect(await runtimeRootFromDeps({ 'fetch-rocm': { outDir: dir, outputs: ['rocm.json', 'fetch.json'] } })).toBe('/opt/rocm-7.1.1');
    const ex = mkdtempSync(join(tmpdir(), 'rocmflow-fetch-'));
    mkdirSync(join(ex, 'rocm/lib'), { recursive: true });
    expect(await runtimeRootFromDeps({ 'fetch-rocm': { outDir: ex, outputs: ['rocm', 'fetch.json'] } })).toBe(join(ex, 'rocm'));
    const none = mkdtempSync(join(tmpdir(), 'rocmflow-fetch-'));
    writeFileSync(join(none, 'fetch.json'), JSON.stringify({ kind: 'none' }));
    expect(await runtimeRootFromDeps({ 'fetch-rocm': { outDir: none, outputs: ['fetch.json'] } })).toBeUndefined();
    expect(await runtimeRootFromDeps({})).toBeUndefined();
  });
});

describe('the build plan', () => {
  it('uses ccache as compiler launcher when present, else turns ggml’s own ccache probe off', () => {
    const base = { sourceDir: '/s', buildDir: '/b', flags: ['-DX=1'], targets: ['llama-server'], jobs: 3, env: { PATH: '/usr/bin' } };
    const chain = { cmake: 'cmake', cc: 'cc', cxx: 'c++', ninja: 'ninja', ccache: 'ccache', versions: {}, env: {} };
    const p = planBuild({ ...base, toolchain: chain, ccacheBase: '/w' });
    expect(p.configure).toEqual(['-S', '/s', '-B', '/b', '-G', 'Ninja', '-DCMAKE_C_COMPILER_LAUNCHER=ccache', '-DCMAKE_CXX_COMPILER_LAUNCHER=ccache', '-DX=1']);
    expect(p.build).toEqual(['--build', '/b', '--parallel', '3', '--target', 'llama-server']);
    expect(p.env.CCACHE_BASEDIR).toBe('/w');
    const hip = planBuild({ ...base, toolchain: { ...chain, hip: '/r/lib/llvm/bin/clang', env: { HIP_PATH: '/r' } } });
    expect(hip.configure).toContain('-DCMAKE_HIP_COMPILER_LAUNCHER=ccache');
    expect(hip.env.HIP_PATH).toBe('/r');
    const plain = planBuild({ ...base, toolchain: { ...chain, ninja: null, ccache: null } });
    expect(plain.configure).toEqual(['-S', '/s', '-B', '/b', '-DGGML_CCACHE=OFF', '-DX=1']);
  });

  it('reads ninja and make progress lines', () => {
    expect(parseBuildProgress('[12/138] Building CXX object src/llama.cpp.o')).toEqual({ done: 12, total: 138 });
    expect(parseBuildProgress('[ 45%] Building CXX object x.o')).toEqual({ done: 45, total: 100 });
    expect(parseBuildProgress('-- Configuring done')).toBeNull();
  });
});
