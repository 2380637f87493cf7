import { createHash } from 'node:crypto';

/** JSON with sorted object keys, so equal values give equal bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  // a task's input files: tens of thousands of string values under keys that
  // are already in order; JSON.stringify writes exactly that, natively
  if (flatSorted(obj, keys)) return JSON.stringify(obj);
  return `{${keys
    .filter((k) => obj[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
    .join(',')}}`;
}

/**
 * True when every value is a string and the keys are in sorted order, so
 * that JSON.stringify (which keeps the object's key order) writes the
 * canonical form. Small objects take the general path: the check would
 * cost more than it saves.
 */
function flatSorted(obj: Record<string, unknown>, keys: string[]): boolean {
  if (keys.length < 64) return false;
  const proto = Object.getPrototypeOf(obj);
  if (proto !== Object.prototype && proto !== null) return false;
  for (let i = 0; i < keys.length; i++) {
    if (typeof obj[keys[i]!] !== 'string') return false;
    if (i > 0 && !(keys[i - 1]! < keys[i]!)) return false;
  }
  return true;
}

/** A sha256 digest as the cache names things: 64 lower-case hex digits. */
export const SHA256_HEX = /^[0-9a-f]{64}$/;

export const isSha256Hex = (s: unknown): s is string => typeof s === 'string' && SHA256_HEX.test(s);

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
