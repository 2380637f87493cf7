/**
 * The one streaming tar reader (fetch, snapshot restore and source
 * unpacking all use it): ustar/POSIX headers, GNU long names and long link
 * targets (`L`/`K`), pax extended headers (`x`, `g`: path, linkpath, size,
 * mtime) and GNU base-256 sizes. It reads from any async byte source (a
 * decompression stream) and never holds more than one chunk of file data.
 * Every header's checksum is checked; a truncated or corrupt archive is a
 * TarFormatError naming the entry and the byte offset where it broke.
 */

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other';

/** One archive member, with the header extensions already applied. */
export interface TarEntry {
  /** The path as stored (not normalized). */
  readonly path: string;
  readonly type: TarEntryType;
  /** The raw type flag, for error messages about unsupported members. */
  readonly typeflag: string;
  readonly mode: number;
  readonly size: number;
  /** Seconds since the epoch (may be fractional from pax). */
  readonly mtime: number;
  /** Symlink target or hardlink source. */
  readonly linkname: string;
}

/** Thrown for malformed archives; the extractor turns it into a RocmflowError naming the archive. */
export class TarFormatError extends Error {
  override name = 'TarFormatError';
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo',
};

/** Pulls exact byte counts out of a chunked async source. */
class ByteReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private ended = false;
  /** Bytes consumed so far (the tar offset of the next byte). */
  pos = 0;
  /** Where in the archive we are, for error messages ("in the header after entry x"). */
  where = 'at the start';
  private readonly it: AsyncIterator<Buffer | Uint8Array | string>;

  constructor(source: AsyncIterable<Buffer | Uint8Array | string>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(n: number): Promise<boolean> {
    while (this.length < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else if (r.value.length > 0) {
        const b = typeof r.value === 'string' ? Buffer.from(r.value) : Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.length);
        this.chunks.push(b);
        this.length += b.length;
      }
    }
    return this.length >= n;
  }

  /** Up to `max` bytes from the front (at least 1), or null at the end. */
  async some(max: number): Promise<Buffer | null> {
    if (!(await this.fill(1))) return null;
    const first = this.chunks[0]!;
    if (first.length <= max) {
      this.chunks.shift();
      this.length -= first.length;
      this.pos += first.length;
      return first;
    }
    this.chunks[0] = first.subarray(max);
    this.length -= max;
    this.pos += max;
    return first.subarray(0, max);
  }

  /** Exactly `n` bytes, or null when the source ends first (with 0 bytes left) ; throws when it ends midway. */
  async exact(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) {
      if (this.length === 0) return null;
      throw new TarFormatError(`truncated ${this.where}: ${this.length} of ${n} bytes at offset ${this.pos}`);
    }
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const b = (await this.some(need))!;
      parts.push(b);
      need -= b.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }

  async skip(n: number): Promise<void> {
    while (n > 0) {
      const b = await this.some(Math.min(n, 1 << 20));
      if (!b) throw new TarFormatError(`truncated ${this.where} at offset ${this.pos}`);
      n -= b.length;
    }
  }

  /** Consume everything left (so a decompressor reaches its checksum trailer). */
  async drain(): Promise<void> {
    while (await this.some(1 << 20));
  }
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z < 0 ? s : s.subarray(0, z)).toString('utf8');
}

function num(b: Buffer, off: number, len: number): number {
  const f = b.subarray(off, off + len);
  if (f[0]! & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit as a marker
    let v = f[0]! & 0x7f;
    for (let i = 1; i < f.length; i++) v = v * 256 + f[i]!;
    return v;
  }
  const s = f.toString('latin1').replace(/\0.*$/s, '').trim();
  return s ? parseInt(s, 8) : 0;
}

function checksumOk(h: Buffer): boolean {
  const stored = num(h, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  return stored === unsigned || stored === signed;
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number(data.subarray(i, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || i + len > data.length) throw new TarFormatError('malformed pax header');
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** A member plus a reader for its data; unread data is skipped when iteration continues. */
export interface TarMember extends TarEntry {
  body(): AsyncGenerator<Buffer>;
}

/** Iterate the members of a tar stream. */
export async function* readTar(source: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<TarMember> {
  const r = new ByteReader(source);
  let global: Record<string, string> = {};
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  let last: string | null = null;
  const after = () => (last === null ? 'in the first header' : `in the header after entry "${last}"`);
  for (;;) {
    r.where = after();
    const offset = r.pos;
    const h = await r.exact(512);
    // every writer ends with zero blocks: an archive cut at a header boundary is truncated too
    if (!h) throw new TarFormatError(`truncated ${last === null ? 'before the first header' : `after entry "${last}"`}: no end-of-archive marker at offset ${offset}`);
    if (h.every((x) => x === 0)) {
      await r.drain();
      return;
    }
    if (!checksumOk(h)) throw new TarFormatError(`bad tar header checksum at offset ${offset} (${after().replace('in ', '')}): not a tar archive, or corrupt`);
    const flag = String.fromCharCode(h[156]!);
    const ext = { ...global, ...pax };
    const size = ext.size !== undefined ? Number(ext.size) : num(h, 124, 12);
    if (!Number.isSafeInteger(size) || size < 0) throw new TarFormatError('bad member size');
    const padded = Math.ceil(size / 512) * 512;

    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > 16 << 20) throw new TarFormatError(`oversized ${flag} header`);
      r.where = `inside a ${flag} header ${last === null ? 'at the start' : `after entry "${last}"`}`;
      const data = padded === 0 ? Buffer.alloc(0) : await r.exact(padded);
      if (!data) throw new TarFormatError(`truncated ${r.where} at offset ${r.pos}`);
      const body = data.subarray(0, size);
      if (flag === 'x') pax = { ...pax, ...parsePax(body) };
      else if (flag === 'g') global = { ...global, ...parsePax(body) };
      else if (flag === 'L') longName = cstr(body, 0, body.length);
      else longLink = cstr(body, 0, body.length);
      continue;
    }

    const magic = h.subarray(257, 263).toString('latin1');
    // POSIX ustar splits long names into prefix + name; GNU tar uses that area for other fields
    const prefix = magic === 'ustar\0' ? cstr(h, 345, 155) : '';
    const name = cstr(h, 0, 100);
    const path = ext.path ?? longName ?? (prefix ? `${prefix}/${name}` : name);
    last = path;
    r.where = `inside entry "${path}"`;
    const linkname = ext.linkpath ?? longLink ?? cstr(h, 157, 100);
    const mtime = ext.mtime !== undefined ? Number(ext.mtime) : num(h, 136, 12);
    let type = TYPES[flag] ?? 'other';
    // old archives mark directories only by a trailing slash
    if (type === 'file' && flag !== '7' && path.endsWith('/')) type = 'dir';
    pax = {};
    longName = longLink = undefined;

    let remaining = type === 'file' ? size : 0;
    const member: TarMember = {
      path, type, typeflag: flag, mode: num(h, 100, 8) & 0o7777, size: type === 'file' ? size : 0, mtime, linkname,
      async *body() {
        while (remaining > 0) {
          const b = await r.some(Math.min(remaining, 1 << 20));
          if (!b) throw new TarFormatError(`truncated inside entry "${path}" at offset ${r.pos}`);
          remaining -= b.length;
          yield b;
        }
      },
    };
    yield member;
    // skip whatever the consumer did not read, plus the block padding
    await r.skip(type === 'file' ? remaining + padded - size : padded);
    remaining = 0;
  }
}
