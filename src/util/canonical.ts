import { createHash } from 'node:crypto';

/** JSON with sorted object keys, so equal values give equal bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  return `{${Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
    .join(',')}}`;
}

/** A sha256 digest as the cache names things: 64 lower-case hex digits. */
export const SHA256_HEX = /^[0-9a-f]{64}$/;

export const isSha256Hex = (s: unknown): s is string => typeof s === 'string' && SHA256_HEX.test(s);

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
