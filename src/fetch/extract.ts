/**
 * Safe streaming extraction of .tar, .tar.gz, .tar.xz and .tar.zst archives.
 *
 * Every member is checked before anything is written, and the archive is
 * refused (E_UNSAFE_ARCHIVE, naming the member and the archive) for: `..`
 * components, absolute paths, members under a symlink, symlinks whose target
 * escapes the prefix (resolved relative to the link's directory, following
 * other links in the archive), absolute symlink targets (unless mapped into
 * the prefix), hardlinks to anything but a regular file extracted earlier,
 * and device nodes or fifos.
 *
 * Extraction goes to a staging directory next to `dest` that only ever holds
 * regular files and directories while the stream is read (symlinks are
 * created at the end, after the whole tree is known), so nothing can be
 * written through a link; on any failure the staging directory is removed.
 * A single top-level directory is stripped when present (TheRock's tarballs
 * differ in this), then the tree is renamed into place.
 */
import { randomBytes } from 'node:crypto';
import { chmod, link, lutimes, mkdir, open, readdir, rename, rm, rmdir, symlink, utimes } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { RocmflowError } from '../errors.js';
import { openDecompressed, type Compression } from './decompress.js';
import { readTar, TarFormatError } from './tar-reader.js';

export interface ExtractOptions {
  archive: string;
  /** Directory to create; must not exist or be empty. */
  dest: string;
  /** Strip a single top-level directory: when present (`'auto'`), always, or never. @default 'auto' */
  stripTopDir?: 'auto' | boolean;
  /**
   * Absolute symlink targets under these roots are rewritten to point at the
   * same place inside the prefix (e.g. `['/opt/rocm']`: `/opt/rocm/lib/x`
   * becomes a relative link to `lib/x`). Other absolute targets are refused.
   */
  absoluteLinkRoots?: string[];
  signal?: AbortSignal;
  /** Progress in compressed bytes read. */
  onProgress?(read: number, total: number): void;
}

export interface ExtractResult {
  dest: string;
  compression: Compression;
  /** The top-level directory that was stripped, if any. */
  topDir: string | null;
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  /** Bytes of regular file data written. */
  bytes: number;
}

type Node = { type: 'dir' | 'file' } | { type: 'symlink'; target: string; mtime: number };

/** Directory names that are content, not a wrapper: an archive holding only `lib/` keeps it. */
const CONTENT_DIRS = new Set(['bin', 'lib', 'lib64', 'include', 'share', 'libexec', 'etc', 'usr', 'opt', 'var', 'llvm', 'amdgcn']);

/**
 * The single top-level directory of an archive's (normalized) member paths,
 * or null when there are several top-level names, only one plain file, or
 * the one directory is itself a usual part of a prefix (`lib/`, `bin/`, ...).
 */
export function detectTopDir(paths: readonly string[]): string | null {
  let top: string | null = null;
  let nested = false;
  for (const p of paths) {
    const slash = p.indexOf('/');
    const first = slash < 0 ? p : p.slice(0, slash);
    if (!first) continue;
    if (top === null) top = first;
    else if (top !== first) return null;
    if (slash >= 0) nested = true;
  }
  return top !== null && nested && !CONTENT_DIRS.has(top) ? top : null;
}

/** Normalize a member path to `a/b/c`; throws a reason string when it is unsafe. */
function normalizeMember(raw: string): string[] {
  if (raw.startsWith('/')) throw 'is an absolute path';
  const parts: string[] = [];
  for (const c of raw.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') throw 'has a ".." component';
    parts.push(c);
  }
  return parts;
}

