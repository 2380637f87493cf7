/**
 * Builds llama.cpp for a target: resolve and check out the source, check the
 * toolchain, configure and build with CMake (ccache when present), install a
 * relocatable `llama/bin/`, and record what went in (`build-info.json`) and
 * everything the tools printed (`build.log`). The task in
 * tasks/build-llama.ts is a thin wrapper, so this runs without the engine.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as s from '../util/schema.js';
import type { Json, Logger, Progress, ResolvedTarget, TaskInputs } from '../plugin/types.js';
import type { InstallResult } from './install.js';
import { NPM_LLAMA_SOURCE, prepareSource, resolveSource, sourceInputs, sourceSpecSchema, type SourceSpec } from './source.js';
import type { Toolchain } from './toolchain.js';
import type { RootBuildDirs } from './root-build.js';

/** `tasks.build-llama` options, defaults filled. */
export interface BuildLlamaOptions {
  /**
   * Where llama.cpp comes from. The default needs only the npm registry:
   * the git bundle of the pinned commit that node-llama-cpp ships.
   * @default { npm: "node-llama-cpp@3.22.1" }
   */
  source: SourceSpec;
  /** Appended after the target's flags (so they win). @default DEFAULT_LLAMA_CMAKE_FLAGS */
  cmakeFlags: string[];
  /** CMake build targets. @default ["llama-server", "llama-cli", "llama-completion", "llama-perplexity"] */
  targets: string[];
  /** Parallel compile jobs. @default the machine's available parallelism */
  jobs?: number;
  /** @default "Release" */
  buildType: string;
}

export const DEFAULT_BUILD_TARGETS = ['llama-server', 'llama-cli', 'llama-completion', 'llama-perplexity'];

/**
 * The default `cmakeFlags`, for a small runtime: no libcurl (model
 * downloads) and no OpenSSL (HTTPS): the runtime serves local models over
 * HTTP; ggml's own thread pool instead of OpenMP (one library less); inline
 * C++ functions not exported from the shared libraries (smaller symbol
 * tables); unused sections dropped at link time. Setting `cmakeFlags`
 * replaces the list: spread this one to add to it.
 */
export const DEFAULT_LLAMA_CMAKE_FLAGS: readonly string[] = [
  '-DLLAMA_CURL=OFF',
  '-DLLAMA_OPENSSL=OFF',
  '-DGGML_OPENMP=OFF',
  '-DCMAKE_C_FLAGS=-ffunction-sections -fdata-sections',
  '-DCMAKE_CXX_FLAGS=-fvisibility-inlines-hidden -ffunction-sections -fdata-sections',
  '-DCMAKE_SHARED_LINKER_FLAGS=-Wl,--gc-sections -Wl,--as-needed',
  '-DCMAKE_EXE_LINKER_FLAGS=-Wl,--gc-sections -Wl,--as-needed',
];

const rawSchema = s.object({
  source: s.optional(sourceSpecSchema),
  cmakeFlags: s.optional(s.array(s.string())),
  targets: s.optional(s.array(s.string())),
  jobs: s.optional(s.number({ integer: true, min: 1 })),
  buildType: s.optional(s.literal('Release', 'RelWithDebInfo', 'Debug', 'MinSizeRel')),
});

/** Validates `tasks.build-llama` and fills the defaults. */
export const buildLlamaOptionsSchema: s.Schema<BuildLlamaOptions> = {
  describe: 'an object',
  parse(v, p) {
    const o = rawSchema.parse(v, p);
    return {
      source: o.source ?? NPM_LLAMA_SOURCE,
      cmakeFlags: o.cmakeFlags ?? [...DEFAULT_LLAMA_CMAKE_FLAGS],
      targets: o.targets && o.targets.length ? o.targets : DEFAULT_BUILD_TARGETS,
      ...(o.jobs !== undefined ? { jobs: o.jobs } : {}),
      buildType: o.buildType ?? 'Release',
    };
  },
};

/** A build inside a base root: the in-root HIP compiler (`$(hipconfig -l)/clang++`), when the target is a ROCm one. */
export interface InRootBuild {
  hipCompiler?: string;
}

