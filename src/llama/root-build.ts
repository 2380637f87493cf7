/**
 * llama.cpp built inside a base root (a debootstrapped Debian root with its
 * own cmake, compilers and ROCm) with bubblewrap: the root is read-only,
 * the source, build and ccache directories are bound at fixed in-root
 * paths, so compile commands, and so ccache's keys, are the same on every
 * machine and in every scratch directory:
 *
 *     /rocmflow/src     the llama.cpp source (read-only)
 *     /rocmflow/build   the build directory
 *     /rocmflow/ccache  the ccache directory (CCACHE_BASEDIR=/rocmflow)
 *
 * The toolchain is probed inside the root (`hipconfig -l` names the HIP
 * clang of a distribution's ROCm), never on the host.
 */
import { relative } from 'node:path';
import { RocmflowError, missingTool } from '../errors.js';
import { sandboxArgv, type SandboxBind } from '../runtime/sandbox.js';
import type { Toolchain } from './toolchain.js';

export const ROOT_BUILD = { top: '/rocmflow', src: '/rocmflow/src', build: '/rocmflow/build', ccache: '/rocmflow/ccache' } as const;
const ROOT_PATH = '/usr/local/bin:/usr/bin:/bin';
/** A TheRock tree is mounted here, as in the runtime layout. */
const ROCM_LAYER = '/opt/rocm';

/** Host directories of a build in a root. */
export interface RootBuildDirs {
  root: string;
  src: string;
  build: string;
  ccache: string;
  /** A GPU runtime tree (TheRock) mounted at /opt/rocm on top of the root. */
  runtimeRoot?: string;
}

/** The environment inside the root: nothing of the host's (its PATH names host tools). */
export function rootBuildEnv(withRuntime: boolean): Record<string, string> {
  const env: Record<string, string> = { PATH: ROOT_PATH, HOME: '/tmp', LC_ALL: 'C.UTF-8', CCACHE_DIR: ROOT_BUILD.ccache, CCACHE_BASEDIR: ROOT_BUILD.top };
  if (withRuntime) {
    Object.assign(env, { HIP_PATH: ROCM_LAYER, ROCM_PATH: ROCM_LAYER, HIP_DEVICE_LIB_PATH: `${ROCM_LAYER}/lib/llvm/amdgcn/bitcode`, PATH: `${ROCM_LAYER}/bin:${ROOT_PATH}` });
  }
  return env;
}

/** argv that runs `command` in the root with the build directories bound. */
export function rootBuildArgv(d: RootBuildDirs, command: string[], cwd: string = ROOT_BUILD.build): string[] {
  const binds: SandboxBind[] = [
    { source: d.src, dest: ROOT_BUILD.src },
    { source: d.build, dest: ROOT_BUILD.build, rw: true },
    { source: d.ccache, dest: ROOT_BUILD.ccache, rw: true },
  ];
  const layers = d.runtimeRoot ? [{ mount: ROCM_LAYER, source: d.runtimeRoot }] : [];
  return sandboxArgv({ layout: { base: d.root, layers }, binds, env: rootBuildEnv(!!d.runtimeRoot), cwd, command, method: 'bwrap' }).argv;
}

const PROBE = [
  'for t in cmake cc c++ ninja ccache; do v=$("$t" --version 2>/dev/null | head -n 1); printf "%s\\t%s\\n" "$t" "$v"; done',
  'h=$(hipconfig -l 2>/dev/null); printf "hipconfig-l\\t%s\\n" "$h"',
  'if [ -n "$h" ] && [ -x "$h/clang++" ]; then v=$("$h/clang++" --version | head -n 1); printf "hip\\t%s\\n" "$v"; fi',
].join('\n');

/**
 * The toolchain inside the root. For a ROCm target the HIP compiler is the
 * TheRock layer's clang when one is mounted, else `$(hipconfig -l)/clang++`
 * of the root's own ROCm.
 */
export async function probeRootToolchain(d: RootBuildDirs, family: string, hostHipCompiler: string | null, signal?: AbortSignal): Promise<Toolchain & { hipCompiler?: string }> {
  const argv = rootBuildArgv(d, ['/bin/sh', '-c', PROBE], '/');
  const res = await runArgv(argv, signal);
  const found: Record<string, string> = {};
  for (const line of res.split('\n')) {
    const [k, v] = line.split('\t');
    if (k && v) found[k] = v.trim();
  }
  const need = (tool: string, label: string, install: string) => {
    if (!found[tool]) throw missingTool(`${label} in the base root ${d.root}`, `add ${install} to tasks.base-root.source.debootstrap.packages`);
    return found[tool]!;
  };
  const versions: Record<string, string> = {
    cmake: need('cmake', 'cmake', 'cmake'),
    'C compiler': need('cc', 'C compiler', 'gcc'),
    'C++ compiler': need('c++', 'C++ compiler', 'g++'),
  };
  if (found.ninja) versions.ninja = found.ninja;
  if (found.ccache) versions.ccache = found.ccache;
  const chain: Toolchain & { hipCompiler?: string } = { cmake: 'cmake', cc: 'cc', cxx: 'c++', ninja: found.ninja ? 'ninja' : null, ccache: found.ccache ? 'ccache' : null, versions, env: {} };
  if (family === 'rocm') {
    if (d.runtimeRoot && hostHipCompiler) {
      chain.hipCompiler = `${ROCM_LAYER}/${relative(d.runtimeRoot, hostHipCompiler)}`;
      versions['HIP compiler'] = chain.hipCompiler;
    } else if (found['hipconfig-l'] && found.hip) {
      chain.hipCompiler = `${found['hipconfig-l']}/clang++`;
      versions['HIP compiler'] = found.hip;
    } else throw missingTool(`HIP compiler (hipconfig -l) in the base root ${d.root}`, 'add hipcc libhipblas-dev librocblas-dev to tasks.base-root.source.debootstrap.packages, or use a TheRock source in tasks.fetch-rocm');
    chain.hip = chain.hipCompiler;
  }
  return chain;
}

async function runArgv(argv: string[], signal?: AbortSignal): Promise<string> {
  const { execFile } = await import('node:child_process');
  return await new Promise((resolve, reject) => {
    execFile(argv[0]!, argv.slice(1), { encoding: 'utf8', signal, maxBuffer: 1 << 20, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) return reject(new RocmflowError('E_BASE_ROOT', `cannot run the toolchain probe in the base root: ${String(stderr).trim().split('\n').pop() || err.message}`));
      resolve(stdout);
    });
  });
}

/** ccache's counters (`ccache --print-stats`), for the hits a build got. */
export function parseCcacheStats(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\t(\d+)$/.exec(line.trim());
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

export async function ccacheStats(d: RootBuildDirs, signal?: AbortSignal): Promise<Record<string, number> | null> {
  try {
    return parseCcacheStats(await runArgv(rootBuildArgv(d, ['ccache', '--print-stats'], '/'), signal));
  } catch {
    return null;
  }
}
