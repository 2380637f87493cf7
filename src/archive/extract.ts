/**
 * The one safe extractor (ROCm tarballs, snapshot restore): streaming
 * extraction of .tar, .tar.gz, .tar.xz, .tar.bz2 and .tar.zst archives.
 *
 * The destination must be new or empty, and not on a pseudo file system
 * (/proc, /sys, ...). Every member is checked before anything is written, and the archive is
 * refused (E_UNSAFE_ARCHIVE, naming the member and the archive) for: `..`
 * components, absolute paths, members under a symlink, symlinks whose target
 * escapes the prefix (resolved relative to the link's directory, following
 * other links in the archive), absolute symlink targets (unless mapped into
 * the prefix), hardlinks to anything but a regular file extracted earlier,
 * device nodes or fifos, and a path that appears twice (except a directory
 * listed again). Nothing stored is ever chmod'ed or touched through a link:
 * the final mode/mtime pass opens each directory with O_NOFOLLOW.
 *
 * Extraction goes to a staging directory next to `dest` that only ever holds
 * regular files and directories while the stream is read (symlinks are
 * created at the end, after the whole tree is known), so nothing can be
 * written through a link; on any failure the staging directory is removed.
 * A single top-level directory is stripped when present (TheRock's tarballs
 * differ in this), then the tree is renamed into place.
 */
import { createHash } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, lutimes, mkdir, open, readdir, rename, rm, rmdir, statfs, symlink, utimes } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { RocmflowError, isRocmflowError } from '../errors.js';
import type { TarEntry } from '../image/tar-entries.js';
import { openDecompressed, type Compression, type StreamDigests } from './compression.js';
import { readTar, TarFormatError } from './tar-reader.js';

export type { TarEntry as ArchiveEntry } from '../image/tar-entries.js';

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
  /** Keep setuid/setgid bits (a snapshot restores modes exactly); dropped by default. */
  keepSetuid?: boolean;
  /** Called after each regular file is written, with the sha256 (hex) of its content. */
  onFile?(entry: TarEntry, sha256: string): void;
  /**
   * Refuse the archive (E_ARCHIVE_TOO_LARGE) before writing a file that would
   * take the files' bytes past this: a few MB of zstd can hold terabytes of
   * zeros, and an archive's own digests do not say it is small.
   */
  maxBytes?: number;
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
  /** Every member, in archive order, with normalised paths (before any top directory is stripped). */
  entries: TarEntry[];
  /** Digests of the archive as stored and of its tar stream. */
  digests: StreamDigests;
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

/** statfs f_type of file systems that are not storage: extracting there is refused. */
const PSEUDO_FS: Record<number, string> = {
  0x9fa0: 'proc', 0x62656572: 'sysfs', 0x1cd1: 'devpts', 0x27e0eb: 'cgroup', 0x63677270: 'cgroup2', 0x64626720: 'debugfs',
  0x74726163: 'tracefs', 0x73636673: 'securityfs', 0xcafe4a11: 'bpf', 0x62656570: 'configfs', 0x6165676c: 'pstore',
  0xde5e81e4: 'efivarfs', 0x65735543: 'fusectl', 0x42494e4d: 'binfmt_misc',
};

/**
 * Refuse a destination whose nearest existing ancestor lies on a pseudo
 * file system (/proc, /sys, cgroups, ...): nothing there is storage, and
 * creating directories there can loop forever.
 */
export async function checkDestination(dest: string, what: string): Promise<void> {
  let p = resolve(dest);
  for (;;) {
    const st = await statfs(p).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' || e.code === 'ENOTDIR' ? null : Promise.reject(e)));
    if (st) {
      const fs = PSEUDO_FS[Number(st.type)];
      if (fs) throw new RocmflowError('E_BAD_DESTINATION', `${what}: ${dest} is on ${fs}, a pseudo file system; choose a directory on real storage`, { exitCode: 2 });
      return;
    }
    const up = dirname(p);
    if (up === p) return;
    p = up;
  }
}

