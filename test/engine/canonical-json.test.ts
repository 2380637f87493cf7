import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canonicalJson } from '../../src/util/canonical.js';

/** The definition: keys sorted, undefined dropped, each value written the same way. */
function reference(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${reference(o[k])}`).join(',')}}`;
}

describe('canonicalJson', () => {
  it('writes large flat maps (the input files of a task) exactly as the general rule does', () => {
    // keys in and out of order, names JSON must escape, integer-like keys that
    // JavaScript moves to the front, and now and then a value that is not a string
    const key = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.stringMatching(/^[0-9]{1,4}$/), fc.constantFrom('a"b', 'a\\b', 'é', '\ud800', 'toJSON', '__proto__x'));
    const value = fc.oneof({ weight: 20, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) }, { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.constant(undefined), fc.constant(null)) });
    fc.assert(
      fc.property(fc.array(fc.tuple(key, value), { minLength: 60, maxLength: 300 }), fc.boolean(), (pairs, sortFirst) => {
        if (sortFirst) pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
        const o: Record<string, unknown> = {};
        for (const [k, v] of pairs) o[k] = v;
        expect(canonicalJson(o)).toBe(reference(o));
        expect(canonicalJson({ files: o, n: 1 })).toBe(reference({ files: o, n: 1 }));
      }),
      { numRuns: 300 },
    );
  });

  it('writes any JSON value, nested, exactly as the general rule does', () => {
    fc.assert(fc.property(fc.jsonValue(), fc.dictionary(fc.string(), fc.option(fc.jsonValue(), { nil: undefined })), (v, o) => {
      expect(canonicalJson(v)).toBe(reference(v));
      expect(canonicalJson(o)).toBe(reference(o));
      expect(canonicalJson([o, v, o])).toBe(reference([o, v, o]));
    }), { numRuns: 500 });
  });

  it('does not take a class instance with its own toJSON for a plain map', () => {
    class Odd {
      toJSON() {
        return 'odd';
      }
    }
    const o = Object.assign(new Odd(), Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${String(i).padStart(3, '0')}`, 'v'])));
    expect(canonicalJson(o)).toBe(reference(o));
    expect(canonicalJson(o)).not.toBe('"odd"');
  });
});
