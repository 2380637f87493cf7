/**
 * The host's strace, made runnable inside any root: the binary, its ELF
 * interpreter and its libraries are bound into one directory and started
 * through the interpreter with `--library-path`, so a trimmed root or a
 * foreign sysroot (which have no strace of their own) can be traced from
 * the inside, where the paths the workload uses are in-root paths. strace
 * loads before it starts tracing, so none of this appears in the trace.
 */
import { posix } from 'node:path';
import { missingTool } from '../errors.js';
import { DynamicLoader } from './ldso.js';
import type { SandboxBind } from './sandbox.js';
import { which } from './sandbox.js';

/** Where the kit is mounted inside the sandbox. */
export const STRACE_KIT_DIR = '/.rocmflow-strace';

/** Binds and the argv prefix that runs strace inside the sandbox. */
export interface StraceKit {
  binds: SandboxBind[];
  /** Prepend to strace's own arguments, e.g. `[...prefix, '-f', '-o', log, '--', ...cmd]`. */
  prefix: string[];
}

/** Build the kit from the host's strace; missing strace is an E_MISSING_TOOL saying what to install. */
export async function straceKit(): Promise<StraceKit> {
  const strace = which('strace');
  if (!strace) throw missingTool('strace', 'apt install strace');
  const loader = new DynamicLoader({ base: '/', layers: [] });
  const root = await loader.load(strace);
  if (!root) throw missingTool('strace', `${strace} is not an ELF program; apt install strace`);
  const binds: SandboxBind[] = [{ source: root.resolution.path, dest: `${STRACE_KIT_DIR}/strace` }];
  const names = new Set(['strace']);
  for (const r of await loader.closure(root)) {
    if (!r.found || r.via === 'loaded') continue;
    const name = posix.basename(r.name);
    if (names.has(name)) continue;
    names.add(name);
    binds.push({ source: r.found.resolution.path, dest: `${STRACE_KIT_DIR}/${name}` });
  }
  if (!root.elf.interp) return { binds, prefix: [`${STRACE_KIT_DIR}/strace`] };
  const interp = await loader.load(root.elf.interp);
  binds.push({ source: interp!.resolution.path, dest: `${STRACE_KIT_DIR}/ld.so` });
  return { binds, prefix: [`${STRACE_KIT_DIR}/ld.so`, '--library-path', STRACE_KIT_DIR, `${STRACE_KIT_DIR}/strace`] };
}
