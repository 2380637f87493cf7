import { createHash } from 'node:crypto';
import { chmod, link, mkdir, open, readdir, symlink, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { RocmflowError } from '../errors.js';
import type { TarEntry } from './tar-entries.js';

export interface ExtractOptions {
  signal?: AbortSignal;
  /** Called after each regular file is written, with the sha256 (hex) of what was written. */
  onFile?(entry: TarEntry, sha256: string): void;
  /** Content bytes written so far. */
  onProgress?(bytes: number): void;
  /** Named in error messages, e.g. the snapshot's path. */
  label?: string;
}

/**
 * Extract a tar stream into `dest` (created if missing, must be empty).
 * Reads ustar, pax (`path`, `linkpath`, `size`) and GNU long names. Refuses
 * absolute or `..` paths, entries below a symlink of the same archive,
 * hardlinks to anything but an earlier file of the archive, and device
 * nodes/fifos: nothing is written outside `dest`. Returns the entries in
 * archive order.
 */
export async function extractTar(stream: Readable, dest: string, opts: ExtractOptions = {}): Promise<TarEntry[]> {
  const label = opts.label ?? 'archive';
  const unsafe = (msg: string) => new RocmflowError('E_UNSAFE_ARCHIVE', `${label}: ${msg}`);
  await mkdir(dest, { recursive: true });
  if ((await readdir(dest)).length) throw new RocmflowError('E_DEST_NOT_EMPTY', `${dest} is not empty; restore into a new or empty directory`, { exitCode: 2 });
  const r = new ByteReader(stream);
  const entries: TarEntry[] = [];
  const files = new Set<string>();
  const links: string[] = [];
  const dirs: { full: string; mode: number; mtime: number }[] = [];
  let pax: Record<string, string> = {};
  let content = 0;
  for (;;) {
    opts.signal?.throwIfAborted();
    const h = await r.read(512);
    if (!h) throw unsafe('truncated (no end-of-archive marker)');
    if (h.every((x) => x === 0)) break;
    checkSum(h, unsafe);
    const type = String.fromCharCode(h[156]!) || '0';
    let size = pax.size !== undefined ? Number(pax.size) : octal(h, 124, 12);
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      const body = (await r.readPadded(size)).toString('utf8');
      if (type === 'x') pax = { ...pax, ...parsePax(body) };
      else if (type === 'L') pax.path = body.replace(/\0+$/, '');
      else if (type === 'K') pax.linkpath = body.replace(/\0+$/, '');
      continue;
    }
    const prefix = cstr(h, 345, 155);
    const rawName = pax.path ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
    const target = pax.linkpath ?? cstr(h, 157, 100);
    pax = {};
    // GNU tar archives the top directory itself as "./"
    if (type === '5' && rawName.split('/').every((x) => x === '' || x === '.')) continue;
    const path = safePath(rawName, unsafe);
    const mode = octal(h, 100, 8) & 0o7777;
    const mtime = octal(h, 136, 12);
    const full = join(dest, path);
    if (links.some((l) => path.startsWith(`${l}/`))) throw unsafe(`entry ${path} lies below a symlink of the archive`);
    await mkdir(dirname(full), { recursive: true });
    if (type === '0' || type === '\0' || type === '7') {
      const hash = createHash('sha256');
      const fh = await open(full, 'wx');
      try {
        for await (const chunk of r.chunks(size)) {
          hash.update(chunk);
          await fh.write(chunk);
          content += chunk.length;
          opts.onProgress?.(content);
        }
        await fh.chmod(mode);
      } finally {
        await fh.close();
      }
      await r.skip((512 - (size % 512)) % 512);
      await utimes(full, mtime, mtime);
      const e: TarEntry = { path, type: 'file', mode, size };
      files.add(path);
      entries.push(e);
      opts.onFile?.(e, hash.digest('hex'));
      continue;
    }
    if (size) await r.readPadded(size); // links and dirs carry no data; skip any
    size = 0;
    if (type === '5') {
      await mkdir(full, { recursive: true });
      dirs.push({ full, mode, mtime });
      entries.push({ path, type: 'dir', mode, size });
    } else if (type === '2') {
      await symlink(target, full);
      links.push(path);
      entries.push({ path, type: 'symlink', mode: 0o777, size, target });
    } else if (type === '1') {
      const to = safePath(target, unsafe);
      if (!files.has(to)) throw unsafe(`hardlink ${path} points at ${to}, which is not an earlier file of the archive`);
      await link(join(dest, to), full);
      entries.push({ path, type: 'hardlink', mode, size, target: to });
    } else {
      throw unsafe(`entry ${path} is a ${TYPE_NAMES[type] ?? `type ${JSON.stringify(type)} entry`}; refused`);
    }
  }
  // directory modes last, deepest first, so read-only directories can still be filled
  for (const d of dirs.reverse()) {
    await chmod(d.full, d.mode);
    await utimes(d.full, d.mtime, d.mtime);
  }
  await r.drain();
  return entries;
}

