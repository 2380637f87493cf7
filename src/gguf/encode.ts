/**
 * Tensor data encoders for the writer (F32, F16, Q8_0) and the F16 decoder
 * tests use to check them. Byte layouts follow ggml: little-endian, Q8_0 is
 * blocks of 32 values as an f16 scale followed by 32 int8s.
 */
import { RocmflowError } from '../errors.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half-precision bits of `x`, rounded to nearest even. */
export function f32ToF16(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // a carry out of the mantissa correctly bumps the exponent
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/** The value of half-precision bits `h`. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Encode values as ggml tensor data of `type` (F32, F16 or Q8_0). */
export function encodeTensor(type: string, values: Float32Array, tensor: string): Uint8Array {
  switch (type.toUpperCase()) {
    case 'F32': {
      const out = Buffer.alloc(values.length * 4);
      for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i]!, i * 4);
      return out;
    }
    case 'F16': {
      const out = Buffer.alloc(values.length * 2);
      for (let i = 0; i < values.length; i++) out.writeUInt16LE(f32ToF16(values[i]!), i * 2);
      return out;
    }
    case 'Q8_0':
      return encodeQ8_0(values, tensor);
    default:
      throw new RocmflowError('E_GGUF', `tensor "${tensor}": cannot encode ${type} from float values (F32, F16, Q8_0 can be; pass raw bytes otherwise)`);
  }
}

function encodeQ8_0(values: Float32Array, tensor: string): Uint8Array {
  if (values.length % 32 !== 0) throw new RocmflowError('E_GGUF', `tensor "${tensor}": Q8_0 needs a multiple of 32 values, got ${values.length}`);
  const out = Buffer.alloc((values.length / 32) * 34);
  for (let b = 0; b < values.length / 32; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(values[b * 32 + i]!));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    out.writeUInt16LE(f32ToF16(d), b * 34);
    for (let i = 0; i < 32; i++) {
      const v = values[b * 32 + i]! * id;
      out.writeInt8(Math.sign(v) * Math.round(Math.abs(v)), b * 34 + 2 + i); // round half away from zero, like roundf
    }
  }
  return out;
}
