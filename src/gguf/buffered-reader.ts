import type { FileHandle } from 'node:fs/promises';

/**
 * Sequential little-endian reads from a file through a window buffer, so a
 * multi-GB model's header is read in a few large reads and its tensor data is
 * never touched. `ensure(n)` returns undefined when the bytes are already
 * buffered: callers skip the `await` then, which keeps reading 150k-entry
 * token arrays cheap.
 */
export class BufferedReader {
  private buf: Buffer;
  private start = 0; // file offset of buf[0]
  private end = 0; // file offset just past the buffered bytes
  /** File offset of the next byte to read. */
  pos = 0;

  constructor(
    private readonly fh: FileHandle,
    /** File size in bytes. */
    readonly size: number,
    private readonly onShort: (need: number) => Error,
    private readonly chunk = 1 << 20,
  ) {
    this.buf = Buffer.alloc(0);
  }

  /** Bytes left in the file after `pos`. */
  get remaining(): number {
    return this.size - this.pos;
  }

  /** Make `n` bytes from `pos` available; throws `onShort(n)` past EOF. */
  ensure(n: number): Promise<void> | undefined {
    if (this.pos + n <= this.end) return undefined;
    if (this.pos + n > this.size) throw this.onShort(n);
    return this.fill(n);
  }

  private async fill(n: number): Promise<void> {
    const want = Math.min(Math.max(n, this.chunk), this.size - this.pos);
    const next = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await this.fh.read(next, got, want - got, this.pos + got);
      if (bytesRead === 0) throw this.onShort(n); // the file shrank under us
      got += bytesRead;
    }
    this.buf = next;
    this.start = this.pos;
    this.end = this.pos + want;
  }

  /** Move forward without reading (e.g. over a skipped array). */
  skip(n: number): void {
    if (this.pos + n > this.size) throw this.onShort(n);
    this.pos += n;
  }

  private at(n: number): number {
    const i = this.pos - this.start;
    this.pos += n;
    return i;
  }

  // The getters below assume ensure() covered them.
  u8(): number { return this.buf.readUInt8(this.at(1)); }
  i8(): number { return this.buf.readInt8(this.at(1)); }
  u16(): number { return this.buf.readUInt16LE(this.at(2)); }
  i16(): number { return this.buf.readInt16LE(this.at(2)); }
  u32(): number { return this.buf.readUInt32LE(this.at(4)); }
  i32(): number { return this.buf.readInt32LE(this.at(4)); }
  f32(): number { return this.buf.readFloatLE(this.at(4)); }
  f64(): number { return this.buf.readDoubleLE(this.at(8)); }
  u64(): bigint { return this.buf.readBigUInt64LE(this.at(8)); }
  i64(): bigint { return this.buf.readBigInt64LE(this.at(8)); }
  utf8(n: number): string {
    const i = this.at(n);
    return this.buf.toString('utf8', i, i + n);
  }
}