/** Extract `archive` into `dest`: see the module comment. */
export async function extract(opts: ExtractOptions): Promise<ExtractResult> {
  const { archive, dest } = opts;
  await checkDestination(dest, `cannot extract ${archive}`);
  opts.signal?.throwIfAborted();
  await mkdir(dirname(dest), { recursive: true });
  const existing = await readdir(dest).catch(() => null);
  if (existing && existing.length > 0) throw new RocmflowError('E_DEST_NOT_EMPTY', `cannot extract ${archive}: ${dest} exists and is not empty`);
  const staging = join(dirname(dest), `.${basename(dest)}.extract-${randomBytes(4).toString('hex')}`);
  await mkdir(staging);

  const unsafe = (member: string, why: string) =>
    new RocmflowError('E_UNSAFE_ARCHIVE', `refusing unsafe archive ${archive}: entry "${member}" ${why}`);

  const modeMask = opts.keepSetuid ? 0o7777 : 0o1777;
  const tree = new Map<string, Node>([['', { type: 'dir' }]]);
  const dirMeta = new Map<string, { mode: number; mtime: number }>();
  const paths: string[] = [];
  const entries: TarEntry[] = [];
  const result: ExtractResult = {
    dest, compression: 'none', topDir: null, files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0, entries,
    digests: { compressed: { digest: '', size: 0 }, uncompressed: { digest: '', size: 0 } },
  };

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
  // a path seen twice is refused (a directory listed again is harmless): a
  // second member of another type is how links get written through
  const replace = async (key: string, member: string, as: Node['type']) => {
    const old = tree.get(key);
    if (!old) return;
    if (old.type === 'dir' && as === 'dir') return;
    throw unsafe(member, old.type === as ? 'appears twice in the archive' : `appears twice in the archive, first as a ${old.type}, then as a ${as}`);
  };

  let d;
  try {
    d = await openDecompressed(archive, { onProgress: opts.onProgress, signal: opts.signal });
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new RocmflowError('E_NOT_FOUND', `${archive} not found`, { exitCode: 2 });
    throw e;
  }
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
              entries.push({ path: key, type: 'dir', mode: m.mode, size: 0 });
            }
            dirMeta.set(key, { mode: m.mode, mtime: m.mtime });
            break;
          case 'file': {
            if (opts.maxBytes !== undefined && result.bytes + m.size > opts.maxBytes)
              throw new RocmflowError('E_ARCHIVE_TOO_LARGE', `${opts.archive}: ${m.path}: its files come to more than ${opts.maxBytes} bytes, the most this extraction may write`);
            await replace(key, m.path, 'file');
            const fh = await open(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
            const hash = opts.onFile ? createHash('sha256') : null;
            try {
              for await (const chunk of m.body()) {
                hash?.update(chunk);
                await fh.write(chunk);
                result.bytes += chunk.length;
              }
              // setuid/setgid bits are dropped: a runtime never needs them and they are a hazard
              await fh.chmod(m.mode & modeMask);
            } finally {
              await fh.close();
            }
            await utimes(abs, m.mtime, m.mtime);
            tree.set(key, { type: 'file' });
            result.files++;
            const entry: TarEntry = { path: key, type: 'file', mode: m.mode, size: m.size };
            entries.push(entry);
            if (hash) opts.onFile!(entry, hash.digest('hex'));
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
            entries.push({ path: key, type: 'symlink', mode: 0o777, size: 0, target: m.linkname });
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
            entries.push({ path: key, type: 'hardlink', mode: m.mode, size: 0, target: srcKey });
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
      result.digests = await d.finished();
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      // a decompressor failure shows up first as a truncated tar stream: report the real cause
      const cause = e instanceof RocmflowError && e.code === 'E_UNSAFE_ARCHIVE' ? null : await d.failure();
      if (cause) throw cause;
      if (e instanceof TarFormatError) throw new RocmflowError('E_BAD_ARCHIVE', `cannot read ${archive}: ${e.message}`);
      if (/^Z_/.test(String((e as { code?: unknown })?.code))) throw new RocmflowError('E_BAD_ARCHIVE', `cannot decompress ${archive}: ${(e as Error).message}`);
      if (!isRocmflowError(e) && (e as NodeJS.ErrnoException).code)
        throw new RocmflowError('E_EXTRACT', `cannot extract ${archive}${entries.length ? ` (after entry "${entries[entries.length - 1]!.path}")` : ''}: ${(e as Error).message}`, { cause: e });
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

    // directory modes and times last: writing children changes a directory's mtime, and a 0555 dir would block them;
    // each is opened without following a link, so a mode or time never lands anywhere else
    for (const [key, meta] of [...dirMeta].sort((a, b) => b[0].length - a[0].length)) {
      const fh = await open(join(staging, key), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      try {
        await fh.chmod(meta.mode & modeMask);
        await fh.utimes(meta.mtime, meta.mtime);
      } finally {
        await fh.close();
      }
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

/**
 * Copy one regular file out of an archive (e.g. a bundle inside an npm
 * package) to `to`, written under a temp name and renamed into place.
 * Returns false when the archive has no such member; a malformed archive is
 * E_BAD_ARCHIVE naming it.
 */
export async function extractMember(archive: string, member: string, to: string, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
  const want = normalizeMember(member).join('/');
  const d = await openDecompressed(archive, { signal: opts.signal });
  const tmp = `${to}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    for await (const m of readTar(d.stream)) {
      let key: string;
      try {
        key = normalizeMember(m.path).join('/');
      } catch {
        continue; // an unsafe name is never the one asked for
      }
      if (key !== want) continue;
      if (m.type !== 'file') throw new RocmflowError('E_UNSAFE_ARCHIVE', `${archive}: entry "${m.path}" is a ${m.type}, not a regular file`);
      const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
      try {
        for await (const chunk of m.body()) await fh.write(chunk);
      } finally {
        await fh.close();
      }
      await rename(tmp, to);
      return true;
    }
    await d.finished();
    return false;
  } catch (e) {
    await rm(tmp, { force: true });
    if (opts.signal?.aborted) throw opts.signal.reason;
    const cause = await d.failure();
    if (cause) throw cause;
    if (e instanceof TarFormatError) throw new RocmflowError('E_BAD_ARCHIVE', `cannot read ${archive}: ${e.message}`);
    if (/^Z_/.test(String((e as { code?: unknown })?.code))) throw new RocmflowError('E_BAD_ARCHIVE', `cannot decompress ${archive}: ${(e as Error).message}`);
    throw e;
  } finally {
    d.destroy();
  }
}