const TYPE_NAMES: Record<string, string> = { '3': 'character device', '4': 'block device', '6': 'fifo' };

function safePath(p: string, unsafe: (m: string) => Error): string {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  if (p.startsWith('/')) throw unsafe(`absolute path ${JSON.stringify(p)} refused`);
  if (parts.includes('..')) throw unsafe(`path ${JSON.stringify(p)} with ".." refused`);
  if (!parts.length) throw unsafe('empty entry path');
  return parts.join('/');
}

function checkSum(h: Buffer, unsafe: (m: string) => Error): void {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  if (sum !== octal(h, 148, 8)) throw unsafe('corrupt tar header (checksum mismatch)');
}

function cstr(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

function octal(b: Buffer, off: number, len: number): number {
  // GNU base-256 for values that do not fit in octal
  if (b[off]! & 0x80) {
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + b[i]!;
    return v;
  }
  const s = cstr(b, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}

function parsePax(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  const buf = Buffer.from(body);
  let i = 0;
  while (i < buf.length) {
    const sp = buf.indexOf(0x20, i);
    const len = parseInt(buf.toString('latin1', i, sp), 10);
    if (!(len > 0)) break;
    const rec = buf.toString('utf8', sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** Exact-size reads over a stream of chunks. */
class ByteReader {
  #it: AsyncIterator<Buffer>;
  #buf: Buffer = Buffer.alloc(0);

  constructor(stream: Readable) {
    this.#it = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  async #fill(): Promise<boolean> {
    const { value, done } = await this.#it.next();
    if (done) return false;
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, value]) : value;
    return true;
  }

  /** Exactly `n` bytes, or null at a clean end of stream. */
  async read(n: number): Promise<Buffer | null> {
    while (this.#buf.length < n) {
      if (!(await this.#fill())) {
        if (this.#buf.length === 0) return null;
        throw new RocmflowError('E_UNSAFE_ARCHIVE', 'archive is truncated');
      }
    }
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  async readPadded(n: number): Promise<Buffer> {
    const b = n ? await this.read(n) : Buffer.alloc(0);
    if (!b) throw new RocmflowError('E_UNSAFE_ARCHIVE', 'archive is truncated');
    const copy = Buffer.from(b);
    await this.skip((512 - (n % 512)) % 512);
    return copy;
  }

  async skip(n: number): Promise<void> {
    if (n && !(await this.read(n))) throw new RocmflowError('E_UNSAFE_ARCHIVE', 'archive is truncated');
  }

  /** `n` bytes as they arrive, without collecting them. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (!this.#buf.length && !(await this.#fill())) throw new RocmflowError('E_UNSAFE_ARCHIVE', 'archive is truncated');
      const take = Math.min(n, this.#buf.length);
      yield this.#buf.subarray(0, take);
      this.#buf = this.#buf.subarray(take);
      n -= take;
    }
  }

  /** Read to the end (trailing zero blocks), so the producer finishes. */
  async drain(): Promise<void> {
    this.#buf = Buffer.alloc(0);
    while (await this.#fill()) this.#buf = Buffer.alloc(0);
  }
}
