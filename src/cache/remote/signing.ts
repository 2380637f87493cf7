/**
 * HMAC-SHA256 signatures of action entries, so a reader trusts only entries
 * written by someone holding the team's key (ROCMFLOW_REMOTE_CACHE_KEY).
 * The MAC covers the canonical JSON of the whole entry, including its `key`
 * field, so an entry replayed under another key is refused.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { ActionEntry } from '../action-entry.js';
import { canonicalJson } from '../../util/canonical.js';

/** What `ac/<key>` holds. */
export interface StoredEntry {
  entry: ActionEntry;
  signature?: EntrySignature;
}

export interface EntrySignature {
  alg: 'hmac-sha256';
  /** First 8 hex digits of sha256(key): says which key signed it, without revealing it. */
  keyId?: string;
  /** Hex HMAC-SHA256 of canonicalJson(entry). */
  value: string;
}

export type Verdict =
  | { ok: true; entry: ActionEntry; signed: boolean }
  | { ok: false; problem: 'unsigned' | 'bad-signature' | 'wrong-key' | 'no-key'; message: string };

export function keyId(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 8);
}

function mac(entry: ActionEntry, secret: string): string {
  return createHmac('sha256', secret).update(canonicalJson(entry)).digest('hex');
}

/** Wrap an entry for storage, signed when a secret is given. */
export function signEntry(entry: ActionEntry, secret: string | null): StoredEntry {
  if (!secret) return { entry };
  return { entry, signature: { alg: 'hmac-sha256', keyId: keyId(secret), value: mac(entry, secret) } };
}

/**
 * Check a stored entry's signature. With a secret every entry must carry a
 * valid signature; with `require` but no secret nothing can be trusted.
 * Without either, signatures are not checked (a team that does not sign).
 */
export function verifyEntry(stored: StoredEntry, opts: { secret: string | null; require: boolean }): Verdict {
  const { entry, signature } = stored;
  if (!opts.secret) {
    if (opts.require) return { ok: false, problem: 'no-key', message: 'signed entries are required but ROCMFLOW_REMOTE_CACHE_KEY is not set' };
    return { ok: true, entry, signed: false };
  }
  if (!signature) return { ok: false, problem: 'unsigned', message: 'entry is not signed' };
  if (signature.alg !== 'hmac-sha256' || typeof signature.value !== 'string')
    return { ok: false, problem: 'bad-signature', message: `unsupported signature algorithm ${JSON.stringify(signature.alg)}` };
  const expected = Buffer.from(mac(entry, opts.secret), 'hex');
  const given = Buffer.from(signature.value, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    const other = signature.keyId && signature.keyId !== keyId(opts.secret);
    return {
      ok: false,
      problem: other ? 'wrong-key' : 'bad-signature',
      message: other ? `entry is signed with another key (key id ${signature.keyId}, ours ${keyId(opts.secret)})` : 'signature does not match the entry',
    };
  }
  return { ok: true, entry, signed: true };
}
