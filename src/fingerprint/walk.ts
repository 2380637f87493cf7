/**
 * Expands declared input files (paths, directories, globs) into a sorted
 * list of entries with their lstat, without following symlinks.
 */
import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { dirname, isAbsolute, resolve, sep } from 'node:path';
import { RocmflowError } from '../errors.js';
import { globToRegExp, isGlob } from '../util/glob.js';

export interface InputEntry {
  /** Absolute path: the bytes themselves when a name in it is not valid UTF-8. */
  path: string | Buffer;
  /**
   * How the fingerprint names it: relative to the project root when inside
   * it; outside it, `<outside:N>/` (N: the pattern's position in the list)
   * and the path below the pattern's directory, so that no key depends on
   * where the cache, the project or the home directory is. A path that is not valid UTF-8 is `\0` followed by
   * its bytes, those from 0x80 up (and `%`) written `%XX`: distinct from
   * every valid name, and from every other byte string.
   */
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
  /** The stat cache's stamp prefix for these stats, when written ahead (fingerprint/file-digests.ts, stampPrefix). */
  stampPrefix?: string;
}

// plain (not bigint) stats: a no-op run stats every input, and BigInt
// allocation showed up in its profile; a double keeps sub-microsecond mtimes
function entryOf(path: string | Buffer, st: Stats, root: string): InputEntry | null {
  // paths here are built by concatenation and already normal: slice, don't resolve
  const key = typeof path === 'string' ? (path.startsWith(root + sep) ? path.slice(root.length + 1) : path) : bytesKey(path, root);
  if (st.isSymbolicLink()) {
    const t = readlinkSync(path, { encoding: 'buffer' });
    const linkTarget = isUtf8(t) ? t.toString('utf8') : `\0${escapeBytes(t)}`;
    return { path, key, type: 'symlink', size: 0, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, dev: st.dev, mode: st.mode, linkTarget };
  }
  if (st.isFile()) return { path, key, type: 'file', size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, dev: st.dev, mode: st.mode };
  return null;
}

const SLASH = Buffer.from('/');

