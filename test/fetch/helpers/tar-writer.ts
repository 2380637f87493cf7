/**
 * Hand-made tar archives for the refusal tests: real `tar` will not write
 * most hostile members (`../evil`, device nodes without root, ...), so these
 * ustar headers are built byte by byte.
 */
import { gzipSync } from 'node:zlib';

export interface RawMember {
  path: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';
  data?: string;
  linkname?: string;
  mode?: number;
  mtime?: number;
}

const FLAGS = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' } as const;

function octal(n: number, len: number): string {
  return n.toString(8).padStart(len - 1, '0') + '\0';
}

function header(m: RawMember, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(m.path, 0, 100, 'utf8');
  h.write(octal(m.mode ?? (m.type === 'dir' ? 0o755 : 0o644), 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(m.mtime ?? 1_700_000_000, 12), 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(FLAGS[m.type ?? 'file'], 156, 'latin1');
  h.write(m.linkname ?? '', 157, 100, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'latin1');
  return h;
}

/** An uncompressed tar of `members`. */
export function rawTar(members: RawMember[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const data = Buffer.from(m.type === undefined || m.type === 'file' ? m.data ?? '' : '');
    parts.push(header(m, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function rawTarGz(members: RawMember[]): Buffer {
  return gzipSync(rawTar(members));
}
