import { execFileSync } from 'node:child_process';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createCompressor, detectCompression, openDecompressed, type Compression } from '../../src/image/compress.js';
import { ParallelGzip } from '../../src/image/gzip-parallel.js';
import { noise, tempDir } from './fixtures.js';

const sha = (b: Buffer) => `sha256:${execFileSync('sha256sum', { input: b, encoding: 'utf8' }).split(' ')[0]}`;

async function compress(data: Buffer, path: string, format: Compression, level?: number) {
  const file = createWriteStream(path);
  const c = createCompressor(file, { format, level });
  // several writes, so backpressure and chunking are exercised
  for (let i = 0; i < data.length; i += 100_000) if (!c.input.write(data.subarray(i, i + 100_000))) await new Promise((r) => c.input.once('drain', r));
  c.input.end();
  const r = await c.done;
  await finished(file);
  return r;
}

describe('compress', () => {
  // half noise, half zeros: compressible like a real library
  const data = Buffer.concat([noise(2_000_000, 11), Buffer.alloc(2_000_000)]);

  for (const [format, tool] of [['zstd', ['zstd', '-dcq']], ['gzip', ['gzip', '-dc']]] as const) {
    it(`${format}: one pass gives both digests, and ${tool[0]} decompresses it to the input`, async () => {
      const d = tempDir();
      const out = join(d, `x.${format}`);
      const r = await compress(data, out, format);
      const packed = readFileSync(out);
      expect(r.uncompressed).toEqual({ digest: sha(data), size: data.length });
      expect(r.compressed).toEqual({ digest: sha(packed), size: packed.length });
      expect(packed.length).toBeLessThan(data.length * 0.6);
      expect(execFileSync(tool[0], [...tool.slice(1), out], { maxBuffer: 64 << 20 }).equals(data)).toBe(true);
      expect(await detectCompression(out)).toBe(format);
      const back = await openDecompressed(out);
      const chunks: Buffer[] = [];
      for await (const c of back.stream) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(data)).toBe(true);
      expect((await back.done).compressed.digest).toBe(r.compressed.digest);
      // same input, same bytes
      expect((await compress(data, join(d, 'again'), format)).compressed.digest).toBe(r.compressed.digest);
    });
  }

  it('gzip on several threads: a run of members that gzip and rocmflow read back, the same bytes on 1 and 3 threads', async () => {
    const piece = 4 << 20;
    const d = tempDir();
    for (const size of [0, 1, piece, piece + 1, Math.floor(2.5 * piece)]) {
      const input = Buffer.concat([noise(Math.floor(size / 2), size), Buffer.alloc(size - Math.floor(size / 2), 7)]);
      const outs: Buffer[] = [];
      for (const threads of [1, 3]) {
        const z = new ParallelGzip({ level: 6, threads });
        const got: Buffer[] = [];
        z.on('data', (b: Buffer) => got.push(b));
        for (let i = 0; i < input.length; i += 1_000_000) if (!z.write(input.subarray(i, i + 1_000_000))) await new Promise((r) => z.once('drain', r));
        z.end();
        await finished(z);
        outs.push(Buffer.concat(got));
      }
      expect(outs[1]!.equals(outs[0]!)).toBe(true);
      const path = join(d, `p${size}.gz`);
      writeFileSync(path, outs[0]!);
      expect(execFileSync('gzip', ['-dc', path], { maxBuffer: 64 << 20 }).equals(input)).toBe(true);
      const back = await openDecompressed(path);
      const chunks: Buffer[] = [];
      for await (const c of back.stream) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(input)).toBe(true);
    }
  });

  it('gzip output carries no name and no mtime (deterministic header)', async () => {
    const d = tempDir();
    await compress(data, join(d, 'x.gz'), 'gzip');
    const h = readFileSync(join(d, 'x.gz')).subarray(0, 10);
    expect(h[3]! & 0x08).toBe(0); // FNAME flag
    expect(h.readUInt32LE(4)).toBe(0); // MTIME
  });

  it('higher zstd levels compress harder; bad levels are refused', async () => {
    const d = tempDir();
    const text = Buffer.from(readFileSync(new URL(import.meta.url)).toString().repeat(200));
    const fast = await compress(text, join(d, '1'), 'zstd', 1);
    const strong = await compress(text, join(d, '19'), 'zstd', 19);
    expect(strong.compressed.size).toBeLessThan(fast.compressed.size);
    expect(() => createCompressor(createWriteStream(join(d, 'bad')), { format: 'zstd', level: 23 })).toThrow(/zstd level must be an integer from 1 to 22 \(got 23\)/);
    expect(() => createCompressor(createWriteStream(join(d, 'bad')), { format: 'gzip', level: 0 })).toThrow(/gzip level/);
  });

  it('a missing zstd is reported as a missing tool', async () => {
    const d = tempDir();
    const path = process.env.PATH;
    process.env.PATH = d;
    try {
      await expect(compress(Buffer.from('x'), join(d, 'x.zst'), 'zstd')).rejects.toMatchObject({ code: 'E_MISSING_TOOL', message: expect.stringContaining('zstd not found') });
    } finally {
      process.env.PATH = path;
    }
  });
});
