/**
 * A large blob download fails part-way: the error that comes out is the
 * source's own, every descriptor the download opened is closed exactly
 * once, and another file opened meanwhile is left alone.
 */
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { FOLLOW_FROM, streamToFile } from '../../src/cache/remote/stream-to-file.js';

const dir = mkdtempSync(join(tmpdir(), 'rocmflow-stf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
/** Descriptors of this process open on `file` (a closed one is gone, whatever else threads open). */
const openOn = (file: string) =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(file);
    } catch {
      return false;
    }
  }).length;

/** 1 MiB chunks; after `failAfter` of them, an ECONNRESET as a dropped socket gives. */
function source(chunks: number, failAfter?: number): Readable {
  let n = 0;
  return new Readable({
    read() {
      if (n === failAfter) return this.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      if (n === chunks) return this.push(null);
      this.push(Buffer.alloc(1 << 20, n++ & 0xff));
    },
  });
}

describe('streamToFile, followed (large blobs)', () => {
  it('a source that fails part-way rejects with its own error, closing what it opened once', async () => {
    // another file, open while the download runs and fails: it must stay open and ours
    const other = join(dir, 'other');
    const ofd = openSync(other, 'w');
    const blob = join(dir, 'blob.tmp');
    const err = await streamToFile(source(40, 20), blob, FOLLOW_FROM * 2).catch((e) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNRESET');
    writeSync(ofd, 'still mine');
    closeSync(ofd);
    expect(readFileSync(other, 'utf8')).toBe('still mine');
    // the write stream closes its descriptor as it is destroyed, a moment after the rejection
    for (let i = 0; i < 100 && openOn(blob) > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(openOn(blob)).toBe(0);
  });

  it('a whole download gives the digest of the bytes written, and leaves no descriptor open', async () => {
    const dest = join(dir, 'whole.tmp');
    const got = await streamToFile(source(24), dest, 24 << 20);
    expect(got).toEqual({ bytes: 24 << 20, sha256: createHash('sha256').update(readFileSync(dest)).digest('hex') });
    expect(openOn(dest)).toBe(0);
  });
});
