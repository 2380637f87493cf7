/**
 * Signatures and the shape checks of entries read from a remote: real
 * entries built the way the executor builds them.
 */
import { describe, expect, it } from 'vitest';
import type { ActionEntry } from '../../src/cache/action-entry.js';
import { parseStoredEntry } from '../../src/cache/remote/parse-stored-entry.js';
import { keyId, signEntry, verifyEntry } from '../../src/cache/remote/signing.js';
import { sha256 } from '../../src/util/canonical.js';

const KEY = sha256('a fingerprint');

function entry(over: Partial<ActionEntry> = {}): ActionEntry {
  return {
    v: 1, key: KEY, task: 'build-llama', target: 'gfx1151',
    manifest: { entries: [{ path: 'bin', type: 'dir', mode: 0o755 }, { path: 'bin/llama-server', type: 'file', mode: 0o755, size: 5, sha256: sha256('hello') }] },
    summary: ['built'], log: sha256('log'), durationMs: 1200, createdAt: '2026-01-01T00:00:00.000Z', rocmflowVersion: '0.1.0', ...over,
  };
}

const bytes = (x: unknown) => Buffer.from(JSON.stringify(x));

describe('entry signing', () => {
  it('verifies with the same key and refuses another key, tampering and unsigned entries', () => {
    const signed = signEntry(entry(), 'k1');
    expect(signed.signature!.keyId).toBe(keyId('k1'));
    expect(verifyEntry(signed, { secret: 'k1', require: true })).toMatchObject({ ok: true, signed: true });
    expect(verifyEntry(signed, { secret: 'k2', require: true })).toMatchObject({ ok: false, problem: 'wrong-key' });
    const tampered = { ...signed, entry: { ...signed.entry, summary: ['evil'] } };
    expect(verifyEntry(tampered, { secret: 'k1', require: true })).toMatchObject({ ok: false, problem: 'bad-signature' });
    expect(verifyEntry(signEntry(entry(), null), { secret: 'k1', require: true })).toMatchObject({ ok: false, problem: 'unsigned' });
    expect(verifyEntry(signEntry(entry(), null), { secret: null, require: true })).toMatchObject({ ok: false, problem: 'no-key' });
    expect(verifyEntry(signEntry(entry(), null), { secret: null, require: false })).toMatchObject({ ok: true, signed: false });
  });

  it('refuses a validly signed entry served under another key (replay)', () => {
    const other = sha256('another fingerprint');
    const r = parseStoredEntry(bytes(signEntry(entry(), 'k1')), other);
    expect(r).toEqual({ problem: expect.stringContaining('is for key') });
  });

  it('refuses entries whose paths or digests would escape the output directory or the store', () => {
    const bad: [string, Partial<ActionEntry>][] = [
      ['unsafe output path', { manifest: { entries: [{ path: '../../.bashrc', type: 'file', mode: 0o644, size: 1, sha256: sha256('x') }] } }],
      ['unsafe output path', { manifest: { entries: [{ path: '/etc/passwd', type: 'file', mode: 0o644, size: 1, sha256: sha256('x') }] } }],
      ['lies under a symlink', {
        manifest: { entries: [{ path: 'lib', type: 'symlink', mode: 0o777, target: '/etc' }, { path: 'lib/x', type: 'file', mode: 0o644, size: 1, sha256: sha256('x') }] },
      }],
      ['bad digest', { manifest: { entries: [{ path: 'a', type: 'file', mode: 0o644, size: 1, sha256: '../../x' }] } }],
      ['log is not a sha256', { log: '../etc' }],
    ];
    for (const [why, over] of bad) expect(parseStoredEntry(bytes(signEntry(entry(over), null)), KEY)).toEqual({ problem: expect.stringContaining(why) });
    expect(parseStoredEntry(Buffer.from('<html>'), KEY)).toEqual({ problem: 'not JSON' });
    expect(parseStoredEntry(bytes(signEntry(entry(), 'k')), KEY)).toHaveProperty('stored');
  });
});
