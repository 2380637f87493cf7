/**
 * A GGUF v2/v3 reader: header, metadata, tensor table. It reads only the
 * header region (through a buffered window), never tensor data, so `info`
 * on a multi-GB model costs a few MB of reads. Every malformed input is a
 * RocmflowError 'E_GGUF' naming the file and the byte offset.
 */
import { open } from 'node:fs/promises';
import { RocmflowError } from '../errors.js';
import { BufferedReader } from './buffered-reader.js';
import {
  GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VALUE_SIZE, GGUF_VALUE_TYPES,
  ggmlByteSize, ggmlType, type GgufArray, type GgufKv, type GgufValue, type GgufValueType,
} from './types.js';

/** One entry of the tensor table. */
export interface GgufTensorInfo {
  readonly name: string;
  /** ggml order: dims[0] is the innermost (row) length. */
  readonly dims: readonly number[];
  /** ggml type id (see `ggmlTypeName`). */
  readonly type: number;
  /** Offset of the tensor's data relative to `dataOffset`. */
  readonly offset: number;
  /** Number of elements (product of dims). */
  readonly elements: number;
  /** Bytes of data the tensor takes. */
  readonly bytes: number;
}

/** What `readGguf` returns. */
export interface GgufFile {
  readonly path: string;
  /** 2 or 3. */
  readonly version: number;
  /** File size in bytes. */
  readonly fileSize: number;
  /** Metadata in file order. */
  readonly metadata: ReadonlyMap<string, GgufKv>;
  readonly tensors: readonly GgufTensorInfo[];
  /** `general.alignment`, or 32. */
  readonly alignment: number;
  /** Absolute file offset where tensor data starts. */
  readonly dataOffset: number;
  /** True when read with `skipArrays` (array values then carry only their length). */
  readonly arraysSkipped: boolean;
}

export interface ReadGgufOptions {
  /** Do not materialise array values (token lists); their lengths are kept. Default false. */
  skipArrays?: boolean;
}

const MAX_DIMS = 4; // GGML_MAX_DIMS
const MAX_ARRAY_DEPTH = 8;
/**
 * Limits on what the file's own numbers may make this reader allocate (a
 * model may come from anywhere; the file's size alone allows gigabytes):
 * far above real models (tens of KB for a chat template, a few MB for an
 * embedded tokenizer JSON, some thousands of tensors, a few hundred
 * thousand vocabulary entries), far below V8's limits.
 */
const MAX_STRING = 64 << 20;
const MAX_ENTRIES = 1 << 22;
const MAX_ARRAY_ITEMS = 1 << 24;

/** Read a GGUF file's header, metadata and tensor table. */
export async function readGguf(path: string, opts: ReadGgufOptions = {}): Promise<GgufFile> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RocmflowError('E_GGUF', `${path}: cannot open GGUF file (${code === 'ENOENT' ? 'no such file' : code ?? String(e)})`, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new RocmflowError('E_GGUF', `${path}: not a regular file`);
    let what = 'the header';
    const r: BufferedReader = new BufferedReader(fh, st.size, (need): RocmflowError =>
      fail(path, r.pos, `truncated file: ${what} needs ${need} bytes but only ${r.remaining} remain`));
    const parser = new Parser(path, r, opts.skipArrays ?? false, (w) => (what = w));
    return await parser.parse();
  } finally {
    await fh.close();
  }
}

function fail(path: string, offset: number, message: string): RocmflowError {
  return new RocmflowError('E_GGUF', `${path}: ${message} at byte ${offset}`);
}

class Parser {
  constructor(
    private readonly path: string,
    private readonly r: BufferedReader,
    private readonly skipArrays: boolean,
    private readonly reading: (what: string) => void,
  ) {}

  private fail(message: string, offset = this.r.pos): RocmflowError {
    return fail(this.path, offset, message);
  }

