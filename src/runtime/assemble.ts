/**
 * Write a closure out as a plain directory tree: files copied (reflinked
 * where the filesystem can, so the source stays untouched either way) with
 * their modes, times and (as root) owners; symlinks as they are; hard links
 * as links; parent directories with their source modes. Then a manifest of
 * what is there and why.
 */
import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { chmod, copyFile, lchown, link, lstat, lutimes, mkdir, readdir, rename, symlink, utimes, writeFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { RocmflowError } from '../errors.js';
import type { Closure, ClosureReason } from './closure.js';
import { hostPath, normalizeInRoot, type RootLayout } from './layout.js';

/** One path of an assembled root. */
export interface ManifestEntry {
  /** In-root path. */
  path: string;
  type: 'file' | 'symlink' | 'dir';
  /** Bytes (files); 0 for directories, the link text's length for symlinks. */
  size: number;
  /** SHA-256 of a file's contents. */
  sha256?: string;
  /** Permission bits (with setuid/setgid/sticky), e.g. 0o755. */
  mode: number;
  /** Why it is there; `parent` for directories made only to hold other entries. */
  reason: ClosureReason | 'parent';
  linkTarget?: string;
  /** For a hard link: the in-root path of the file it shares its inode with. */
  hardlinkOf?: string;
  /** Device code pruned from this file (src/runtime/prune-fatbins.ts): arches kept, bytes of code dropped per arch, bytes on disk before and after. */
  pruned?: { keep: string[]; dropped: Record<string, number>; allocatedBefore: number; allocatedAfter: number };
}

/** What is in an assembled root. */
export interface RootManifest {
  /** Sorted by path. */
  entries: ManifestEntry[];
  /** Number of regular files (hard links counted once). */
  files: number;
  /** Bytes of regular files (hard links counted once). */
  bytes: number;
}

export interface AssembleOptions {
  layout: RootLayout;
  /** Directory to fill; created, and must be empty when it exists. */
  dest: string;
  /** Where the manifest goes. @default `<dest>/../<basename(dest)>.manifest.json` */
  manifestPath?: string;
  signal?: AbortSignal;
  /** Called after each file with the number of files copied and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** Assemble `closure` into `opts.dest`; returns (and writes) the manifest. */
export async function assembleRoot(closure: Closure, opts: AssembleOptions): Promise<RootManifest> {
  const { layout, dest, signal } = opts;
  await mkdir(dest, { recursive: true });
  if ((await readdir(dest)).length > 0) throw new RocmflowError('E_DEST_NOT_EMPTY', `cannot assemble a root into ${dest}: the directory is not empty`);
  const asRoot = process.getuid?.() === 0;
  const entries: ManifestEntry[] = [];
  const target = (p: string) => {
    const n = normalizeInRoot(p);
    if (n !== p) throw new RocmflowError('E_ESCAPE', `closure path ${JSON.stringify(p)} is not a normalised absolute path`);
    return posix.join(dest, n);
  };

  // parents first, with the modes of the source's directories
  const dirEntries = new Map(closure.entries.filter((e) => e.type === 'dir').map((e) => [e.path, e]));
  const dirs = new Set<string>();
  for (const e of closure.entries) {
    for (let d = e.type === 'dir' ? e.path : posix.dirname(e.path); d !== '/'; d = posix.dirname(d)) dirs.add(d);
  }
  for (const d of [...dirs].sort()) {
    const st = await lstat(hostPath(layout, d)).catch(() => null);
    const mode = st?.isDirectory() ? st.mode & 0o7777 : 0o755;
    await mkdir(target(d), { mode: 0o700 });
    entries.push({ path: d, type: 'dir', size: 0, mode, reason: dirEntries.get(d)?.reason ?? 'parent' });
  }

  const total = closure.entries.reduce((n, e) => n + (e.type === 'file' && !e.hardlinkOf ? 1 : 0), 0);
  let done = 0;
  const sources = new Map<string, string>();
  for (const e of closure.entries) {
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new RocmflowError('E_ABORTED', `assembling ${dest} was interrupted`);
    if (e.type === 'dir') continue;
    const to = target(e.path);
    const from = hostPath(layout, e.path);
    if (e.type === 'symlink') {
      await symlink(e.linkTarget!, to);
      if (asRoot) {
        const st = await lstat(from);
        await lchown(to, st.uid, st.gid);
      }
      entries.push({ path: e.path, type: 'symlink', size: Buffer.byteLength(e.linkTarget!), mode: 0o777, reason: e.reason, linkTarget: e.linkTarget });
      continue;
    }
    sources.set(e.path, from);
  }
  // files after links: a file's copy never goes through a link made above (all paths are canonical)
  for (const e of closure.entries) {
    if (e.type !== 'file') continue;
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new RocmflowError('E_ABORTED', `assembling ${dest} was interrupted`);
    const to = target(e.path);
    const from = sources.get(e.path)!;
    const st = await lstat(from);
    if (e.hardlinkOf && sources.has(e.hardlinkOf)) {
      // the primary sorts first, so it is already there
      await link(target(e.hardlinkOf), to);
      entries.push({ path: e.path, type: 'file', size: st.size, mode: st.mode & 0o7777, reason: e.reason, hardlinkOf: e.hardlinkOf });
      continue;
    }
    await copyFile(from, to, constants.COPYFILE_FICLONE);
    if (asRoot) await lchown(to, st.uid, st.gid);
    await chmod(to, st.mode & 0o7777); // after chown, which clears setuid bits
    await utimes(to, st.atimeMs / 1000, st.mtimeMs / 1000);
    entries.push({ path: e.path, type: 'file', size: st.size, sha256: await sha256(to), mode: st.mode & 0o7777, reason: e.reason });
    opts.onProgress?.(++done, total);
  }

  const dirModes = new Map(entries.filter((e) => e.type === 'dir').map((e) => [e.path, e]));
  // directory modes and times last: writing into them changed the times, and a read-only mode would have blocked it
  for (const d of [...dirs].sort().reverse()) {
    const from = await lstat(hostPath(layout, d)).catch(() => null);
    const m = dirModes.get(d)!;
    if (asRoot && from) await lchown(target(d), from.uid, from.gid);
    await chmod(target(d), m.mode);
    if (from) await utimes(target(d), from.atimeMs / 1000, from.mtimeMs / 1000);
  }
  for (const e of entries) if (e.type === 'symlink') {
    const from = await lstat(hostPath(layout, e.path)).catch(() => null);
    if (from) await lutimes(target(e.path), from.atimeMs / 1000, from.mtimeMs / 1000).catch(() => {});
  }

  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const primaries = entries.filter((e) => e.type === 'file' && !e.hardlinkOf);
  const manifest: RootManifest = { entries, files: primaries.length, bytes: primaries.reduce((n, e) => n + e.size, 0) };
  const manifestPath = opts.manifestPath ?? posix.join(posix.dirname(posix.resolve(dest)), `${posix.basename(posix.resolve(dest))}.manifest.json`);
  const tmp = `${manifestPath}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(manifest, null, 2) + '\n');
  await rename(tmp, manifestPath);
  return manifest;
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}