/** Extract `archive` into `dest`: see the module comment. */
export async function extract(opts: ExtractOptions): Promise<ExtractResult> {
  const { archive, dest } = opts;
  await mkdir(dirname(dest), { recursive: true });
  const existing = await readdir(dest).catch(() => null);
  if (existing && existing.length > 0) throw new RocmflowError('E_DEST_NOT_EMPTY', `cannot extract ${archive}: ${dest} exists and is not empty`);
  const staging = join(dirname(dest), `.${basename(dest)}.extract-${randomBytes(4).toString('hex')}`);
  await mkdir(staging);

  const unsafe = (member: string, why: string) =>
    new RocmflowError('E_UNSAFE_ARCHIVE', `refusing unsafe archive ${archive}: entry "${member}" ${why}`);

  const tree = new Map<string, Node>([['', { type: 'dir' }]]);
  const dirMeta = new Map<string, { mode: number; mtime: number }>();
  const paths: string[] = [];
  const result: ExtractResult = { dest, compression: 'none', topDir: null, files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0 };

  const ensureDirs = async (parts: string[], member: string) => {
    for (let i = 1; i < parts.length; i++) {
      const key = parts.slice(0, i).join('/');
      const node = tree.get(key);
      if (node?.type === 'dir') continue;
      if (node?.type === 'symlink') throw unsafe(member, `is under the symlink "${key}"`);
      if (node) throw unsafe(member, `is under "${key}", which is a file`);
      await mkdir(join(staging, key));
      tree.set(key, { type: 'dir' });
    }
  };
  // a later member with the same path replaces an earlier one, as tar does
  const replace = async (key: string, member: string, as: Node['type']) => {
    const old = tree.get(key);
    if (!old) return;
    if (old.type === 'dir' && as === 'dir') return;
    if (old.type === 'dir') throw unsafe(member, 'replaces a directory');
    if (old.type !== 'symlink') await rm(join(staging, key), { force: true });
    tree.delete(key);
  };

  const d = await openDecompressed(archive, { onProgress: opts.onProgress });
  result.compression = d.compression;
  const onAbort = () => d.destroy();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    try {
      for await (const m of readTar(d.stream)) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        let parts: string[];
        try {
          parts = normalizeMember(m.path);
        } catch (why) {
          throw unsafe(m.path, String(why));
        }
        if (parts.length === 0) continue; // "./" itself
        const key = parts.join('/');
        paths.push(key);
        await ensureDirs(parts, m.path);
        const abs = join(staging, key);
        switch (m.type) {
          case 'dir':
            await replace(key, m.path, 'dir');
            if (!tree.has(key)) {
              await mkdir(abs);
              tree.set(key, { type: 'dir' });
              result.dirs++;
            }
            dirMeta.set(key, { mode: m.mode, mtime: m.mtime });
            break;
          case 'file': {
            await replace(key, m.path, 'file');
            const fh = await open(abs, 'wx', 0o600);
            try {
              for await (const chunk of m.body()) {
                await fh.write(chunk);
                result.bytes += chunk.length;
              }
              // setuid/setgid bits are dropped: a runtime never needs them and they are a hazard
              await fh.chmod(m.mode & 0o1777);
            } finally {
              await fh.close();
            }
            await utimes(abs, m.mtime, m.mtime);
            tree.set(key, { type: 'file' });
            result.files++;
            break;
          }
          case 'symlink': {
            let target = m.linkname;
            if (!target) throw unsafe(m.path, 'is a symlink with an empty target');
            if (target.startsWith('/')) {
              const root = opts.absoluteLinkRoots?.map((r) => r.replace(/\/+$/, '')).find((r) => target === r || target.startsWith(r + '/'));
              if (root === undefined) throw unsafe(m.path, `is a symlink to the absolute path "${target}"`);
              // marked for rewriting once the final root (with or without top dir) is known
              target = '\0' + target.slice(root.length).replace(/^\/+/, '');
            }
            await replace(key, m.path, 'symlink');
            tree.set(key, { type: 'symlink', target, mtime: m.mtime });
            break;
          }
          case 'hardlink': {
            let src: string[];
            try {
              src = normalizeMember(m.linkname);
            } catch (why) {
              throw unsafe(m.path, `is a hardlink to "${m.linkname}", which ${String(why)}`);
            }
            const srcKey = src.join('/');
            if (tree.get(srcKey)?.type !== 'file') throw unsafe(m.path, `is a hardlink to "${m.linkname}", which is not a file extracted before it`);
            await replace(key, m.path, 'file');
            await link(join(staging, srcKey), abs);
            tree.set(key, { type: 'file' });
            result.hardlinks++;
            break;
          }
          case 'char':
          case 'block':
            throw unsafe(m.path, `is a ${m.type} device node`);
          case 'fifo':
            throw unsafe(m.path, 'is a fifo');
          default:
            throw unsafe(m.path, `has the unsupported tar type "${m.typeflag}"`);
        }
      }
      await d.finished();
    } catch (e) {
      // a decompressor failure shows up first as a truncated tar stream: report the real cause
      const cause = await Promise.race([d.finished().then(() => null, (x: unknown) => x), new Promise((r) => setTimeout(r, 2000, null))]);
      if (cause) throw cause;
      if (e instanceof TarFormatError) throw new RocmflowError('E_BAD_ARCHIVE', `cannot read ${archive}: ${e.message}`);
      if (/^Z_/.test(String((e as { code?: unknown })?.code))) throw new RocmflowError('E_BAD_ARCHIVE', `cannot decompress ${archive}: ${(e as Error).message}`);
      throw e;
    } finally {
      d.destroy();
    }

    const top = opts.stripTopDir === false ? null : detectTopDir(paths);
    if (opts.stripTopDir === true && (!top || tree.get(top)?.type !== 'dir'))
      throw new RocmflowError('E_BAD_ARCHIVE', `${archive} has no single top-level directory to strip`);
    result.topDir = top && tree.get(top)?.type === 'dir' ? top : null;
    const floor = result.topDir ? [result.topDir] : [];

    await createSymlinks(tree, staging, floor, unsafe, result);

    // directory modes and times last: writing children changes a directory's mtime, and a 0555 dir would block them
    for (const [key, meta] of [...dirMeta].sort((a, b) => b[0].length - a[0].length)) {
      await chmod(join(staging, key), meta.mode & 0o1777);
      await utimes(join(staging, key), meta.mtime, meta.mtime);
    }

    if (existing) await rmdir(dest);
    if (result.topDir) {
      await rename(join(staging, result.topDir), dest);
      await rm(staging, { recursive: true, force: true });
    } else await rename(staging, dest);
    return result;
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Where a path leads once every symlink on it is followed, as components
 * from the archive root; null when it would leave `floor` (the final prefix).
 */