/** The flags that describe the build (without machine paths): what the fingerprint covers. */
export function buildFlags(target: ResolvedTarget, options: BuildLlamaOptions, runtimeRoot?: string, inRoot?: InRootBuild): string[] {
  const ctx = { detection: target.detection, options: target.options, ...(runtimeRoot ? { runtimeRoot } : {}) };
  // built in one root to run on other machines: no -march=native; the root's own HIP compiler (ROCm in /usr)
  const targetFlags = target.definition.cmakeFlags(ctx);
  const rootFlags = inRoot ? ['-DGGML_NATIVE=OFF', ...(inRoot.hipCompiler ? [`-DCMAKE_HIP_COMPILER=${inRoot.hipCompiler}`] : [])] : [];
  return [
    '-DBUILD_SHARED_LIBS=ON',
    '-DLLAMA_BUILD_TESTS=OFF',
    '-DLLAMA_BUILD_EXAMPLES=OFF',
    // link everything with RUNPATH $ORIGIN: the installed bin/ is relocatable
    '-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON',
    '-DCMAKE_INSTALL_RPATH=$ORIGIN',
    // before the target's flags, so a target that asks for -DGGML_NATIVE=ON (targets.cpu.native) still gets it
    ...rootFlags.filter((f) => !targetFlags.includes(f)),
    ...targetFlags,
    `-DCMAKE_BUILD_TYPE=${options.buildType}`,
    ...options.cmakeFlags,
  ];
}

/** The configure and build commands: a pure plan (printed by dry runs, tested without building). */
export interface BuildPlan {
  configure: string[];
  build: string[];
  env: NodeJS.ProcessEnv;
}

export function planBuild(p: { sourceDir: string; buildDir: string; flags: string[]; toolchain: Toolchain; targets: string[]; jobs: number; env: NodeJS.ProcessEnv; ccacheBase?: string }): BuildPlan {
  const launcher = p.toolchain.ccache
    ? ['C', 'CXX', ...(p.toolchain.hip ? ['HIP'] : []), ...(p.toolchain.nvcc ? ['CUDA'] : [])].map((l) => `-DCMAKE_${l}_COMPILER_LAUNCHER=ccache`)
    : ['-DGGML_CCACHE=OFF'];
  const env: NodeJS.ProcessEnv = { ...p.env, ...p.toolchain.env };
  // relative paths in ccache's hash: a rebuild in another scratch dir still hits
  if (p.toolchain.ccache && p.ccacheBase) env.CCACHE_BASEDIR = p.ccacheBase;
  return {
    configure: ['-S', p.sourceDir, '-B', p.buildDir, ...(p.toolchain.ninja ? ['-G', 'Ninja'] : []), ...launcher, ...p.flags],
    build: ['--build', p.buildDir, '--parallel', String(p.jobs), '--target', ...p.targets],
    env,
  };
}

/** `[12/345]` (ninja) or `[ 45%]` (make) at the start of a build line. */
export function parseBuildProgress(line: string): { done: number; total: number } | null {
  const n = /^\[(\d+)\/(\d+)\]/.exec(line);
  if (n) return { done: Number(n[1]), total: Number(n[2]) };
  const m = /^\[\s*(\d+)%\]/.exec(line);
  if (m) return { done: Number(m[1]), total: 100 };
  return null;
}

/**
 * What `inputs()` declares for a build; `inRoot` when it runs inside a base
 * root other than the host's. A pinned source (a commit, an exact npm
 * version) is declared as it is written, without fetching anything; a
 * branch, tag, bundle or local tree is resolved to its commit (a branch
 * costs one `git ls-remote`).
 */
export async function buildLlamaInputs(target: ResolvedTarget, options: BuildLlamaOptions, cacheDir: string, signal?: AbortSignal, inRoot = false): Promise<TaskInputs> {
  const { params: source, files } = await sourceInputs(options.source, { cacheDir, signal });
  // in a base root the tools are the root's: its record (a dependency) holds their package versions
  const tools = inRoot ? [] : ['cmake --version', 'cc --version', 'c++ --version'];
  if (!inRoot && target.definition.family === 'rocm') tools.push('hipcc --version');
  if (!inRoot && target.definition.family === 'cuda') tools.push('nvcc --version');
  const rootBuild = inRoot ? { ...(target.definition.family === 'rocm' ? { hipCompiler: '$(hipconfig -l)/clang++' } : {}) } : undefined;
  return {
    params: {
      target: target.name,
      source,
      // the runtime root itself is covered by fetch-rocm's output digest
      flags: buildFlags(target, options, undefined, rootBuild),
      targets: options.targets,
      buildType: options.buildType,
    },
    ...(files.length ? { files } : {}),
    env: ['CC', 'CXX', 'CFLAGS', 'CXXFLAGS', 'LDFLAGS'],
    tools,
  };
}

