/**
 * A GGUF v3 writer: metadata of every value type (nested arrays included)
 * and tensors, each tensor's data aligned to `general.alignment` (default
 * 32) and padded with zeros, as llama.cpp's loader expects. Output goes to
 * a temp file renamed into place, so a crash never leaves a half model.
 */
import { open, rename, rm } from 'node:fs/promises';
import { RocmflowError } from '../errors.js';
import { encodeTensor } from './encode.js';
import {
  GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VALUE_TYPES, ggmlByteSize, ggmlTypeByName,
  type GgufKv, type GgufValue, type GgufValueType,
} from './types.js';

/** A tensor to write. */
export interface GgufTensorInput {
  name: string;
  /** ggml order: dims[0] is the row length. */
  dims: number[];
  /** ggml type name: `F32`, `F16`, `Q8_0`, ... */
  type: string;
  /** Float values (encoded to `type`; F32, F16, Q8_0) or raw bytes already in `type`'s layout. */
  data: Float32Array | Uint8Array;
}

export interface GgufWriteInput {
  /** Metadata in the order to write it. */
  metadata: Iterable<readonly [string, GgufKv]>;
  tensors?: GgufTensorInput[];
}

/** Write a GGUF v3 file; returns its size. */
export async function writeGguf(path: string, input: GgufWriteInput): Promise<{ bytes: number }> {
  const metadata = [...input.metadata];
  const tensors = input.tensors ?? [];
  const fail = (msg: string) => new RocmflowError('E_GGUF', `${path}: ${msg}`);

  const alignKv = metadata.find(([k]) => k === 'general.alignment')?.[1];
  const alignment = alignKv ? Number(alignKv.value) : GGUF_DEFAULT_ALIGNMENT;
  if (alignKv && (alignKv.type !== 'uint32' || !(alignment > 0) || (alignment & (alignment - 1)) !== 0))
    throw fail('general.alignment must be a power-of-two uint32');

  const h = new ByteSink();
  h.u32(GGUF_MAGIC);
  h.u32(3);
  h.u64(BigInt(tensors.length));
  h.u64(BigInt(metadata.length));
  for (const [key, kv] of metadata) {
    h.string(key);
    h.u32(typeCode(kv.type));
    try {
      writeValue(h, kv.type, kv.value);
    } catch (e) {
      throw fail(`metadata "${key}": ${(e as Error).message}`);
    }
  }

  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const info = ggmlTypeByName(t.type);
    if (!info) throw fail(`tensor "${t.name}": unknown ggml type ${t.type}`);
    if (t.dims.length < 1 || t.dims.length > 4) throw fail(`tensor "${t.name}": 1 to 4 dimensions allowed`);
    const elements = t.dims.reduce((a, b) => a * b, 1);
    if (t.dims[0]! % info.blockSize !== 0) throw fail(`tensor "${t.name}": row length ${t.dims[0]} is not a multiple of the ${info.name} block size ${info.blockSize}`);
    const bytes = t.data instanceof Float32Array ? encodeTensor(info.name, t.data, t.name) : t.data;
    const expected = ggmlByteSize(info, elements);
    if (t.data instanceof Float32Array ? t.data.length !== elements : bytes.length !== expected)
      throw fail(`tensor "${t.name}": data does not match its shape [${t.dims.join(', ')}] of ${info.name}`);
    h.string(t.name);
    h.u32(t.dims.length);
    for (const d of t.dims) h.u64(BigInt(d));
    h.u32(info.id);
    h.u64(BigInt(offset));
    blobs.push(bytes);
    offset += padTo(bytes.length, alignment);
  }

  const header = h.bytes();
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  let size = 0;
  try {
    const write = async (b: Uint8Array) => {
      await fh.write(b);
      size += b.length;
    };
    await write(header);
    // like gguf-py, a tensor-less file (a vocab) ends right after its metadata
    if (blobs.length) await write(new Uint8Array(padTo(header.length, alignment) - header.length));
    for (const b of blobs) {
      await write(b);
      await write(new Uint8Array(padTo(b.length, alignment) - b.length));
    }
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
  return { bytes: size };
}

