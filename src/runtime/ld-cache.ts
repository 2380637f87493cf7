/**
 * Reader for glibc's /etc/ld.so.cache (`glibc-ld.so.cache1.1`, optionally
 * behind the old `ld.so-1.7.0` table), as written by ldconfig.
 */
import { RocmflowError } from '../errors.js';

/** One cache entry: a soname and the path ldconfig found it at. */
export interface LdCacheEntry {
  /** The soname, e.g. `libc.so.6`. */
  name: string;
  /** Absolute path, e.g. `/lib/x86_64-linux-gnu/libc.so.6`. */
  path: string;
  /** ldconfig's flags: low byte the library type, high byte the ABI (0x0300 = x86-64). */
  flags: number;
}

const OLD_MAGIC = 'ld.so-1.7.0';
const NEW_MAGIC = 'glibc-ld.so.cache1.1';

/** Parse an ld.so.cache image; `file` only names it in errors. Entries keep the file's order (the loader's preference). */
export function parseLdCache(buf: Buffer, file: string): LdCacheEntry[] {
  const bad = (why: string) => new RocmflowError('E_LDCACHE', `malformed ld.so.cache ${file}: ${why}`);
  let start = 0;
  if (buf.subarray(0, OLD_MAGIC.length).toString('latin1') === OLD_MAGIC) {
    if (buf.length < 16) throw bad('truncated old header');
    const nlibs = buf.readUInt32LE(12);
    // the new table follows the old one, 8-byte aligned
    start = (16 + nlibs * 12 + 7) & ~7;
    if (start + NEW_MAGIC.length > buf.length) return []; // an old-format-only cache: nothing glibc still reads
  }
  if (buf.subarray(start, start + NEW_MAGIC.length).toString('latin1') !== NEW_MAGIC) throw bad(`no "${NEW_MAGIC}" header`);
  if (buf.length < start + 48) throw bad('truncated header');
  const nlibs = buf.readUInt32LE(start + 20);
  const entriesEnd = start + 48 + nlibs * 24;
  if (entriesEnd > buf.length) throw bad(`${nlibs} entries do not fit in ${buf.length} bytes`);
  const str = (off: number) => {
    // string offsets count from the start of the new header
    const at = start + off;
    if (at >= buf.length) throw bad(`string offset ${off} out of bounds`);
    const end = buf.indexOf(0, at);
    return buf.subarray(at, end < 0 ? buf.length : end).toString('utf8');
  };
  const out: LdCacheEntry[] = [];
  for (let i = 0; i < nlibs; i++) {
    const o = start + 48 + i * 24;
    out.push({ flags: buf.readInt32LE(o), name: str(buf.readUInt32LE(o + 4)), path: str(buf.readUInt32LE(o + 8)) });
  }
  return out;
}
