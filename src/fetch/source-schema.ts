/** Validation of a `RuntimeSource` written in the config (`tasks.fetch-rocm.source`). */
import * as s from '../util/schema.js';
import type { Schema } from '../util/schema.js';
import type { RuntimeSource } from '../plugin/types.js';

const sha256 = (): Schema<string> => ({
  describe: 'a sha256 (64 hex digits)',
  parse(v, p) {
    if (typeof v !== 'string' || !/^[0-9a-fA-F]{64}$/.test(v)) throw new s.SchemaError(p, 'expected a sha256 (64 hex digits)');
    return v.toLowerCase();
  },
});

const httpUrl = (): Schema<string> => ({
  describe: 'an http(s) URL',
  parse(v, p) {
    let ok = false;
    try {
      ok = typeof v === 'string' && /^https?:$/.test(new URL(v).protocol);
    } catch {}
    if (!ok) throw new s.SchemaError(p, 'expected an http(s) URL');
    return v as string;
  },
});

const KINDS = ['none', 'therock', 'url', 'dir', 'apt'] as const;

/** A runtime source: `{ kind: 'none' | 'therock' | 'url' | 'dir' | 'apt', ... }`. */
export const runtimeSourceSchema: Schema<RuntimeSource> = {
  describe: 'a runtime source ({ kind: "none" | "therock" | "url" | "dir" | "apt", ... })',
  parse(v, p) {
    if (!s.isPlainObject(v)) throw new s.SchemaError(p, `expected ${this.describe}`);
    const kind = s.literal(...KINDS).parse(v.kind, p ? `${p}.kind` : 'kind');
    switch (kind) {
      case 'none':
        return s.object({ kind: s.literal('none') }).parse(v, p);
      case 'therock':
        return s.object({ kind: s.literal('therock'), family: s.string(), version: s.optional(s.string()), index: s.optional(s.string()) }).parse(v, p);
      case 'url':
        return s.object({ kind: s.literal('url'), url: httpUrl(), sha256: sha256() }).parse(v, p);
      case 'dir':
        return s.object({ kind: s.literal('dir'), path: s.string() }).parse(v, p);
      case 'apt':
        return s.object({ kind: s.literal('apt'), packages: s.array(s.string()), sources: s.optional(s.array(s.string())) }).parse(v, p);
    }
  },
};