function padTo(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

function typeCode(t: GgufValueType): number {
  const code = GGUF_VALUE_TYPES.indexOf(t);
  if (code < 0) throw new Error(`unknown value type ${String(t)}`);
  return code;
}

function writeValue(h: ByteSink, type: GgufValueType, v: GgufValue): void {
  const num = (min: number, max: number, integer = true) => {
    if (typeof v !== 'number' || (integer && !Number.isInteger(v)) || v < min || v > max)
      throw new Error(`expected ${type}, got ${typeof v === 'object' ? 'an array' : String(v)}`);
    return v;
  };
  const big = (min: bigint, max: bigint) => {
    const b = typeof v === 'bigint' ? v : typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : undefined;
    if (b === undefined || b < min || b > max) throw new Error(`expected ${type}, got ${String(v)}`);
    return b;
  };
  switch (type) {
    case 'uint8': return h.u8(num(0, 0xff));
    case 'int8': return h.i8(num(-0x80, 0x7f));
    case 'uint16': return h.u16(num(0, 0xffff));
    case 'int16': return h.i16(num(-0x8000, 0x7fff));
    case 'uint32': return h.u32(num(0, 0xffffffff));
    case 'int32': return h.i32(num(-0x80000000, 0x7fffffff));
    case 'float32': return h.f32(num(-Infinity, Infinity, false));
    case 'float64': return h.f64(num(-Infinity, Infinity, false));
    case 'uint64': return h.u64(big(0n, 0xffffffffffffffffn));
    case 'int64': return h.i64(big(-(1n << 63n), (1n << 63n) - 1n));
    case 'bool':
      if (typeof v !== 'boolean') throw new Error(`expected bool, got ${String(v)}`);
      return h.u8(v ? 1 : 0);
    case 'string':
      if (typeof v !== 'string') throw new Error(`expected string, got ${typeof v}`);
      return h.string(v);
    case 'array': {
      if (typeof v !== 'object' || v.values === undefined) throw new Error('expected an array with values (read without skipArrays)');
      h.u32(typeCode(v.itemType));
      h.u64(BigInt(v.values.length));
      for (const x of v.values) writeValue(h, v.itemType, x);
      return;
    }
  }
}

/** A growable little-endian byte buffer for the header. */
class ByteSink {
  private buf = Buffer.alloc(1 << 16);
  private n = 0;

  private room(k: number): number {
    if (this.n + k > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, this.n + k));
      this.buf.copy(next, 0, 0, this.n);
      this.buf = next;
    }
    const at = this.n;
    this.n += k;
    return at;
  }

  u8(v: number) { const at = this.room(1); this.buf.writeUInt8(v, at); }
  i8(v: number) { const at = this.room(1); this.buf.writeInt8(v, at); }
  u16(v: number) { const at = this.room(2); this.buf.writeUInt16LE(v, at); }
  i16(v: number) { const at = this.room(2); this.buf.writeInt16LE(v, at); }
  u32(v: number) { const at = this.room(4); this.buf.writeUInt32LE(v, at); }
  i32(v: number) { const at = this.room(4); this.buf.writeInt32LE(v, at); }
  f32(v: number) { const at = this.room(4); this.buf.writeFloatLE(v, at); }
  f64(v: number) { const at = this.room(8); this.buf.writeDoubleLE(v, at); }
  u64(v: bigint) { const at = this.room(8); this.buf.writeBigUInt64LE(v, at); }
  i64(v: bigint) { const at = this.room(8); this.buf.writeBigInt64LE(v, at); }
  string(s: string) {
    const len = Buffer.byteLength(s, 'utf8');
    this.u64(BigInt(len));
    const at = this.room(len); // before reading this.buf: room() may replace it
    this.buf.write(s, at, 'utf8');
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.n);
  }
}
