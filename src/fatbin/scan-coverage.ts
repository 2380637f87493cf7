/**
 * Does a GPU runtime carry code for the target? Walks a root (or parts of
 * one) and judges two things: every kernel directory a shipped library reads
 * at run time (rocBLAS/hipBLASLt `library/`, TheRock's `.kpack/`), by the
 * arches in its file names; and every shared library with device code, by
 * the arches of its fat binary. Only file names and ELF/bundle headers are
 * read, so a 3 GB ROCm costs seconds.
 */
import { lstat, readdir } from 'node:fs/promises';
import { posix } from 'node:path';
import { sortArches, readFatbins } from './arches-of.js';
import { withFileSource } from './byte-source.js';
import { covers, type CoverageKind } from './coverage.js';
import { readElfSections } from './elf-sections.js';
import type { FatbinFormat } from './types.js';
import { isRocmflowError } from '../errors.js';

/** One library's or kernel directory's verdict. */
export interface CoverageFinding {
  /**
   * The library: the in-root path of a shared library with device code, or
   * for a kernel directory the library that reads it (`rocblas`,
   * `hipblaslt`, `kpack`, else the directory's parent name).
   */
  library: string;
  /** The kernel directory (in-root path); null for a library's own fat binary. */
  directory: string | null;
  kind: 'fatbin' | 'kernels';
  /** For a fat binary: `hip` or `cuda`. */
  format?: FatbinFormat;
  /** Arches found, in version order. */
  arches: string[];
  /** Kernel directories: files in it; and of those, files naming no arch (rocBLAS's arch-neutral fallback `.dat` files). */
  files?: number;
  neutralFiles?: number;
  /** The found arches that run on the target, best first. */
  coveredBy: string[];
  /** How the first of `coveredBy` covers the target. */
  how: CoverageKind | null;
  /** True when nothing found runs on the target. */
  missing: boolean;
  /** Why a finding is not judged by its own arches (device code moved to `.kpack` archives). */
  note?: string;
}

/** A tree to scan: `dir` on this machine, reported as `as` (its in-root path, e.g. `/opt/rocm` or `/`). */
export interface ScanRoot {
  dir: string;
  as: string;
  /** Only these subdirectories of `dir` (relative), e.g. `usr/lib` of a whole system root. @default the whole tree */
  only?: string[];
}

/**
 * An arch in a file or directory name: `gfx1100`, `gfx90a`, `gfx11-generic`,
 * `gfx9-4-generic`, with xnack/sramecc variants written `-xnack+` or `:xnack+`.
 */
const ARCH_IN_NAME = /gfx(?:\d+(?:-\d+)?-generic|\d+[a-f]?)((?:[-:](?:xnack|sramecc)[+-])*)(?![0-9a-z])/g;

/** The arches a kernel file's path (relative to its kernel directory) names, as target ids (`gfx90a:xnack+`). */
export function archesInName(rel: string): string[] {
  const out = new Set<string>();
  for (const m of rel.matchAll(ARCH_IN_NAME)) {
    const base = m[0].slice(0, m[0].length - m[1]!.length);
    const feats = [...m[1]!.matchAll(/[-:]((?:xnack|sramecc)[+-])/g)].map((f) => f[1]!);
    out.add([base, ...feats].join(':'));
  }
  return [...out];
}

/** Is `rel` (a directory path inside a root, `/`-separated) a kernel directory libraries read at run time? */
export function kernelDirLibrary(dirPath: string, names: readonly string[]): string | null {
  const parts = dirPath.split('/').filter(Boolean);
  const base = parts.at(-1) ?? '';
  if (base === '.kpack') return 'kpack';
  const owner = parts.find((p) => p === 'rocblas' || p === 'hipblaslt' || p === 'rocsparse' || p === 'miopen' || p === 'hipsparselt');
  if (base === 'library' && owner) return owner;
  if (names.some((n) => n.startsWith('TensileLibrary'))) return owner ?? parts.at(-2) ?? base;
  return null;
}

const SHARED_LIB = /\.so(\.\d+)*$/;
const DEVICE_SECTIONS = new Set(['.hip_fatbin', '.nv_fatbin', '.nvFatBinSegment']);

interface Walked {
  kernelDirs: Array<{ path: string; library: string; files: string[] }>;
  libraries: Array<{ file: string; path: string }>;
}