/** Everything a build needs; mirrors the task's RunContext so tests can call it directly. */
export interface BuildLlamaParams {
  target: ResolvedTarget;
  options: BuildLlamaOptions;
  /** The fetched ROCm/CUDA prefix. */
  runtimeRoot?: string;
  /** Build inside this root (bubblewrap) instead of on the host; `/` or absent: the host. */
  baseRoot?: string;
  /** What the base root is (base-root's record), for build-info.json. */
  baseRootRecord?: Json;
  /** Host ccache directory bound into the root. @default <cacheDir>/ccache */
  ccacheDir?: string;
  outDir: string;
  workDir: string;
  cacheDir: string;
  signal?: AbortSignal;
  log?: Logger;
  progress?: Progress;
  env?: NodeJS.ProcessEnv;
}

/** Written to `build-info.json`. */
export interface BuildInfo {
  target: string;
  arch: string | null;
  source: Json;
  commit: string | null;
  /** The commit's time, seconds since the epoch (the images' `created` unless SOURCE_DATE_EPOCH is set). */
  commitTime: number | null;
  describe: string;
  flags: string[];
  buildTargets: string[];
  buildType: string;
  runtimeRoot: string | null;
  /** Where it was built: the host, or a base root (kind, OS, packages count). */
  builtIn: Json;
  /** ccache hits and misses of this build, when ccache ran. */
  ccacheStats: { hits: number; misses: number } | null;
  /** When the build started (ISO time). */
  startedAt: string;
  tools: Record<string, string>;
  env: Record<string, string>;
  ccache: boolean;
  generator: string;
  installed: InstallResult;
  durationSeconds: number;
}