  async parse(): Promise<GgufFile> {
    const r = this.r;
    this.reading('the header');
    if (r.size < 4) throw this.fail(`not a GGUF file (${r.size} bytes)`, 0);
    await r.ensure(4);
    const magic = r.u32();
    if (magic !== GGUF_MAGIC) throw this.fail(`not a GGUF file (magic 0x${magic.toString(16).padStart(8, '0')}, expected "GGUF")`, 0);
    await r.ensure(4);
    const version = r.u32();
    if (version === 1) throw this.fail('GGUF version 1 is not supported (only v2 and v3 are)', 4);
    if (version !== 0 && (version & 0xffff) === 0) throw this.fail('big-endian GGUF files are not supported', 4);
    if (version !== 2 && version !== 3) throw this.fail(`unsupported GGUF version ${version} (only v2 and v3 are)`, 4);

    await r.ensure(16);
    const tensorCount = this.count(r.u64(), 'tensor count', 32, 8);
    const kvCount = this.count(r.u64(), 'metadata count', 13, 16);

    const metadata = new Map<string, GgufKv>();
    for (let i = 0; i < kvCount; i++) {
      const at = r.pos;
      this.reading(`the key of metadata entry ${i}`);
      const key = await this.string();
      this.reading(`the type of "${key}"`);
      await r.ensure(4);
      const type = this.valueType(r.u32(), `"${key}"`);
      if (metadata.has(key)) throw this.fail(`duplicate metadata key "${key}"`, at);
      this.reading(`the value of "${key}"`);
      metadata.set(key, { type, value: await this.value(type, 0) });
    }

    const alignment = this.alignment(metadata);
    const tensors: GgufTensorInfo[] = [];
    const names = new Set<string>();
    for (let i = 0; i < tensorCount; i++) {
      tensors.push(await this.tensorInfo(i, names));
    }
    const dataOffset = Math.ceil(r.pos / alignment) * alignment;
    for (const t of tensors) {
      if (t.offset % alignment !== 0) throw this.fail(`tensor "${t.name}" data offset ${t.offset} is not a multiple of the alignment ${alignment}`, dataOffset);
      const end = dataOffset + t.offset + t.bytes;
      if (end > r.size) throw this.fail(`tensor "${t.name}" data (${t.bytes} bytes) ends past the end of the file (${r.size} bytes)`, dataOffset + t.offset);
    }
    return { path: this.path, version, fileSize: r.size, metadata, tensors, alignment, dataOffset, arraysSkipped: this.skipArrays };
  }

  /** A u64 count that must fit the bytes left (each item takes at least `minItem` bytes). */
  private count(v: bigint, what: string, minItem: number, offset: number): number {
    if (v > BigInt(Math.floor(this.r.remaining / minItem))) throw this.tooBig(what, v, offset);
    if (v > BigInt(MAX_ENTRIES)) throw this.fail(`${what} ${v} is more than this reader takes (${MAX_ENTRIES})`, offset);
    return Number(v);
  }

  /** A length or count the rest of the file cannot hold: corrupt when huge, else truncated. */
  private tooBig(what: string, v: bigint, offset: number): RocmflowError {
    const room = `only ${this.r.remaining} bytes remain`;
    return v > 0x7fffffffn
      ? this.fail(`absurd ${what} ${v} (${room})`, offset)
      : this.fail(`truncated file: ${what} ${v} does not fit (${room})`, offset);
  }

  private valueType(code: number, of: string): GgufValueType {
    const t = GGUF_VALUE_TYPES[code];
    if (t === undefined) throw this.fail(`unknown value type ${code} for ${of}`, this.r.pos - 4);
    return t;
  }

  /** A string's u64 length, checked against what is left of the file. */
  private async stringLength(): Promise<number> {
    const r = this.r;
    const p = r.ensure(8);
    if (p) await p;
    const at = r.pos;
    const len = r.u64();
    if (len > BigInt(r.remaining)) throw this.tooBig('string length', len, at);
    return Number(len);
  }

  private async string(): Promise<string> {
    const at = this.r.pos;
    const n = await this.stringLength();
    if (n > MAX_STRING) throw this.fail(`a string of ${n} bytes is more than this reader takes (${MAX_STRING >> 20} MiB)`, at);
    const q = this.r.ensure(n);
    if (q) await q;
    return this.r.utf8(n);
  }

  private async skipString(): Promise<void> {
    this.r.skip(await this.stringLength());
  }

  private async value(type: GgufValueType, depth: number): Promise<GgufValue> {
    if (type === 'string') return this.string();
    if (type === 'array') return this.array(depth);
    const p = this.r.ensure(GGUF_VALUE_SIZE[type]);
    if (p) await p;
    return this.scalar(type);
  }

  /** Reads a fixed-size scalar already covered by ensure(). */
  private scalar(type: GgufValueType): number | bigint | boolean {
    const r = this.r;
    switch (type) {
      case 'uint8': return r.u8();
      case 'int8': return r.i8();
      case 'uint16': return r.u16();
      case 'int16': return r.i16();
      case 'uint32': return r.u32();
      case 'int32': return r.i32();
      case 'float32': return r.f32();
      case 'float64': return r.f64();
      case 'bool': {
        const at = r.pos;
        const b = r.u8();
        if (b > 1) throw this.fail(`invalid bool value ${b}`, at);
        return b === 1;
      }
      case 'uint64': return small(r.u64());
      case 'int64': return small(r.i64());
      default: throw new Error(`not a scalar type: ${type}`);
    }
  }

