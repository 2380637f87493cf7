import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { RocmflowError } from '../errors.js';
import type { TarEntry } from './tar-entries.js';

export interface WriteTarOptions {
  /** mtime of every entry, seconds since the epoch. @default SOURCE_DATE_EPOCH, else 0 */
  mtime?: number;
  signal?: AbortSignal;
  /** Called after each regular file's data is written, with its sha256 (hex). */
  onFile?(entry: TarEntry, sha256: string): void;
  /** Content bytes written so far (file data only, not headers). */
  onProgress?(bytes: number): void;
}

export const BLOCK = 512;
const ZERO = Buffer.alloc(BLOCK * 2);
/** Largest size the 11-digit octal field holds; beyond it the size goes into a pax header. */
export const MAX_OCTAL_SIZE = 0o77777777777;
const TYPE = { file: '0', hardlink: '1', symlink: '2', dir: '5' } as const;

/** mtime for reproducible output: SOURCE_DATE_EPOCH when set (reproducible-builds.org), else 0. */
export function defaultMtime(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return 0;
  if (!/^\d+$/.test(v)) throw new RocmflowError('E_BAD_ENV', `SOURCE_DATE_EPOCH must be whole seconds since the epoch (got ${JSON.stringify(v)})`, { exitCode: 2 });
  return Number(v);
}

/**
 * Stream `entries` (already sorted, see collectTree/planEntries) as a POSIX
 * tar: ustar headers, with a pax extended header before any entry whose path
 * or link target is over 100 bytes or whose size does not fit 11 octal
 * digits. Owners are 0/0 "root", mtimes fixed, modes kept, so the same tree
 * gives the same bytes. File data is streamed and backpressure respected.
 * Does not end `out`. Returns the number of bytes written.
 */
export async function writeTar(entries: readonly TarEntry[], out: Writable, opts: WriteTarOptions = {}): Promise<number> {
  const mtime = opts.mtime ?? defaultMtime();
  if (!Number.isInteger(mtime) || mtime < 0 || mtime > MAX_OCTAL_SIZE)
    throw new RocmflowError('E_BAD_MTIME', `mtime must be whole seconds since the epoch (got ${mtime})`, { exitCode: 2 });
  let written = 0;
  let content = 0;
  const write = async (buf: Buffer): Promise<void> => {
    opts.signal?.throwIfAborted();
    written += buf.length;
    if (!out.write(buf)) await drained(out);
  };
  for (const e of entries) {
    for (const h of entryHeaders(e, mtime)) await write(h);
    if (e.type !== 'file') continue;
    if (e.size === 0) {
      opts.onFile?.(e, EMPTY_SHA256);
      continue;
    }
    // hashed only for a caller that wants the digests (an archive of blobs, e.g. an oci-archive, does not)
    const hash = opts.onFile ? createHash('sha256') : null;
    let got = 0;
    const fh = await open(e.source!, 'r');
    try {
      for await (const chunk of fh.createReadStream({ highWaterMark: 1 << 20, autoClose: false }) as AsyncIterable<Buffer>) {
        got += chunk.length;
        if (got > e.size) break;
        hash?.update(chunk);
        await write(chunk);
        content += chunk.length;
        opts.onProgress?.(content);
      }
    } finally {
      await fh.close();
    }
    if (got !== e.size) throw new RocmflowError('E_TREE_CHANGED', `${e.source} changed size while being archived (${e.size} → ${got} bytes)`);
    const pad = (BLOCK - (e.size % BLOCK)) % BLOCK;
    if (pad) await write(ZERO.subarray(0, pad));
    if (hash) opts.onFile?.(e, hash.digest('hex'));
  }
  await write(ZERO);
  return written;
}

const EMPTY_SHA256 = createHash('sha256').digest('hex');

function drained(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = () => {
      out.off('error', bad);
      resolve();
    };
    const bad = (e: Error) => {
      out.off('drain', ok);
      reject(e);
    };
    out.once('drain', ok).once('error', bad);
  });
}

/** The header block(s) of one entry: an optional pax header, then the ustar header. */
export function entryHeaders(e: TarEntry, mtime: number): Buffer[] {
  const name = e.type === 'dir' ? `${e.path}/` : e.path;
  const target = e.target ?? '';
  const pax: [string, string][] = [];
  if (Buffer.byteLength(name) > 100) pax.push(['path', name]);
  if (Buffer.byteLength(target) > 100) pax.push(['linkpath', target]);
  if (e.size > MAX_OCTAL_SIZE) pax.push(['size', String(e.size)]);
  const out: Buffer[] = [];
  if (pax.length) {
    const body = Buffer.from(pax.map(([k, v]) => paxRecord(k, v)).join(''));
    // a fixed header name keeps output independent of the tool and process id
    out.push(ustar({ name: 'PaxHeader', mode: 0o644, size: body.length, mtime, type: 'x', target: '' }));
    out.push(body, ZERO.subarray(0, (BLOCK - (body.length % BLOCK)) % BLOCK));
  }
  out.push(ustar({ name, mode: e.mode, size: e.type === 'file' ? e.size : 0, mtime, type: TYPE[e.type], target }));
  return out;
}

/** `"<len> key=value\n"`, where len counts the whole record including its own digits. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  const restLen = Buffer.byteLength(rest);
  let digits = String(restLen).length;
  while (String(restLen + digits).length !== digits) digits += 1;
  return `${restLen + digits}${rest}`;
}

function ustar(h: { name: string; mode: number; size: number; mtime: number; type: string; target: string }): Buffer {
  const b = Buffer.alloc(BLOCK);
  // over-long fields are truncated here; the pax header before carries the full value
  b.write(h.name, 0, 100, 'utf8');
  octal(b, 100, 8, h.mode);
  octal(b, 108, 8, 0);
  octal(b, 116, 8, 0);
  octal(b, 124, 12, h.size > MAX_OCTAL_SIZE ? 0 : h.size);
  octal(b, 136, 12, h.mtime);
  b.write(h.type, 156, 1, 'latin1');
  b.write(h.target, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 8, 'latin1');
  b.write('root', 265, 32, 'latin1');
  b.write('root', 297, 32, 'latin1');
  octal(b, 329, 8, 0);
  octal(b, 337, 8, 0);
  b.write('        ', 148, 8, 'latin1');
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1');
  return b;
}

function octal(b: Buffer, off: number, len: number, v: number): void {
  const s = v.toString(8).padStart(len - 1, '0');
  if (s.length > len - 1) throw new Error(`tar field overflow: ${v}`);
  b.write(`${s}\u0000`, off, len, 'latin1');
}