/** Walk `dir` without following links: shared libraries, and kernel directories with every file under them. */
async function walk(root: ScanRoot, signal?: AbortSignal): Promise<Walked> {
  const out: Walked = { kernelDirs: [], libraries: [] };
  const seen = new Set<string>();
  const filesUnder = async (host: string, rel: string, acc: string[]) => {
    for (const e of await readdir(host, { withFileTypes: true })) {
      if (e.isDirectory()) await filesUnder(posix.join(host, e.name), posix.join(rel, e.name), acc);
      else if (e.isFile() || e.isSymbolicLink()) acc.push(posix.join(rel, e.name));
    }
  };
  const visit = async (host: string, inRoot: string): Promise<void> => {
    signal?.throwIfAborted();
    let entries;
    try {
      entries = await readdir(host, { withFileTypes: true });
    } catch {
      return; // unreadable or vanished: nothing of it can be shipped either
    }
    const names = entries.map((e) => e.name);
    const library = kernelDirLibrary(inRoot, names);
    if (library) {
      const files: string[] = [];
      await filesUnder(host, '', files);
      out.kernelDirs.push({ path: inRoot, library, files: files.map((f) => f.replace(/^\//, '')) });
      return;
    }
    for (const e of entries) {
      const h = posix.join(host, e.name);
      const r = posix.join(inRoot, e.name);
      if (e.isDirectory()) await visit(h, r);
      else if (e.isFile() && SHARED_LIB.test(e.name)) {
        const st = await lstat(h);
        const id = `${st.dev}:${st.ino}`;
        if (seen.has(id)) continue; // a hard link of one already listed
        seen.add(id);
        out.libraries.push({ file: h, path: r });
      }
    }
  };
  for (const sub of root.only ?? ['']) await visit(posix.join(root.dir, sub), posix.join(root.as, sub));
  return out;
}

/** The device code of one library: format, arches, and whether it moved to `.kpack` archives. Null when it has none. */
async function libraryArches(file: string, signal?: AbortSignal): Promise<{ format: FatbinFormat; arches: string[]; kpack: boolean } | null> {
  return withFileSource(file, async (src) => {
    const sections = await readElfSections(src);
    if (!sections || !sections.some((s) => DEVICE_SECTIONS.has(s.name))) return null;
    const { format, containers } = await readFatbins(src, signal);
    const found = new Set<string>();
    for (const c of containers) for (const e of c.entries) if (e.kind !== 'host') found.add(e.arch);
    const hip = sections.some((s) => s.name === '.hip_fatbin');
    return {
      format: format ?? (hip ? 'hip' : 'cuda'),
      arches: Object.keys(sortArches(Object.fromEntries([...found].map((a) => [a, 0])))),
      kpack: sections.some((s) => s.name === '.rocm_kpack_ref'),
    };
  });
}

/**
 * Scan `roots` for `target` (an AMD arch such as `gfx1151`, or a CUDA
 * capability `9.0` / `sm_90`). Findings are sorted by library, then directory.
 */
export async function scanCoverage(roots: readonly ScanRoot[], target: string, opts: { signal?: AbortSignal } = {}): Promise<CoverageFinding[]> {
  const findings: CoverageFinding[] = [];
  for (const root of roots) {
    const w = await walk(root, opts.signal);
    for (const d of w.kernelDirs) {
      const arches = new Set<string>();
      let neutral = 0;
      for (const f of d.files) {
        const a = archesInName(f);
        if (a.length === 0) neutral++;
        for (const x of a) arches.add(x);
      }
      const found = Object.keys(sortArches(Object.fromEntries([...arches].map((a) => [a, 0]))));
      const c = covers(found, target);
      findings.push({ library: d.library, directory: d.path, kind: 'kernels', arches: found, files: d.files.length, neutralFiles: neutral, coveredBy: c.by, how: c.how, missing: !c.covered });
    }
    for (const l of w.libraries) {
      let dev;
      try {
        dev = await libraryArches(l.file, opts.signal);
      } catch (err) {
        if (!isRocmflowError(err) || err.code !== 'E_FATBIN_MALFORMED') throw err;
        findings.push({ library: l.path, directory: null, kind: 'fatbin', arches: [], coveredBy: [], how: null, missing: false, note: `not judged: ${err.message}` });
        continue;
      }
      if (!dev) continue;
      const c = covers(dev.arches, target);
      const movedToKpack = dev.kpack && dev.arches.length === 0;
      findings.push({
        library: l.path, directory: null, kind: 'fatbin', format: dev.format, arches: dev.arches, coveredBy: c.by, how: c.how,
        missing: movedToKpack ? false : !c.covered,
        ...(movedToKpack ? { note: 'device code moved to .kpack archives (judged with the .kpack directory)' } : {}),
      });
    }
  }
  return findings.sort((a, b) => (a.library < b.library ? -1 : a.library > b.library ? 1 : (a.directory ?? '') < (b.directory ?? '') ? -1 : 1));
}
