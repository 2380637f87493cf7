/**
 * Expands declared input files (paths, directories, globs) into a sorted
 * list of entries with their lstat, without following symlinks.
 */
import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { isAbsolute, resolve, sep } from 'node:path';
import { RocmflowError } from '../errors.js';
import { globToRegExp, isGlob } from '../util/glob.js';

export interface InputEntry {
  /** Absolute path. */
  path: string;
  /** How the fingerprint names it: relative to the project root when inside it, else absolute. */
  key: string;
  type: 'file' | 'symlink';
  size: number;
  /** Milliseconds with the fraction the filesystem gives (sub-microsecond on ext4/xfs/btrfs). */
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  dev: number;
  mode: number;
  linkTarget?: string;
}

// plain (not bigint) stats: a no-op run stats every input, and BigInt
// allocation showed up in its profile; a double keeps sub-microsecond mtimes
function entryOf(path: string, st: Stats, root: string): InputEntry | null {
  // paths here are built by concatenation and already normal: slice, don't resolve
  const key = path.startsWith(root + sep) ? path.slice(root.length + 1) : path;
  if (st.isSymbolicLink())
    return { path, key, type: 'symlink', size: 0, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, dev: st.dev, mode: st.mode, linkTarget: readlinkSync(path) };
  if (st.isFile()) return { path, key, type: 'file', size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, dev: st.dev, mode: st.mode };
  return null;
}

function walkDir(dir: string, root: string, out: InputEntry[], filter?: RegExp, base?: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new RocmflowError('E_INPUT', `cannot read input directory ${dir}: ${(e as Error).message}`);
  }
  for (const name of names) {
    const p = dir.endsWith('/') ? dir + name : `${dir}/${name}`;
    const st = lstatSync(p);
    if (st.isDirectory()) walkDir(p, root, out, filter, base);
    else {
      if (filter && !filter.test(p.slice(base!.endsWith('/') ? base!.length : base!.length + 1))) continue;
      const e = entryOf(p, st, root);
      if (e) out.push(e);
    }
  }
}

/**
 * Expand `patterns` against `root`. A missing plain path is an error naming
 * the task; a glob that matches nothing is fine (the empty set is hashed).
 */
export function expandInputs(patterns: readonly string[], root: string, task: string): InputEntry[] {
  const out: InputEntry[] = [];
  for (const pattern of patterns) {
    const abs = isAbsolute(pattern) ? pattern : resolve(root, pattern);
    if (isGlob(pattern)) {
      // walk from the longest glob-free prefix
      const parts = abs.split('/');
      const i = parts.findIndex((p) => isGlob(p));
      const base = parts.slice(0, i).join('/') || '/';
      const re = globToRegExp(parts.slice(i).join('/'));
      try {
        if (lstatSync(base).isDirectory()) walkDir(base, root, out, re, base);
      } catch {
        /* no base directory: no matches */
      }
      continue;
    }
    let st: Stats;
    try {
      st = lstatSync(abs);
    } catch {
      throw new RocmflowError('E_INPUT', `task ${task}: input ${pattern} does not exist`);
    }
    if (st.isDirectory()) walkDir(abs, root, out);
    else {
      const e = entryOf(abs, st, root);
      if (e) out.push(e);
    }
  }
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out.filter((e, i) => i === 0 || out[i - 1]!.key !== e.key);
}