/** Build and install llama.cpp into `outDir` (`llama/`, `build-info.json`, `build.log`). */
export async function buildLlama(p: BuildLlamaParams): Promise<BuildInfo> {
  // loaded for a build, not for the fresh check that only needs buildLlamaInputs
  const [{ execStreaming }, { installLlama }, { checkToolchain }, { ccacheStats, probeRootToolchain, ROOT_BUILD, rootBuildArgv }, { findHipCompiler }] = await Promise.all([
    import('./exec.js'), import('./install.js'), import('./toolchain.js'), import('./root-build.js'), import('../gpu/amd-target.js'),
  ]);
  const started = Date.now();
  const env = p.env ?? process.env;
  const logFile = join(p.outDir, 'build.log');
  const logStream = createWriteStream(logFile);
  const write = (line: string) => logStream.write(line + '\n');
  const inRoot = !!p.baseRoot && p.baseRoot !== '/';
  try {
    // a missing host tool is reported before anything is fetched
    const hostChain = inRoot ? null : await checkToolchain(p.target.definition, { runtimeRoot: p.runtimeRoot, env, targetOptions: p.target.options });
    p.log?.info(`llama.cpp source: resolving ${JSON.stringify(p.options.source)}`);
    const resolved = await resolveSource(p.options.source, { cacheDir: p.cacheDir, signal: p.signal });
    const src = await prepareSource(p.options.source, { cacheDir: p.cacheDir, dest: join(p.workDir, 'src'), signal: p.signal, resolved });
    p.log?.info(`llama.cpp ${src.describe} (${src.commit ?? 'local tree'})`);
    const buildDir = join(p.workDir, 'build');
    const jobs = p.options.jobs ?? availableParallelism();
    let toolchain: Toolchain;
    let flags: string[];
    let plan: BuildPlan;
    let run: (args: string[]) => [string, string[]];
    let dirs: RootBuildDirs | null = null;
    if (inRoot) {
      await mkdir(buildDir, { recursive: true });
      const ccacheDir = p.ccacheDir ?? join(p.cacheDir, 'ccache');
      await mkdir(ccacheDir, { recursive: true });
      dirs = { root: p.baseRoot!, src: src.dir, build: buildDir, ccache: ccacheDir, ...(p.runtimeRoot ? { runtimeRoot: p.runtimeRoot } : {}) };
      const hostHip = p.runtimeRoot ? findHipCompiler(p.runtimeRoot, p.target.options.hipCompiler === 'hipcc' ? 'hipcc' : 'clang') : null;
      const chain = await probeRootToolchain(dirs, p.target.definition.family, hostHip, p.signal);
      toolchain = chain;
      flags = buildFlags(p.target, p.options, undefined, { ...(chain.hipCompiler ? { hipCompiler: chain.hipCompiler } : {}) });
      if (p.runtimeRoot) flags.splice(flags.length - 1 - p.options.cmakeFlags.length, 0, '-DCMAKE_PREFIX_PATH=/opt/rocm');
      plan = planBuild({ sourceDir: ROOT_BUILD.src, buildDir: ROOT_BUILD.build, flags, toolchain, targets: p.options.targets, jobs, env: {}, ccacheBase: ROOT_BUILD.top });
      const d = dirs;
      run = (args) => {
        const argv = rootBuildArgv(d, ['cmake', ...args]);
        return [argv[0]!, argv.slice(1)];
      };
      p.log?.info(`building in the base root ${p.baseRoot} (bubblewrap; source at ${ROOT_BUILD.src}, ccache ${ccacheDir} at ${ROOT_BUILD.ccache})`);
    } else {
      toolchain = hostChain!;
      flags = buildFlags(p.target, p.options, p.runtimeRoot);
      plan = planBuild({ sourceDir: src.dir, buildDir, flags, toolchain, targets: p.options.targets, jobs, env, ccacheBase: p.workDir });
      run = (args) => [toolchain.cmake, args];
    }
    const hint = `see ${logFile}`;
    const before = dirs && toolchain.ccache ? await ccacheStats(dirs, p.signal) : null;

    write(`$ cmake ${plan.configure.join(' ')}`);
    const [c0, a0] = run(plan.configure);
    await execStreaming(c0, a0, { env: plan.env, signal: p.signal, onLine: write, what: 'llama.cpp cmake configure', hint });

    write(`$ cmake ${plan.build.join(' ')}`);
    const handle = p.progress?.start(`build llama.cpp (${p.target.name})`, { unit: 'steps' });
    const [c1, a1] = run(plan.build);
    await execStreaming(c1, a1, {
      env: plan.env,
      signal: p.signal,
      what: 'llama.cpp build',
      hint,
      onLine: (line) => {
        write(line);
        const pr = parseBuildProgress(line);
        if (pr) handle?.update(pr.done, pr.total);
      },
    });
    handle?.done();
    const after = dirs && toolchain.ccache ? await ccacheStats(dirs, p.signal) : null;
    const stat = (st: Record<string, number> | null, ...keys: string[]) => keys.reduce((n, k) => n + (st?.[k] ?? 0), 0);
    const ccache = before && after
      ? { hits: stat(after, 'direct_cache_hit', 'preprocessed_cache_hit') - stat(before, 'direct_cache_hit', 'preprocessed_cache_hit'), misses: stat(after, 'cache_miss') - stat(before, 'cache_miss') }
      : null;
    if (ccache) write(`ccache: ${ccache.hits} hits, ${ccache.misses} misses`);

    const installed = await installLlama(buildDir, join(p.outDir, 'llama'), p.options.targets);
    for (const a of installed.absoluteRunpaths) p.log?.warn(`not relocatable: RUNPATH ${a}`);
    const recordedEnv: Record<string, string> = {};
    for (const k of ['CC', 'CXX', 'CFLAGS', 'CXXFLAGS', 'LDFLAGS']) if (env[k] !== undefined) recordedEnv[k] = env[k]!;
    const info: BuildInfo = {
      target: p.target.name,
      arch: p.target.definition.arch ?? null,
      source: resolved.params,
      commit: src.commit,
      commitTime: src.commitTime,
      describe: src.describe,
      flags,
      buildTargets: p.options.targets,
      buildType: p.options.buildType,
      runtimeRoot: p.runtimeRoot ?? null,
      builtIn: inRoot ? { root: 'base-root', ...(p.baseRootRecord ? { record: p.baseRootRecord } : {}), sandbox: 'bwrap', paths: { ...ROOT_BUILD } } : { root: 'host' },
      ccacheStats: ccache,
      startedAt: new Date(started).toISOString(),
      tools: toolchain.versions,
      env: recordedEnv,
      ccache: toolchain.ccache !== null,
      generator: toolchain.ninja ? 'Ninja' : 'Unix Makefiles',
      installed,
      durationSeconds: Math.round((Date.now() - started) / 100) / 10,
    };
    await writeFile(join(p.outDir, 'build-info.json'), JSON.stringify(info, null, 2) + '\n');
    return info;
  } catch (e) {
    write(`error: ${(e as Error).message}`);
    throw e;
  } finally {
    await new Promise<void>((r) => logStream.end(r));
  }
}
