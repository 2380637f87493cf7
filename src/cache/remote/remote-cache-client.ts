/**
 * The policy around a storage backend: what the engine calls as its
 * RemoteCache. Every remote problem becomes a miss, never a failed run:
 * one warning per run for an unavailable remote (and a circuit breaker that
 * stops trying after a connection failure), entries checked for shape and
 * signature, every downloaded blob checked against its digest before the
 * local store adopts it, blobs uploaded before the entry that names them.
 */
import { chmodSync, rmSync, statSync } from 'node:fs';
import { entryBlobs, type ActionEntry } from '../action-entry.js';
import type { ContentStore } from '../content-store.js';
import type { RemoteBackend } from './backend.js';
import { Limiter } from '../../util/limiter.js';
import { parseStoredEntry } from './parse-stored-entry.js';
import { RemoteError } from './remote-error.js';
import { OversizeBlob } from './stream-to-file.js';
import { signEntry, verifyEntry } from './signing.js';
import type { RemoteCache, RemoteStats } from './types.js';

export interface RemoteCacheClientOptions {
  canWrite: boolean;
  /** ROCMFLOW_REMOTE_CACHE_KEY, or null. */
  secret: string | null;
  requireSignature: boolean;
  concurrency: number;
  warn(message: string): void;
}

/** RemoteStats plus blob counts, for `cache push|pull`. */
export interface TransferStats extends RemoteStats {
  blobsDown: number;
  blobsUp: number;
  /** Blobs the remote already had (HEAD said so). */
  blobsSkipped: number;
  entriesUp: number;
}

/** HTTP or I/O errors in one run before the remote is given up on. */
const MAX_ERRORS = 3;

interface Blob {
  digest: string;
  /** From the manifest; a pulled log's is not known (-1): it may be up to MAX_LOG_BYTES. */
  size: number;
  executable: boolean;
}

/** A task's log is not in its manifest, so no size bounds its download but this one. */
const MAX_LOG_BYTES = 256 << 20;

export class RemoteCacheClient implements RemoteCache {
  readonly description: string;
  private readonly backend: RemoteBackend;
  private readonly o: RemoteCacheClientOptions;
  private readonly limit: Limiter;
  private readonly counters: TransferStats = { hits: 0, misses: 0, bytesDown: 0, bytesUp: 0, errors: 0, blobsDown: 0, blobsUp: 0, blobsSkipped: 0, entriesUp: 0 };
  /** Open circuit: the remote is unreachable for the rest of this run. */
  private down = false;
  private writeDenied = false;
  private warnedUnavailable = false;
  private warnedSignature = false;
  /** Keys already found missing this run (the executor asks again after taking its lock). */
  private readonly missed = new Set<string>();

  constructor(backend: RemoteBackend, o: RemoteCacheClientOptions) {
    this.backend = backend;
    this.o = o;
    this.description = backend.description;
    this.limit = new Limiter(Math.max(1, o.concurrency));
  }

  get canWrite(): boolean {
    return this.o.canWrite && !this.writeDenied && !this.down;
  }

  stats(): TransferStats {
    return { ...this.counters };
  }

  close(): void {
    this.backend.close();
  }

  /** The entry for `key`, parsed and its signature checked; null (with a warning where due) when there is none to use. */
  private async entryOf(key: string): Promise<ActionEntry | null> {
    const body = await this.limit.run(() => this.guard(() => this.backend.getEntry(key)));
    if (!body) return null;
    const parsed = parseStoredEntry(body, key);
    if ('problem' in parsed) {
      this.o.warn(`remote cache ${this.description}: entry ${key.slice(0, 12)} refused: ${parsed.problem}`);
      return null;
    }
    const verdict = verifyEntry(parsed.stored, { secret: this.o.secret, require: this.o.requireSignature });
    if (!verdict.ok) {
      if (!this.warnedSignature) {
        this.warnedSignature = true;
        this.o.warn(`remote cache ${this.description}: entry ${key.slice(0, 12)} (${parsed.stored.entry.task}) ignored: ${verdict.message}; treating such entries as misses`);
      }
      return null;
    }
    return { ...verdict.entry };
  }

  async peek(key: string): Promise<ActionEntry | null> {
    if (this.down || this.missed.has(key)) return null;
    try {
      return await this.entryOf(key);
    } catch (e) {
      this.fail(e, 'read');
      return null;
    }
  }

  async pull(key: string, store: ContentStore): Promise<ActionEntry | null> {
    if (this.down || this.missed.has(key)) return this.miss(key);
    try {
      const entry = await this.entryOf(key);
      if (!entry) return this.miss(key);
      const blobs = blobsOf(entry, null);
      const results = await Promise.all(blobs.map((b) => this.limit.run(() => this.fetchBlob(b, store))));
      const missing = blobs.filter((_, i) => results[i] === 'missing');
      // the log is a convenience; an entry whose outputs are incomplete is a miss
      if (missing.some((b) => b.digest !== entry.log)) return this.miss(key);
      if (entry.log && missing.some((b) => b.digest === entry.log)) delete entry.log;
      if (results.includes('rejected')) return this.miss(key);
      this.counters.hits++;
      return entry;
    } catch (e) {
      this.fail(e, 'read');
      return this.miss(key);
    }
  }