function resolveInTree(tree: Map<string, Node>, start: string[], rel: string[], floor: string[]): string[] | null {
  const out = [...start];
  const queue = [...rel];
  let hops = 0;
  while (queue.length > 0) {
    const c = queue.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length <= floor.length) return null;
      out.pop();
      continue;
    }
    out.push(c);
    const node = tree.get(out.join('/'));
    if (node?.type === 'symlink') {
      if (++hops > 40) return null;
      out.pop();
      if (node.target.startsWith('\0')) out.splice(0, out.length, ...floor);
      queue.unshift(...node.target.replace(/^\0/, '').split('/'));
    }
    if (out.length < floor.length || floor.some((f, i) => out[i] !== undefined && out[i] !== f)) return null;
  }
  return out;
}

async function createSymlinks(
  tree: Map<string, Node>, staging: string, floor: string[],
  unsafe: (member: string, why: string) => RocmflowError, result: ExtractResult,
): Promise<void> {
  const links = [...tree].filter((e): e is [string, Extract<Node, { type: 'symlink' }>] => e[1].type === 'symlink');
  for (const [key, node] of links) {
    const dir = key.split('/').slice(0, -1);
    let target = node.target;
    if (target.startsWith('\0')) {
      // an absolute target mapped into the prefix: make it relative to the link's directory
      const ups = dir.length - floor.length;
      target = [...Array(ups).fill('..'), target.slice(1)].filter(Boolean).join('/') || '.';
    }
    const shown = node.target.startsWith('\0') ? `(mapped) ${node.target.slice(1)}` : node.target;
    if (!resolveInTree(tree, dir, target.split('/'), floor))
      throw unsafe(key, `is a symlink to "${shown}", which points outside the extraction directory`);
    await symlink(target, join(staging, key));
    await lutimes(join(staging, key), node.mtime, node.mtime);
    result.symlinks++;
  }
}
