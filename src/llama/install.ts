/**
 * Installs a llama.cpp build tree as a relocatable directory. This tree's
 * CMake writes executables and shared libraries side by side into
 * `<build>/bin`, and we link with RUNPATH `$ORIGIN`, so the installed layout
 * is the same: `llama/bin/` holds both, and works wherever it is mounted
 * (e.g. /opt/llama) without LD_LIBRARY_PATH for its own libraries.
 */
import { execFile } from 'node:child_process';
import { cp, lstat, mkdir, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RocmflowError } from '../errors.js';

/** What was installed, relative to the llama/ directory. */
export interface InstallResult {
  executables: string[];
  libraries: string[];
  /** RUNPATH/RPATH entries per installed ELF file. */
  runpaths: Record<string, string[]>;
  /** Entries that are not `$ORIGIN`-relative (they tie the build to a path on the build machine). */
  absoluteRunpaths: string[];
}

const isSharedLib = (name: string) => /^lib.+\.so(\.\d+)*$/.test(name);

async function isElf(file: string): Promise<boolean> {
  const fh = await open(file, 'r').catch(() => null);
  if (!fh) return false;
  try {
    const buf = Buffer.alloc(4);
    await fh.read(buf, 0, 4, 0);
    return buf.toString('latin1') === '\x7fELF';
  } finally {
    await fh.close();
  }
}

/** RUNPATH and RPATH entries of an ELF file, from `readelf -d`. */
export function readRunpath(file: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile('readelf', ['-d', '-W', file], { encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout) => {
      if (err) return reject(new RocmflowError('E_MISSING_TOOL', `readelf failed on ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'apt install binutils' : err.message}`));
      const out: string[] = [];
      for (const m of stdout.matchAll(/\((?:RUNPATH|RPATH)\)[^[]*\[([^\]]*)\]/g)) out.push(...m[1]!.split(':').filter(Boolean));
      resolve(out);
    });
  });
}

/** Shared libraries anywhere in the build tree (outside CMake's own dirs), for trees that do not collect them in bin/. */
async function findLibraries(dir: string, found: Map<string, string>): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name === 'CMakeFiles') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) await findLibraries(p, found);
    else if (isSharedLib(e.name) && !found.has(e.name)) found.set(e.name, p);
  }
}

/** Copy the executables of `targets` and every shared library from `buildDir` into `dest/bin`. */
export async function installLlama(buildDir: string, dest: string, targets: readonly string[]): Promise<InstallResult> {
  const binDir = join(buildDir, 'bin');
  const out = join(dest, 'bin');
  await mkdir(out, { recursive: true });
  const result: InstallResult = { executables: [], libraries: [], runpaths: {}, absoluteRunpaths: [] };
  for (const t of targets) {
    const src = join(binDir, t);
    const st = await lstat(src).catch(() => null);
    // a library target (e.g. "llama") has no executable: its .so is picked up below
    if (!st?.isFile()) continue;
    await cp(src, join(out, t), { preserveTimestamps: true });
    result.executables.push(`bin/${t}`);
  }
  const libs = new Map<string, string>();
  await findLibraries(buildDir, libs);
  for (const [name, src] of [...libs].sort()) {
    // keep the soname symlink chain (libllama.so -> libllama.so.0 -> libllama.so.0.5.0) as links
    await cp(src, join(out, name), { verbatimSymlinks: true, preserveTimestamps: true });
    result.libraries.push(`bin/${name}`);
  }
  if (result.executables.length === 0)
    throw new RocmflowError('E_BUILD', `llama.cpp build produced none of ${targets.join(', ')} in ${binDir}`);
  for (const rel of [...result.executables, ...result.libraries]) {
    const file = join(dest, rel);
    if (!(await lstat(file)).isFile() || !(await isElf(file))) continue;
    const rp = await readRunpath(file);
    result.runpaths[rel] = rp;
    for (const entry of rp) if (!entry.startsWith('$ORIGIN')) result.absoluteRunpaths.push(`${rel}: ${entry}`);
  }
  return result;
}