  async push(key: string, entry: ActionEntry, store: ContentStore): Promise<void> {
    if (!this.canWrite) return;
    try {
      const blobs = blobsOf(entry, store);
      await Promise.all(blobs.map((b) => this.limit.run(() => this.sendBlob(b, store))));
      // the entry last: a reader never sees an entry whose blobs are not all there
      const body = Buffer.from(JSON.stringify(signEntry(entry, this.o.secret)));
      await this.limit.run(() => this.guard(() => this.backend.putEntry(key, body)));
      this.counters.entriesUp++;
      this.counters.bytesUp += body.length;
    } catch (e) {
      this.fail(e, 'write');
    }
  }

  /** Download one blob into the store unless it is already there. */
  private async fetchBlob(b: Blob, store: ContentStore): Promise<'ok' | 'missing' | 'rejected'> {
    if (store.has(b.digest)) return 'ok';
    const tmp = store.tmpPath();
    try {
      let got;
      try {
        got = await this.guard(() => this.backend.getBlob(b.digest, tmp, b.size >= 0 ? b.size : MAX_LOG_BYTES));
      } catch (e) {
        if (!(e instanceof OversizeBlob)) throw e;
        this.o.warn(`remote cache ${this.description}: blob ${b.digest} is ${e.message}; refused`);
        this.counters.errors++;
        return 'rejected';
      }
      if (!got) return 'missing';
      this.counters.bytesDown += got.bytes;
      if (got.sha256 !== b.digest) {
        this.o.warn(`remote cache ${this.description}: blob ${b.digest} is corrupt or tampered with (its content hashes to ${got.sha256}); refused`);
        this.counters.errors++;
        return 'rejected';
      }
      // the exec bit lets restore hard-link executables instead of copying them
      if (b.executable) chmodSync(tmp, 0o755);
      // hashed while it streamed to tmp (a file only this process writes): no second read of a multi-GB blob
      store.adopt(tmp, b.digest, { hashedAs: got.sha256 });
      this.counters.blobsDown++;
      return 'ok';
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  private async sendBlob(b: Blob, store: ContentStore): Promise<void> {
    if (await this.guard(() => this.backend.hasBlob(b.digest, b.size))) {
      this.counters.blobsSkipped++;
      return;
    }
    await this.guard(() => this.backend.putBlob(b.digest, store.path(b.digest), b.size));
    this.counters.blobsUp++;
    this.counters.bytesUp += b.size;
  }

  /** Skip work once the breaker is open (queued transfers after a failure). */
  private guard<T>(op: () => Promise<T>): Promise<T> {
    if (this.down) return Promise.reject(new RemoteError('unreachable', 'remote given up on earlier in this run'));
    return op();
  }

  private miss(key: string): null {
    this.missed.add(key);
    this.counters.misses++;
    return null;
  }

  private fail(e: unknown, op: 'read' | 'write'): void {
    const wasDown = this.down;
    this.counters.errors++;
    const err = e instanceof RemoteError ? e : new RemoteError('io', (e as Error)?.message ?? String(e));
    if (err.kind === 'unreachable' || err.kind === 'timeout' || this.counters.errors >= MAX_ERRORS) this.down = true;
    if (err.kind === 'denied' && op === 'write') this.writeDenied = true;
    if (wasDown || this.warnedUnavailable) return;
    this.warnedUnavailable = true;
    const consequence = this.down
      ? 'continuing with the local cache only for this run'
      : err.kind === 'denied' && op === 'write'
        ? 'not uploading results in this run'
        : 'treated as a miss';
    this.o.warn(`remote cache ${this.description} ${err.kind === 'denied' ? 'refused access' : 'unavailable'}: ${err.message}; ${consequence}`);
  }
}

/** An entry's blobs, once each; with a store, the log's size is read from it. */
function blobsOf(entry: ActionEntry, store: ContentStore | null): Blob[] {
  const byDigest = new Map<string, Blob>();
  const exec = new Set(entry.manifest.entries.filter((x) => x.type === 'file' && (x.mode & 0o111) !== 0).map((x) => x.sha256!));
  for (const b of entryBlobs(entry)) byDigest.set(b.digest, { digest: b.digest, size: b.size, executable: exec.has(b.digest) });
  if (entry.log && !byDigest.has(entry.log)) {
    let size = -1;
    if (store) {
      try {
        size = statSync(store.path(entry.log)).size;
      } catch {
        return [...byDigest.values()];
      }
    }
    byDigest.set(entry.log, { digest: entry.log, size, executable: false });
  }
  return [...byDigest.values()];
}