/** `%XX` for bytes from 0x80 up and for `%` itself; everything else as is. */
function escapeBytes(b: Buffer): string {
  let s = '';
  for (const x of b) s += x >= 0x80 || x === 0x25 ? `%${x.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(x);
  return s;
}

function bytesKey(path: Buffer, root: string): string {
  const r = Buffer.from(root + sep);
  const rel = path.subarray(0, r.length).equals(r) ? path.subarray(r.length) : path;
  return isUtf8(rel) ? rel.toString('utf8') : `\0${escapeBytes(rel)}`;
}

/**
 * Names are read as strings (the fast, common case); a directory holding a
 * name that is not valid UTF-8 (its string has U+FFFD) is read again as
 * bytes, and that name's path stays bytes from there down, so it is neither
 * lost nor confused with another.
 */
export function walkDir(dir: string | Buffer, root: string, out: InputEntry[], filter?: RegExp, base?: string, defer?: (sub: string | Buffer) => void): void {
  let names: (string | Buffer)[];
  try {
    names = typeof dir === 'string' ? readdirSync(dir) : readdirSync(dir, { encoding: 'buffer' });
    if (typeof dir === 'string' && names.some((n) => (n as string).includes('\uFFFD'))) names = readdirSync(dir, { encoding: 'buffer' });
  } catch (e) {
    throw new RocmflowError('E_INPUT', `cannot read input directory ${String(dir)}: ${(e as Error).message}`);
  }
  for (const name of names) {
    let p: string | Buffer;
    if (typeof name === 'string') p = (dir as string).endsWith('/') ? (dir as string) + name : `${dir as string}/${name}`;
    else if (isUtf8(name) && typeof dir === 'string') p = dir.endsWith('/') ? dir + name.toString('utf8') : `${dir}/${name.toString('utf8')}`;
    else {
      const d = typeof dir === 'string' ? Buffer.from(dir) : dir;
      p = d[d.length - 1] === 0x2f ? Buffer.concat([d, name]) : Buffer.concat([d, SLASH, name]);
    }
    const st = lstatSync(p);
    if (st.isDirectory()) {
      // the walk's own order does not matter: expandInputs sorts what it found
      if (defer) defer(p);
      else walkDir(p, root, out, filter, base);
    }
    else {
      if (filter) {
        const ps = typeof p === 'string' ? p : p.toString('utf8');
        if (!filter.test(ps.slice(base!.endsWith('/') ? base!.length : base!.length + 1))) continue;
      }
      const e = entryOf(p, st, root);
      if (e) out.push(e);
    }
  }
}

/**
 * Expand `patterns` against `root`. A missing plain path is an error naming
 * the task; a glob that matches nothing is fine (the empty set is hashed).
 */
export function expandInputs(patterns: readonly string[], root: string, task: string, walked?: Walked): InputEntry[] {
  const out: InputEntry[] = [];
  // a walk done beforehand (walkAhead), else done here
  const walk = (dir: string, filter?: RegExp, base?: string) => {
    const done = walked?.get(walkKey(dir, filter, base));
    if (done) out.push(...done);
    else walkDir(dir, root, out, filter, base);
  };
  for (const [i, pattern] of patterns.entries()) {
    const { abs, base, filter } = patternWalk(pattern, root);
    const from = out.length;
    // outside the project, a file is named by where it lies below its pattern, not by
    // its absolute path: a key must not depend on where the cache, project or home is
    const anchor = base ?? dirname(abs);
    const outside = () => {
      for (let k = from; k < out.length; k++) {
        const e = out[k]!;
        if (!e.key.startsWith('/') && !e.key.startsWith('\0/')) continue;
        const p = String(e.path);
        const rel = p.startsWith(anchor === '/' ? '/' : `${anchor}/`) ? p.slice(anchor === '/' ? 1 : anchor.length + 1) : p;
        e.key = `${e.key.startsWith('\0') ? '\0' : ''}<outside:${i}>/${e.key.startsWith('\0') ? e.key.slice(1 + anchor.length + 1) : rel}`;
      }
    };
    if (base !== undefined) {
      // no base directory: no matches (errors inside the walk are not swallowed)
      if (lstatSync(base, { throwIfNoEntry: false })?.isDirectory()) walk(base, filter, base);
      outside();
      continue;
    }
    let st: Stats;
    try {
      st = lstatSync(abs);
    } catch {
      throw new RocmflowError('E_INPUT', `task ${task}: input ${pattern} does not exist`);
    }
    if (st.isDirectory()) walk(abs);
    else {
      const e = entryOf(abs, st, root);
      if (e) out.push(e);
    }
    outside();
  }
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out.filter((e, i) => i === 0 || out[i - 1]!.key !== e.key);
}

/**
 * Where a pattern's walk starts: a plain path is walked from itself (when a
 * directory); a glob from its longest glob-free prefix (`base`), keeping
 * what matches `filter` below it.
 */
function patternWalk(pattern: string, root: string): { abs: string; base?: string; filter?: RegExp } {
  const abs = isAbsolute(pattern) ? pattern : resolve(root, pattern);
  if (!isGlob(pattern)) return { abs };
  const parts = abs.split('/');
  const i = parts.findIndex((p) => isGlob(p));
  return { abs, base: parts.slice(0, i).join('/') || '/', filter: globToRegExp(parts.slice(i).join('/')) };
}

/** Walks done ahead of expandInputs, by walkKey. */
export type Walked = Map<string, InputEntry[]>;

function walkKey(dir: string, filter?: RegExp, base?: string): string {
  return `${dir}\0${filter ? `${filter.source}\0${filter.flags}` : ''}\0${base ?? ''}`;
}

/**
 * The directory walks expandInputs will make for `patterns`, done ahead by
 * `walkTree` (the server's walk on every core, fingerprint/walk-pool.ts).
 * Only the walks are done here; everything else (the keys of files outside
 * the project, missing inputs, the order) is expandInputs' own.
 */
export async function walkAhead(
  patterns: readonly string[],
  root: string,
  walkTree: (dir: string, root: string, filter: RegExp | undefined, base: string | undefined) => Promise<InputEntry[]>,
): Promise<Walked> {
  const walked: Walked = new Map();
  for (const pattern of patterns) {
    const { abs, base, filter } = patternWalk(pattern, root);
    const dir = base ?? abs;
    if (!lstatSync(dir, { throwIfNoEntry: false })?.isDirectory()) continue;
    const key = walkKey(dir, filter, base);
    if (!walked.has(key)) walked.set(key, await walkTree(dir, root, filter, base));
  }
  return walked;
}
