/**
 * The shared-cache protocol over a directory every machine mounts (NFS,
 * SMB, a shared disk): `<dir>/ac/<key>` and `<dir>/cas/<2 hex>/<sha256>`.
 * Every write goes to a unique temp name in the destination's own directory
 * and is renamed into place, so concurrent writers never expose a partial
 * file (the last complete rename wins, and both wrote the same bytes).
 */
import { randomBytes } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { copyFile, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import type { BlobDownload, RemoteBackend } from './backend.js';
import { RemoteError } from './remote-error.js';
import { OversizeBlob, streamToFile } from './stream-to-file.js';

export class DirBackend implements RemoteBackend {
  readonly description: string;
  /** The mount point, which must exist. */
  private readonly root: string;
  /** Where entries and blobs go: the root, or `<root>/<instance>`. */
  private readonly dir: string;
  private checked = false;

  constructor(root: string, instance: string | null = null) {
    this.root = root.replace(/\/+$/, '') || '/';
    this.dir = instance ? join(this.root, instance) : this.root;
    this.description = this.dir;
  }

  async getEntry(key: string): Promise<Buffer | null> {
    await this.mounted();
    const p = join(this.dir, 'ac', key);
    try {
      return await readFile(p);
    } catch (e) {
      if (code(e) === 'ENOENT') return null;
      throw ioError(e, p);
    }
  }

  async putEntry(key: string, body: Buffer): Promise<void> {
    await this.mounted();
    await this.atomicWrite(join(this.dir, 'ac', key), async (tmp) => {
      const fh = await open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(body);
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
  }

  async hasBlob(digest: string, size: number): Promise<boolean> {
    await this.mounted();
    try {
      return (await stat(this.blobPath(digest))).size === size;
    } catch (e) {
      if (code(e) === 'ENOENT') return false;
      throw ioError(e, this.blobPath(digest));
    }
  }

  async getBlob(digest: string, dest: string, limit: number): Promise<BlobDownload | null> {
    await this.mounted();
    const p = this.blobPath(digest);
    try {
      const { size } = await stat(p);
      if (size > limit) throw new OversizeBlob(limit);
      return await streamToFile(createReadStream(p, { highWaterMark: 1 << 20 }), dest, size, limit);
    } catch (e) {
      await rm(dest, { force: true });
      if (e instanceof OversizeBlob) throw e;
      if (code(e) === 'ENOENT') return null;
      throw ioError(e, p);
    }
  }

  async putBlob(digest: string, file: string): Promise<void> {
    await this.mounted();
    await this.atomicWrite(this.blobPath(digest), async (tmp) => {
      // copy_file_range/reflink in the kernel: nothing passes through our memory
      await copyFile(file, tmp, constants.COPYFILE_EXCL);
      const fh = await open(tmp, 'r+');
      try {
        await fh.chmod(0o444);
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
  }

  close(): void {}

  private blobPath(digest: string): string {
    return join(this.dir, 'cas', digest.slice(0, 2), digest);
  }

  /**
   * The shared directory must already exist: creating it would hide an
   * unmounted share behind an empty local directory.
   */
  private async mounted(): Promise<void> {
    if (this.checked) return;
    let isDir = false;
    try {
      isDir = (await stat(this.root)).isDirectory();
    } catch (e) {
      throw new RemoteError('unreachable', `shared cache directory ${this.root}: ${code(e) ?? (e as Error).message}`);
    }
    if (!isDir) throw new RemoteError('unreachable', `shared cache directory ${this.root}: not a directory`);
    this.checked = true;
  }

  /**
   * Writes under the share go through directories opened one level at a
   * time with O_NOFOLLOW, and the temp file and the rename are named through
   * the last one's descriptor (`/proc/self/fd/N/name`, which the kernel
   * resolves to that very directory). Anyone who can write to the share
   * could put a link where `ac` or `cas/xx` should be (to /etc/cron.d, say);
   * rocmflow runs as root and must not write through it, not even when the
   * link appears between a check and the write.
   */
  private async atomicWrite(dest: string, write: (tmp: string) => Promise<void>): Promise<void> {
    const parts = relative(this.root, dirname(dest)).split('/').filter(Boolean);
    const name = basename(dest);
    let dir = await open(this.root, constants.O_RDONLY | constants.O_DIRECTORY);
    let tmp: string | null = null;
    try {
      for (const [i, part] of parts.entries()) {
        const next = `/proc/self/fd/${dir.fd}/${part}`;
        await mkdir(next, { mode: 0o755 }).catch((e) => {
          if (code(e) !== 'EEXIST') throw e;
        });
        let opened;
        try {
          opened = await open(next, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
        } catch (e) {
          if (code(e) === 'ELOOP' || code(e) === 'ENOTDIR') throw new RemoteError('io', `${join(this.root, ...parts.slice(0, i + 1))}: not a directory (a link or a file); refusing to write through it`);
          throw e;
        }
        await dir.close();
        dir = opened;
      }
      const at = `/proc/self/fd/${dir.fd}`;
      tmp = `${at}/.${name}.${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
      await write(tmp);
      await rename(tmp, `${at}/${name}`);
      tmp = null;
    } catch (e) {
      if (tmp) await rm(tmp, { force: true }).catch(() => {});
      if (e instanceof RemoteError) throw e;
      throw ioError(e, dest);
    } finally {
      await dir.close();
    }
  }
}

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

function ioError(e: unknown, path: string): RemoteError {
  if (e instanceof RemoteError) return e;
  const c = code(e);
  if (c === 'EACCES' || c === 'EPERM' || c === 'EROFS') return new RemoteError('denied', `${path}: ${c}`, { cause: e });
  // a hung or vanished NFS server
  if (c === 'ESTALE' || c === 'EIO' || c === 'ETIMEDOUT' || c === 'ENOTCONN') return new RemoteError('unreachable', `${path}: ${c}`, { cause: e });
  return new RemoteError('io', `${path}: ${c ?? (e as Error).message}`, { cause: e });
}
