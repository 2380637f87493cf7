import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** The size and SHA-256 of a byte stream, as OCI writes it (`sha256:<hex>`). */
export interface Digest {
  /** `sha256:<64 hex>` */
  readonly digest: string;
  readonly size: number;
}

/**
 * A pass-through stream that hashes and counts what flows through it, so a
 * layer's diff_id and blob digest come out of the same single pass that
 * writes it.
 */
export class DigestStream extends Transform {
  #hash: Hash = createHash('sha256');
  #size = 0;
  #result: Digest | null = null;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    cb(null, chunk);
  }

  /** Bytes seen so far. */
  get size(): number {
    return this.#size;
  }

  /** The final digest; call once the stream has ended. */
  result(): Digest {
    this.#result ??= { digest: `sha256:${this.#hash.digest('hex')}`, size: this.#size };
    return this.#result;
  }
}

/** `sha256:<hex>` of a buffer or string. */
export function sha256Of(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A well-formed OCI sha256 digest: `sha256:` and 64 lower-case hex digits. */
const OCI_DIGEST = /^sha256:([0-9a-f]{64})$/;

export const isOciDigest = (s: unknown): s is string => typeof s === 'string' && OCI_DIGEST.test(s);

/** The 64 hex digits of a `sha256:<hex>` digest (refuses other algorithms). */
export function digestHex(digest: string): string {
  const m = OCI_DIGEST.exec(digest);
  if (!m) throw new Error(`not a sha256 digest: ${digest}`);
  return m[1]!;
}