  private async array(depth: number): Promise<GgufArray> {
    const r = this.r;
    if (depth >= MAX_ARRAY_DEPTH) throw this.fail(`arrays nested deeper than ${MAX_ARRAY_DEPTH}`);
    await r.ensure(12);
    const itemType = this.valueType(r.u32(), 'an array item');
    const at = r.pos;
    const len = r.u64();
    const fixed = GGUF_VALUE_SIZE[itemType];
    const minItem = fixed || (itemType === 'string' ? 8 : 12);
    if (len > BigInt(Math.floor(r.remaining / minItem))) throw this.tooBig(`array length (of ${itemType})`, len, at);
    const length = Number(len);

    if (this.skipArrays) {
      if (fixed) r.skip(length * fixed);
      else if (itemType === 'string') for (let i = 0; i < length; i++) await this.skipString();
      else for (let i = 0; i < length; i++) await this.array(depth + 1);
      return { itemType, length };
    }
    if (length > MAX_ARRAY_ITEMS) throw this.fail(`an array of ${length} items is more than this reader takes (${MAX_ARRAY_ITEMS})`, at);
    const values: GgufValue[] = new Array(length);
    if (fixed) {
      await r.ensure(length * fixed);
      for (let i = 0; i < length; i++) values[i] = this.scalar(itemType);
    } else if (itemType === 'string') {
      for (let i = 0; i < length; i++) values[i] = await this.string();
    } else {
      for (let i = 0; i < length; i++) values[i] = await this.array(depth + 1);
    }
    return { itemType, length, values };
  }

  private alignment(metadata: Map<string, GgufKv>): number {
    const kv = metadata.get('general.alignment');
    if (!kv) return GGUF_DEFAULT_ALIGNMENT;
    const a = kv.value;
    if (kv.type !== 'uint32' || typeof a !== 'number' || a === 0 || (a & (a - 1)) !== 0)
      throw this.fail(`general.alignment must be a power-of-two uint32 (found ${kv.type} ${String(a)})`);
    return a;
  }

  private async tensorInfo(i: number, names: Set<string>): Promise<GgufTensorInfo> {
    const r = this.r;
    const at = r.pos;
    this.reading(`the name of tensor ${i}`);
    const name = await this.string();
    if (names.has(name)) throw this.fail(`duplicate tensor name "${name}"`, at);
    names.add(name);
    this.reading(`the shape of tensor "${name}"`);
    await r.ensure(4);
    const nDims = r.u32();
    if (nDims < 1 || nDims > MAX_DIMS) throw this.fail(`tensor "${name}" has ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`, r.pos - 4);
    await r.ensure(8 * nDims + 12);
    const dims: number[] = [];
    let elements = 1;
    for (let d = 0; d < nDims; d++) {
      const v = r.u64();
      elements *= Number(v);
      if (!Number.isSafeInteger(elements)) throw this.fail(`tensor "${name}" has an absurd shape`, r.pos - 8);
      dims.push(Number(v));
    }
    const typeId = r.u32();
    const t = ggmlType(typeId);
    if (!t) throw this.fail(`tensor "${name}" has unknown ggml type ${typeId}`, r.pos - 4);
    if (dims[0]! % t.blockSize !== 0) throw this.fail(`tensor "${name}" row length ${dims[0]} is not a multiple of the ${t.name} block size ${t.blockSize}`, at);
    const offset = r.u64();
    if (offset > BigInt(r.size)) throw this.fail(`tensor "${name}" data offset ${offset} is past the end of the file`, r.pos - 8);
    return { name, dims, type: typeId, offset: Number(offset), elements, bytes: ggmlByteSize(t, elements) };
  }
}

function small(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

/**
 * A metadata value as plain JS: arrays become JS arrays (undefined when read
 * with skipArrays), missing keys undefined.
 */
export function ggufValue(g: GgufFile, key: string): unknown {
  const kv = g.metadata.get(key);
  return kv === undefined ? undefined : plain(kv.value);
}

function plain(v: GgufValue): unknown {
  if (typeof v === 'object') return v.values?.map(plain);
  return v;
}

/** Length of an array entry (available even with skipArrays), or undefined. */
export function ggufArrayLength(g: GgufFile, key: string): number | undefined {
  const v = g.metadata.get(key)?.value;
  return typeof v === 'object' ? v.length : undefined;
}
