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

export type Namespace = 'action' | 'state' | 'stat' | 'tool' | 'history' | 'stats';

export class CacheIndex {
  private readonly store: KeyvSqlite;
  private readonly spaces = new Map<Namespace, Keyv>();

  private constructor(store: KeyvSqlite) {
    this.store = store;
  }

  static async open(cacheDir: string): Promise<CacheIndex> {
    mkdirSync(cacheDir, { recursive: true });
    const store = new KeyvSqlite({ uri: `sqlite://${join(cacheDir, 'index.sqlite')}`, busyTimeout: 30_000 });
    const idx = new CacheIndex(store);
    await store.query('PRAGMA journal_mode=WAL');
    await store.query('PRAGMA synchronous=NORMAL');
    return idx;
  }

  private ns(name: Namespace): Keyv {
    let k = this.spaces.get(name);
    if (!k) {
      // plain JSON: keyv's default reviver (for Buffers, which we never store) is
      // the slowest part of reading large task states
      k = new Keyv({ store: this.store, namespace: name, useKeyPrefix: true, serialize: JSON.stringify, deserialize: (d: string) => JSON.parse(d) });
      this.spaces.set(name, k);
    }
    return k;
  }

  async get<T>(ns: Namespace, key: string): Promise<T | undefined> {
    return (await this.ns(ns).get(key)) as T | undefined;
  }

  async getMany<T>(ns: Namespace, keys: string[]): Promise<(T | undefined)[]> {
    const out: (T | undefined)[] = [];
    // SQLite limits bound parameters per statement
    for (let i = 0; i < keys.length; i += 500) out.push(...((await this.ns(ns).getMany(keys.slice(i, i + 500))) as (T | undefined)[]));
    return out;
  }

  async set(ns: Namespace, key: string, value: unknown): Promise<void> {
    await this.ns(ns).set(key, value);
  }

  async setMany(ns: Namespace, entries: { key: string; value: unknown }[]): Promise<void> {
    if (!entries.length) return;
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
    await this.ns(ns).delete(key);
  }

  /** All keys (without namespace prefix) and values of a namespace. */
  async entries<T>(ns: Namespace): Promise<[string, T][]> {
    const out: [string, T][] = [];
    for await (const [k, v] of (this.ns(ns).iterator as unknown as (n?: string) => AsyncGenerator<[string, T]>)(ns)) out.push([k, v]);
    return out;
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
