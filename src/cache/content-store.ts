/**
 * The content-addressed store: `cas/<2 hex>/<sha256>` blobs, read-only,
 * deduplicated. A blob becomes visible only by an atomic rename of a
 * complete temp file. Every blob's mtime is set to a sentinel; a blob that
 * was written to through a hard link (its mtime changes) is caught by one
 * lstat on restore.
 */
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import {
  chmodSync, closeSync, copyFileSync, constants, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, renameSync,
  rmSync, statSync, unlinkSync, utimesSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { hashFileSync } from '../util/hash-pool.js';
import { RocmflowError } from '../errors.js';
import { isSha256Hex } from '../util/canonical.js';

/** Blob mtime: 2000-01-01T00:00:00Z. Anything else means the blob was modified. */
export const BLOB_MTIME = 946684800;

export class ContentStore {
  readonly dir: string;
  private readonly tmpDir: string;

  constructor(cacheDir: string) {
    this.dir = join(cacheDir, 'cas');
    this.tmpDir = join(cacheDir, 'tmp');
  }

  path(digest: string): string {
    return join(this.dir, digest.slice(0, 2), digest);
  }

  tmpPath(): string {
    mkdirSync(this.tmpDir, { recursive: true });
    return join(this.tmpDir, `${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  has(digest: string): boolean {
    try {
      lstatSync(this.path(digest));
      return true;
    } catch {
      return false;
    }
  }

  /** A blob whose stat shows it was modified after it was stored. */
  looksModified(digest: string, size: number): boolean {
    try {
      return this.statLooksModified(lstatSync(this.path(digest)), size);
    } catch {
      return true;
    }
  }

  statLooksModified(st: { size: number; mtimeMs: number }, size: number): boolean {
    return st.size !== size || Math.floor(st.mtimeMs / 1000) !== BLOB_MTIME;
  }

  /**
   * Is the file with stat `st` this store's own blob of `digest` (the same
   * inode, unmodified)? Then its bytes hash to `digest` without reading
   * them: an output or input that is a hard link to a blob (an OCI layout
   * linking a cached snapshot) is not hashed again.
   */
  isBlob(st: { dev: number; ino: number; size: number; nlink: number }, digest: string): boolean {
    if (!isSha256Hex(digest) || st.nlink < 2) return false;
    try {
      const b = lstatSync(this.path(digest));
      return b.isFile() && b.dev === st.dev && b.ino === st.ino && !this.statLooksModified(b, st.size);
    } catch {
      return false;
    }
  }

  /**
   * Store `file` (whose digest is known) as a blob. Same filesystem: the
   * file itself is hard-linked in, so nothing is copied and the output
   * stays a link to the blob; otherwise it is copied. Returns whether the
   * source file is now the blob's inode.
   */
  ingest(file: string, digest: string, executable: boolean, ownLinks = 1): { linked: boolean } {
    const dest = this.path(digest);
    if (this.has(digest)) return { linked: false };
    mkdirSync(join(this.dir, digest.slice(0, 2)), { recursive: true });
    const tmp = this.tmpPath();
    let linked = false;
    // a file with other hard links (say, the user's model linked into an
    // output) must not have its mode and mtime changed under it: copy it.
    // `ownLinks`: how many of its links the caller knows to be its own (the
    // outputs being captured), which it may change together
    if (lstatSync(file).nlink <= ownLinks) {
      try {
        linkSync(file, tmp);
        linked = true;
      } catch {}
    }
    if (!linked) copyFileSync(file, tmp, constants.COPYFILE_FICLONE);
    try {
      chmodSync(tmp, executable ? 0o555 : 0o444);
      utimesSync(tmp, BLOB_MTIME, BLOB_MTIME);
      renameSync(tmp, dest);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw storeError(e, dest);
    }
    return { linked };
  }

  /** Store bytes (logs, small metadata) as a blob; returns the digest. */
  putBytes(data: Buffer | string, digest: string): void {
    if (this.has(digest)) return;
    mkdirSync(join(this.dir, digest.slice(0, 2)), { recursive: true });
    const tmp = this.tmpPath();
    try {
      writeFileSync(tmp, data, { mode: 0o444 });
      const fd = openSync(tmp, 'r');
      fsyncSync(fd);
      closeSync(fd);
      utimesSync(tmp, BLOB_MTIME, BLOB_MTIME);
      renameSync(tmp, this.path(digest));
    } catch (e) {
      rmSync(tmp, { force: true });
      throw storeError(e, this.path(digest));
    }
  }

  /**
   * Move a fully written temp file (e.g. a download) into place after
   * checking its digest. `hashedAs`: the digest the writer computed over the
   * very bytes it wrote to `tmp` (a download hashes as it streams), so the
   * file is not read a second time.
   */
  adopt(tmp: string, digest: string, opts: { hashedAs?: string } = {}): void {
    const actual = opts.hashedAs ?? hashFileSync(tmp).digest;
    if (actual !== digest) {
      rmSync(tmp, { force: true });
      throw new RocmflowError('E_CHECKSUM', `blob ${digest}: content hashes to ${actual}; refused`);
    }
    mkdirSync(join(this.dir, digest.slice(0, 2)), { recursive: true });
    chmodSync(tmp, statSync(tmp).mode & 0o111 ? 0o555 : 0o444);
    utimesSync(tmp, BLOB_MTIME, BLOB_MTIME);
    renameSync(tmp, this.path(digest));
  }

  /** Re-hash a blob; a mismatch evicts it. Returns whether it was good. */
  verify(digest: string): boolean {
    const p = this.path(digest);
    try {
      // a blob is a regular file; a link or anything else in its place is evicted unread
      if (lstatSync(p).isFile() && hashFileSync(p).digest === digest) return true;
    } catch {
      return false;
    }
    this.evict(digest);
    return false;
  }

  evict(digest: string): void {
    try {
      unlinkSync(this.path(digest));
    } catch {}
  }

  /** Flush everything written so far to disk (one syncfs instead of an fsync per blob). */
  sync(): Promise<void> {
    return new Promise((resolve) => execFile('sync', ['-f', this.dir], () => resolve()));
  }
}

export function storeError(e: unknown, path: string): RocmflowError {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new RocmflowError('E_DISK_FULL', `disk full while writing ${path}: free space or run \`rocmflow cache gc --max-size SIZE\``, { cause: e });
  return new RocmflowError('E_CACHE_WRITE', `cannot write ${path}: ${(e as Error)?.message ?? e}`, { cause: e });
}
