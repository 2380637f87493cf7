/**
 * What trim-runtime compares against: the "full" runtime as a hand-made
 * image would ship it, and the report's categories.
 *
 * The full runtime is every file of the layers (the GPU runtime tree, the
 * llama.cpp install) plus, from the base, every file and link directly in
 * each directory the closure took a shared library or the ELF interpreter
 * from (e.g. all of /usr/lib/x86_64-linux-gnu, not its subdirectories), and
 * the closure's other base entries as they are (links such as /lib64, data
 * files such as /etc/ld.so.cache). That is what a Dockerfile that does
 * `COPY /usr/lib/x86_64-linux-gnu/ ...` next to the ROCm tree ships.
 */
import { lstat, readdir } from 'node:fs/promises';
import { posix } from 'node:path';
import type { TarSource } from '../image/tar-entries.js';
import type { Closure } from '../runtime/closure.js';
import { hostPath, layerOf, normalizeInRoot, type RootLayout } from '../runtime/layout.js';

/** The full runtime: layer-ready entries (archive paths) and the file list the report counts. */
export interface FullRuntime {
  entries: TarSource[];
  files: { path: string; size: number }[];
  /** The base directories taken whole. */
  libraryDirs: string[];
}

const LIBRARY = /\.so(\.\d+)*$/;
/** Filled at run time by the sandbox or the container engine. */
const SPECIAL = new Set(['/dev', '/proc', '/sys', '/tmp', '/run']);

export async function fullRuntime(layout: RootLayout, closure: Closure): Promise<FullRuntime> {
  const entries = new Map<string, TarSource>();
  const files: { path: string; size: number }[] = [];
  const add = async (inRoot: string, host: string): Promise<'dir' | 'other'> => {
    const st = await lstat(host);
    const path = inRoot.slice(1);
    if (entries.has(path)) return st.isDirectory() ? 'dir' : 'other';
    if (st.isSymbolicLink()) entries.set(path, { path, source: host });
    else if (st.isDirectory()) {
      entries.set(path, { path, directory: true, mode: st.mode & 0o7777 });
      return 'dir';
    } else if (st.isFile()) {
      entries.set(path, { path, source: host });
      files.push({ path: inRoot, size: st.size });
    }
    return 'other';
  };
  const walk = async (inRoot: string, host: string, recursive: boolean): Promise<void> => {
    for (const name of (await readdir(host)).sort()) {
      const kind = await add(`${inRoot}/${name}`, posix.join(host, name));
      if (kind === 'dir' && recursive) await walk(`${inRoot}/${name}`, posix.join(host, name), true);
    }
  };
  for (const l of layout.layers) {
    const mount = normalizeInRoot(l.mount);
    await walk(mount, l.source, true);
  }
  // a base root of its own (a debootstrapped Debian with ROCm) is shipped whole: that is the image one would
  // otherwise build FROM it; the host's / is not, only the directories the closure took libraries from
  if (layout.base !== '/') {
    for (const name of (await readdir(layout.base)).sort()) {
      const inRoot = `/${name}`;
      if (layerOf(layout, inRoot) || SPECIAL.has(inRoot)) continue;
      const kind = await add(inRoot, posix.join(layout.base, name));
      if (kind === 'dir') await walk(inRoot, posix.join(layout.base, name), true);
    }
  }
  const baseEntries = closure.entries.filter((e) => !layerOf(layout, e.path));
  const dirs = new Set<string>();
  for (const e of baseEntries) if (e.type === 'file' && (LIBRARY.test(e.path) || e.reason === 'interpreter')) dirs.add(posix.dirname(e.path));
  for (const d of [...dirs].sort()) await walk(d, hostPath(layout, d), false);
  for (const e of baseEntries) if (e.type !== 'dir') await add(e.path, hostPath(layout, e.path));
  return { entries: [...entries.values()], files, libraryDirs: [...dirs].sort() };
}

const KERNEL = /(\/library\/|\/\.kpack\/|\/amdgcn\/|\.hsaco$|\.co$|\.kpack$|TensileLibrary)/;

/** Report categories: system, GPU runtime, GPU kernels per arch, llama.cpp, other. */
/** A distribution's ROCm libraries (Debian: /usr/lib/x86_64-linux-gnu/libamdhip64.so.6, ...). */
const DISTRO_ROCM = /^\/usr\/lib\/[^/]+\/(lib(amdhip64|hsa-runtime64|hsakmt|rocblas|hipblas|hipblaslt|rocsolver|rocsparse|rocprim|amd_comgr|roctx64|roctracer64|rocprofiler-register|rocm_smi64|rocm-core|hiprtc)[^/]*|rocblas\/.*|hipblaslt\/.*)$/;
/** The LLVM/clang libraries comgr pulls in, and a distribution's clang resource dir. */
const DISTRO_LLVM = /^\/usr\/lib\/([^/]+\/lib(LLVM|clang-cpp)[^/]*|llvm-\d+\/.*)$/;

export function pipelineCategory(p: string): string {
  if (p.startsWith('/opt/llama/')) return 'llama.cpp';
  if (DISTRO_ROCM.test(p) || (p.startsWith('/usr/lib/llvm-') && /\/amdgcn\//.test(p))) {
    if (KERNEL.test(p)) {
      const arch = /gfx\d+[a-z0-9]*/.exec(p.slice(p.lastIndexOf('/')))?.[0];
      return `GPU kernels (${arch ?? 'any arch'})`;
    }
    return 'GPU runtime';
  }
  if (DISTRO_LLVM.test(p)) return 'LLVM (comgr, compilers)';
  if (p.startsWith('/opt/rocm/')) {
    if (KERNEL.test(p)) {
      const arch = /gfx\d+[a-z0-9]*/.exec(p.slice(p.lastIndexOf('/')))?.[0] ?? /gfx\d+[a-z0-9]*/.exec(p)?.[0];
      return `GPU kernels (${arch ?? 'any arch'})`;
    }
    return 'GPU runtime';
  }
  if (/^\/(usr|lib|lib32|lib64|bin|sbin|etc)(\/|$)/.test(p)) return 'system';
  return 'other';
}
