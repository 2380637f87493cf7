/**
 * The cache's index: one SQLite database (keyv + @keyv/sqlite) holding
 * action results, the last recorded state of each task, the stat cache of
 * file digests and tool versions, and run history. WAL mode and a busy
 * timeout let several rocmflow processes share it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Keyv from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import { RocmflowError } from '../errors.js';

export type Namespace = 'action' | 'state' | 'stat' | 'tool' | 'history' | 'stats';

/** What to do about each SQLite failure of the index, in one line. */
function indexError(e: unknown, file: string): unknown {
  const code = String((e as { code?: unknown })?.code ?? '');
  if (!code.startsWith('SQLITE_')) return e;
  const dir = file.slice(0, file.lastIndexOf('/'));
  const why =
    code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT'
      ? 'is not a valid SQLite database (corrupt); move it away and rerun: the blobs stay, results are recorded again'
      : code === 'SQLITE_READONLY' || code === 'SQLITE_PERM' || code === 'SQLITE_AUTH'
        ? `is read-only; make it and ${dir} writable, or pass --cache-dir DIR`
        : code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED'
          ? 'is locked by another process; wait for it to finish, or pass --cache-dir DIR'
          : code === 'SQLITE_CANTOPEN'
            ? `cannot be opened; check that it is a file and that ${dir} is a writable directory, or pass --cache-dir DIR`
            : code === 'SQLITE_FULL' || code === 'SQLITE_IOERR'
              ? 'cannot be written (disk full or I/O error); free space or pass --cache-dir DIR'
              : `failed (${(e as Error).message})`;
  return new RocmflowError('E_CACHE_INDEX', `cache index ${file} ${why} [${code}]`, { cause: e });
}

/**
 * Parsed task states, by the text of their row, in a long-lived process
 * (the server, src/server/): it reads the same states on every request, and
 * parsing tens of thousands of input stamps was a fifth of a 20,000-file
 * no-op there. Keyed by the row's whole text, so a changed row is parsed
 * anew; frozen, so no reader can change what the next request gets (a
 * write throws, and the server declines).
 */
let parsedStates: Map<string, unknown> | null = null;
let parsedChars = 0;
const PARSED_MAX_CHARS = 64 << 20;
const PARSED_MIN_CHARS = 16 << 10;

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

function parseState(d: string): unknown {
  if (!parsedStates || d.length < PARSED_MIN_CHARS) return JSON.parse(d);
  const hit = parsedStates.get(d);
  if (hit !== undefined) return hit;
  const v = deepFreeze(JSON.parse(d));
  parsedStates.set(d, v);
  parsedChars += d.length;
  for (const k of parsedStates.keys()) {
    if (parsedChars <= PARSED_MAX_CHARS) break;
    parsedStates.delete(k);
    parsedChars -= k.length;
  }
  return v;
}

export class CacheIndex {
  /** Keep parsed task states for the life of the process (see parseState). */
  static reuseParsedStates(): void {
    parsedStates ??= new Map();
  }

  private readonly store: KeyvSqlite;
  private readonly spaces = new Map<Namespace, Keyv>();

  readonly file: string;

  private constructor(store: KeyvSqlite, file: string) {
    this.store = store;
    this.file = file;
  }

  static async open(cacheDir: string): Promise<CacheIndex> {
    mkdirSync(cacheDir, { recursive: true });
    const file = join(cacheDir, 'index.sqlite');
    const store = new KeyvSqlite({ uri: `sqlite://${file}`, busyTimeout: 30_000 });
    // keyv reports a failed connection as an 'error' event too; the query below reports it once
    (store as unknown as { on?(ev: string, f: () => void): void }).on?.('error', () => {});
    const idx = new CacheIndex(store, file);
    try {
      await store.query('PRAGMA journal_mode=WAL');
      await store.query('PRAGMA synchronous=NORMAL');
      // reading the table finds a database that opened but is not one
      await idx.get('stats', 'totals');
    } catch (e) {
      await store.close().catch(() => {});
      throw indexError(e, file);
    }
    return idx;
  }

  private async guard<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw indexError(e, this.file);
    }
  }

  private ns(name: Namespace): Keyv {
    let k = this.spaces.get(name);
    if (!k) {
      // plain JSON: keyv's default reviver (for Buffers, which we never store) is
      // the slowest part of reading large task states
      k = new Keyv({ store: this.store, namespace: name, useKeyPrefix: true, serialize: JSON.stringify, deserialize: name === 'state' ? parseState : (d: string) => JSON.parse(d) });
      this.spaces.set(name, k);
    }
    return k;
  }

  async get<T>(ns: Namespace, key: string): Promise<T | undefined> {
    return this.guard(async () => (await this.ns(ns).get(key)) as T | undefined);
  }

  async getMany<T>(ns: Namespace, keys: string[]): Promise<(T | undefined)[]> {
    return this.guard(async () => {
      const out: (T | undefined)[] = [];
      // SQLite limits bound parameters per statement
      for (let i = 0; i < keys.length; i += 500) out.push(...((await this.ns(ns).getMany(keys.slice(i, i + 500))) as (T | undefined)[]));
      // the batched read does not find a key holding a NUL (the state keys do): those one by one
      for (const [i, k] of keys.entries()) if (k.includes('\0')) out[i] = (await this.ns(ns).get(k)) as T | undefined;
      return out;
    });
  }

  async set(ns: Namespace, key: string, value: unknown): Promise<void> {
    await this.guard(() => this.ns(ns).set(key, value));
  }

  async setMany(ns: Namespace, entries: { key: string; value: unknown }[]): Promise<void> {
    if (!entries.length) return;
    return this.guard(() => this.setManyRaw(ns, entries));
  }

  private async setManyRaw(ns: Namespace, entries: { key: string; value: unknown }[]): Promise<void> {
    // one multi-row upsert per chunk: per-key sets cost ~0.3 ms each
    const k = this.ns(ns);
    const table = (this.store as unknown as { opts: { table: string } }).opts.table;
    for (let i = 0; i < entries.length; i += 400) {
      const chunk = entries.slice(i, i + 400);
      const params: string[] = [];
      for (const e of chunk) params.push(`${ns}:${e.key}`, (await k.serialize!({ value: e.value, expires: undefined })) as string);
      await this.store.query(
        `INSERT INTO ${table} (key, value) VALUES ${chunk.map(() => '(?, ?)').join(', ')} ON CONFLICT(key) DO UPDATE SET value=excluded.value`,
        ...params,
      );
    }
  }

  async delete(ns: Namespace, key: string): Promise<void> {
    await this.guard(() => this.ns(ns).delete(key));
  }

  /** All keys (without namespace prefix) and values of a namespace. */
  async entries<T>(ns: Namespace): Promise<[string, T][]> {
    return this.guard(async () => {
      const out: [string, T][] = [];
      for await (const [k, v] of (this.ns(ns).iterator as unknown as (n?: string) => AsyncGenerator<[string, T]>)(ns)) out.push([k, v]);
      return out;
    });
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
