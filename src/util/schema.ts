/**
 * A small validator for config values whose errors name the key path
 * (`tasks.build-llama.cmakeFlags: expected an array of strings`).
 * Each schema parses `unknown` into `T` or throws a SchemaError.
 */
export class SchemaError extends Error {
  constructor(readonly keyPath: string, readonly expected: string) {
    super(`${keyPath || '(root)'}: ${expected}`);
    this.name = 'SchemaError';
  }
}

export interface Schema<T> {
  /** Parse `value` found at `keyPath`; throw SchemaError on mismatch. */
  parse(value: unknown, keyPath: string): T;
  /** Text used in "expected ..." messages. */
  readonly describe: string;
  /** When true, `object()` accepts the key being absent. */
  readonly isOptional?: boolean;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

const join = (path: string, key: string | number) =>
  typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;

function make<T>(describe: string, parse: (v: unknown, p: string) => T): Schema<T> {
  return { describe, parse };
}

export const string = (): Schema<string> =>
  make('a string', (v, p) => {
    if (typeof v !== 'string') throw new SchemaError(p, 'expected a string');
    return v;
  });

export const number = (opts: { min?: number; max?: number; integer?: boolean } = {}): Schema<number> =>
  make(opts.integer ? 'an integer' : 'a number', (v, p) => {
    if (typeof v !== 'number' || Number.isNaN(v)) throw new SchemaError(p, `expected ${opts.integer ? 'an integer' : 'a number'}`);
    if (opts.integer && !Number.isInteger(v)) throw new SchemaError(p, 'expected an integer');
    if (opts.min !== undefined && v < opts.min) throw new SchemaError(p, `expected a number >= ${opts.min}`);
    if (opts.max !== undefined && v > opts.max) throw new SchemaError(p, `expected a number <= ${opts.max}`);
    return v;
  });

export const boolean = (): Schema<boolean> =>
  make('a boolean', (v, p) => {
    if (typeof v !== 'boolean') throw new SchemaError(p, 'expected true or false');
    return v;
  });

export const literal = <T extends string>(...values: T[]): Schema<T> =>
  make(`one of ${values.map((x) => JSON.stringify(x)).join(', ')}`, (v, p) => {
    if (typeof v !== 'string' || !values.includes(v as T))
      throw new SchemaError(p, `expected one of ${values.map((x) => JSON.stringify(x)).join(', ')}`);
    return v as T;
  });

export const array = <T>(item: Schema<T>): Schema<T[]> =>
  make(`an array of ${item.describe.replace(/^an? /, '')}s`, (v, p) => {
    if (!Array.isArray(v)) throw new SchemaError(p, `expected an array of ${item.describe.replace(/^an? /, '')}s`);
    return v.map((x, i) => {
      try {
        return item.parse(x, join(p, i));
      } catch (e) {
        // "cmakeFlags: expected an array of strings" reads better than "cmakeFlags[2]: expected a string"
        if (e instanceof SchemaError && e.keyPath === join(p, i) && !item.describe.startsWith('an object'))
          throw new SchemaError(p, `expected an array of ${item.describe.replace(/^an? /, '')}s (item ${i} is ${typeName(x)})`);
        throw e;
      }
    });
  });

export const record = <T>(value: Schema<T>): Schema<Record<string, T>> =>
  make('an object', (v, p) => {
    if (!isPlainObject(v)) throw new SchemaError(p, 'expected an object');
    const out: Record<string, T> = {};
    for (const [k, x] of Object.entries(v)) out[k] = value.parse(x, join(p, k));
    return out;
  });

export const optional = <T>(inner: Schema<T>): Schema<T | undefined> => ({
  describe: inner.describe,
  isOptional: true,
  parse: (v, p) => (v === undefined ? undefined : inner.parse(v, p)),
});

/** Anything; for values validated elsewhere (e.g. functions). */
export const unknownValue = (): Schema<unknown> => make('a value', (v) => v);

type Shape = Record<string, Schema<unknown>>;
type ObjectOf<S extends Shape> = { [K in keyof S as S[K] extends { isOptional: true } ? never : K]: Infer<S[K]> } & {
  [K in keyof S as S[K] extends { isOptional: true } ? K : never]?: Infer<S[K]>;
};

/** An object with known keys; unknown keys are errors (typos should not pass silently). */
export const object = <S extends Shape>(shape: S, opts: { allowUnknown?: boolean } = {}): Schema<ObjectOf<S>> =>
  make('an object', (v, p) => {
    if (v === undefined) v = {};
    if (!isPlainObject(v)) throw new SchemaError(p, 'expected an object');
    const out: Record<string, unknown> = {};
    for (const [k, s] of Object.entries(shape)) {
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined && !s.isOptional) throw new SchemaError(join(p, k), `required (${s.describe})`);
      const parsed = s.parse(x, join(p, k));
      if (parsed !== undefined) out[k] = parsed;
    }
    if (!opts.allowUnknown) {
      for (const k of Object.keys(v as object)) {
        if (!(k in shape)) {
          const near = nearest(k, Object.keys(shape));
          throw new SchemaError(join(p, k), `unknown key${near ? ` (did you mean "${near}"?)` : ''}`);
        }
      }
    } else {
      for (const [k, x] of Object.entries(v as object)) if (!(k in shape)) out[k] = x;
    }
    return out as ObjectOf<S>;
  });

/** The first schema that accepts the value wins. */
export const union = <T>(describe: string, ...options: Schema<T>[]): Schema<T> =>
  make(describe, (v, p) => {
    const errors: SchemaError[] = [];
    for (const o of options) {
      try {
        return o.parse(v, p);
      } catch (e) {
        if (!(e instanceof SchemaError)) throw e;
        errors.push(e);
      }
    }
    // the deepest error is usually the most useful one
    const deepest = errors.reduce((a, b) => (b.keyPath.length > a.keyPath.length ? b : a));
    if (deepest.keyPath !== p) throw deepest;
    throw new SchemaError(p, `expected ${describe}`);
  });

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The closest name, if it is close enough to be a plausible typo. */
export function nearest(name: string, candidates: readonly string[]): string | undefined {
  return nearestN(name, candidates, 1)[0];
}

/** Up to `n` plausible names, closest first. */
export function nearestN(name: string, candidates: readonly string[], n = 3): string[] {
  return candidates
    .map((c) => ({ c, d: c.startsWith(name) || name.startsWith(c) ? 1 : editDistance(name, c) }))
    .filter((x) => x.d <= Math.max(2, Math.floor(name.length / 3)))
    .sort((a, b) => a.d - b.d || a.c.localeCompare(b.c))
    .slice(0, n)
    .map((x) => x.c);
}

/** ` (did you mean "a" or "b"?)` for the nearest names, or an empty string. */
export function didYouMean(name: string, candidates: readonly string[]): string {
  const near = nearestN(name, candidates);
  return near.length ? ` (did you mean ${near.map((n) => `"${n}"`).join(' or ')}?)` : '';
}
