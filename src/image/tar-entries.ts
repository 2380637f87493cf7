import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { RocmflowError } from '../errors.js';

/** One entry of a tar stream, in archive order. */
export interface TarEntry {
  /** Path inside the archive: relative, `/`-separated, no trailing slash. */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink';
  /** Permission bits including setuid/setgid/sticky (`mode & 0o7777`). */
  mode: number;
  /** Bytes of content (files only; 0 otherwise). */
  size: number;
  /** Symlink target as stored, or the archive path a hardlink points at. */
  target?: string;
  /** File on disk the content comes from (files only). */
  source?: string;
}

/**
 * What a layer can be built from besides a whole directory: an archive path
 * and where it comes from. A `source` is lstat'ed, so a symlink stays a link.
 */
export type TarSource =
  | { path: string; source: string }
  | { path: string; symlink: string }
  | { path: string; directory: true; mode?: number };

/** Byte order of UTF-8 paths: the same on every machine and locale. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Every entry under `root` (not `root` itself), sorted, hardlinks detected. */
export async function collectTree(root: string): Promise<TarEntry[]> {
  const found: Found[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = await readdir(rel ? join(root, rel) : root);
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const full = join(root, path);
      found.push(await describe(path, full));
      if (found[found.length - 1]!.entry.type === 'dir') await walk(path);
    }
  };
  try {
    const st = await lstat(root);
    if (!st.isDirectory()) throw new RocmflowError('E_NOT_A_DIRECTORY', `${root} is not a directory`, { exitCode: 2 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new RocmflowError('E_NOT_FOUND', `${root} does not exist`, { exitCode: 2 });
    throw e;
  }
  await walk('');
  return finish(found);
}

/**
 * Entries from an explicit list (a layer built from a manifest rather than a
 * directory). Missing parent directories are added with mode 0755 so every
 * unpacker creates them alike.
 */
export async function planEntries(sources: readonly TarSource[]): Promise<TarEntry[]> {
  const found: Found[] = [];
  const seen = new Set<string>();
  for (const s of sources) {
    const path = archivePath(s.path);
    if (seen.has(path)) throw new RocmflowError('E_DUPLICATE_ENTRY', `layer entry ${path} is listed twice`, { exitCode: 2 });
    seen.add(path);
    if ('source' in s) found.push(await describe(path, s.source));
    else if ('symlink' in s) found.push({ entry: { path, type: 'symlink', mode: 0o777, size: 0, target: s.symlink } });
    else found.push({ entry: { path, type: 'dir', mode: (s.mode ?? 0o755) & 0o7777, size: 0 } });
  }
  for (const path of [...seen]) {
    for (let dir = posix.dirname(path); dir !== '.' && !seen.has(dir); dir = posix.dirname(dir)) {
      seen.add(dir);
      found.push({ entry: { path: dir, type: 'dir', mode: 0o755, size: 0 } });
    }
  }
  return finish(found);
}

/** Normalise and check a path given for the archive: relative, no `..`. */
export function archivePath(p: string): string {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  if (p.startsWith('/') || parts.length === 0 || parts.includes('..'))
    throw new RocmflowError('E_BAD_ENTRY_PATH', `layer entry path must be relative and without "..": ${JSON.stringify(p)}`, { exitCode: 2 });
  return parts.join('/');
}

interface Found {
  entry: TarEntry;
  /** dev:ino of a regular file with more than one link. */
  inode?: string;
}

async function describe(path: string, full: string): Promise<Found> {
  const st = await lstat(full).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new RocmflowError('E_NOT_FOUND', `${full} does not exist (layer entry ${path})`, { exitCode: 2 });
    throw e;
  });
  const mode = st.mode & 0o7777;
  if (st.isFile()) return { entry: { path, type: 'file', mode, size: st.size, source: full }, inode: st.nlink > 1 ? `${st.dev}:${st.ino}` : undefined };
  if (st.isDirectory()) return { entry: { path, type: 'dir', mode, size: 0 } };
  if (st.isSymbolicLink()) return { entry: { path, type: 'symlink', mode: 0o777, size: 0, target: await readlink(full) } };
  const kind = st.isCharacterDevice() || st.isBlockDevice() ? 'a device node' : st.isFIFO() ? 'a fifo' : 'a socket';
  throw new RocmflowError('E_UNSUPPORTED_FILE', `${full} is ${kind}; snapshots and layers hold only files, directories and links`);
}

function finish(found: Found[]): TarEntry[] {
  found.sort((a, b) => comparePaths(a.entry.path, b.entry.path));
  // the first path of an inode (in archive order) carries the data; later ones link to it
  const first = new Map<string, string>();
  return found.map(({ entry, inode }) => {
    if (!inode) return entry;
    const target = first.get(inode);
    if (target === undefined) {
      first.set(inode, entry.path);
      return entry;
    }
    return { path: entry.path, type: 'hardlink', mode: entry.mode, size: 0, target };
  });
}
