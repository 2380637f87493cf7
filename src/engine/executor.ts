/**
 * Runs a task graph: for each task, in dependency order and up to `jobs` at
 * once, decide fresh (skip) → cached (restore) → stale (run and capture).
 * The first failure cancels running tasks and skips the rest.
 */
import { createWriteStream, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PGraph } from 'p-graph';
import type { ActionEntry } from '../cache/action-entry.js';
import type { CacheIndex } from '../cache/cache-index.js';
import { ContentStore } from '../cache/content-store.js';
import {
  captureOutputs, diskMatches, diskState, manifestBytes, manifestDigest, normalizeOutputs, restoreOutputs, type DiskState,
} from '../cache/output-manifest.js';
import type { RemoteCache } from '../cache/remote/types.js';
import type { ResolvedConfig } from '../config/types.js';
import { RocmflowError, isRocmflowError } from '../errors.js';
import { isSha256Hex, sha256 } from '../util/canonical.js';
import type { StatStamp } from '../fingerprint/file-digests.js';
import { fingerprintKey, type FieldChange, type FingerprintRecord } from '../fingerprint/record.js';
import type { TaskGraph } from '../graph/task-graph.js';
import type { LoadedTask, Registry } from '../plugin/load.js';
import type { DepResult, Json, ResolvedTarget, TaskContext } from '../plugin/types.js';
import type { EventSink, TaskState } from './events.js';
import { ROCMFLOW_VERSION, fingerprintTask, primeCodeHashes } from './fingerprint-task.js';
import { acquireLock } from './lock.js';
import { makeLogger, makeProgress } from './task-io.js';
import { createTaskShell } from './task-shell.js';
import { declaredDeps } from './deps-view.js';
import { verdictFor, whyRun } from './decide.js';

/**
 * Summary lines name output paths of the workspace that ran the task; the
 * cache entry, which other workspaces and machines restore, holds them with
 * that workspace's output root as a placeholder, put back as the restoring
 * workspace's own.
 */
const OUT_ROOT = '{{rocmflow:out}}';
const portableLines = (lines: readonly string[], outRoot: string): string[] => lines.map((l) => l.split(`${outRoot}/`).join(`${OUT_ROOT}/`));
const localLines = (lines: readonly string[], outRoot: string): string[] => lines.map((l) => l.split(`${OUT_ROOT}/`).join(`${outRoot}/`));

/** What the index remembers about a task's last outputs in this workspace. */
export interface TaskStateRecord {
  key: string;
  record: FingerprintRecord;
  stamps: Record<string, StatStamp>;
  outputs: string[];
  disk: DiskState;
  manifestDigest: string;
  summary: string[];
  facts?: Record<string, Json>;
  at: string;
}

export interface ExecutorOptions {
  config: ResolvedConfig;
  registry: Registry;
  graph: TaskGraph;
  target: ResolvedTarget;
  index: CacheIndex;
  remote: RemoteCache | null;
  emit: EventSink;
  /** Tasks to rerun regardless of their state. */
  force: ReadonlySet<string>;
  verbose: boolean;
  signal: AbortSignal;
  env: NodeJS.ProcessEnv;
  runId: string;
  /**
   * Only a run with nothing to do may finish (the server answers those,
   * src/server/): the first task that would hash changed inputs, restore or
   * run throws `NotANoOp` out of `run()` before it touches anything.
   */
  onlyFresh?: boolean;
}

/** Thrown out of an `onlyFresh` run that would have work to do: what the work was. */
export class NotANoOp extends Error {}

export interface TaskOutcome {
  state: TaskState;
  ms: number;
  manifestDigest?: string;
  summary: string[];
  facts?: Record<string, Json>;
}

export class Executor {
  private readonly o: ExecutorOptions;
  private readonly store: ContentStore;
  private readonly outcomes = new Map<string, TaskOutcome>();
  private readonly cancel = new AbortController();
  private readonly uploads: Promise<void>[] = [];
  readonly logDir: string;
  private failed = false;
  private declined: NotANoOp | undefined;
  private readonly refused = new Set<string>();

  constructor(o: ExecutorOptions) {
    this.o = o;
    this.store = new ContentStore(o.config.cacheDir);
    this.logDir = join(o.config.stateDir, 'logs', o.runId);
    o.signal.addEventListener('abort', () => this.cancel.abort(o.signal.reason), { once: true });
  }

  static outDir(config: ResolvedConfig, target: string, task: string): string {
    return join(config.stateDir, 'out', target, task);
  }

  /**
   * Where the index keeps a task's last outputs in one workspace: by the
   * workspace's state directory, target and task. The index lives in the
   * cache, which several workspaces and machines' checkouts share; keyed by
   * target and task alone, one workspace's record (its disk stamps, its
   * summary lines with its own paths) answered for another's.
   */
  /** This workspace's output root for the target (`<stateDir>/out/<target>`). */
  private outRoot(): string {
    return join(this.o.config.stateDir, 'out', this.o.target.name);
  }

  static stateKey(stateDir: string, target: string, task: string): string {
    return `${stateDir}\0${target}/${task}`;
  }

  taskContext(name: string): TaskContext<unknown> {
    const t = this.o.registry.tasks.get(name)!;
    const raw = this.o.config.tasks[name];
    let options: unknown = raw ?? {};
    if (t.def.options) {
      try {
        options = t.def.options.parse(raw ?? {}, `tasks.${name}`);
      } catch (e) {
        const where = this.o.config.configFile ?? 'config';
        throw new RocmflowError('E_CONFIG', `${where}: ${(e as Error).message}`, { exitCode: 2 });
      }
    }
    return { task: name, target: this.o.target, options, config: this.o.config, projectRoot: this.o.config.projectRoot, log: makeLogger(this.o.emit, name) };
  }

  /** Validate every selected task's options up front (config errors exit 2 before anything runs). */
  validateOptions(): void {
    for (const n of this.o.graph.order) this.taskContext(n);
  }

  async run(): Promise<Map<string, TaskOutcome>> {
    this.validateOptions();
    const { graph } = this.o;
    primeCodeHashes(graph.order.map((n) => this.o.registry.tasks.get(n)!), this.o.index);
    const nodes = new Map(graph.order.map((n) => [n, { run: () => this.runOne(n) }]));
    await new PGraph(nodes, graph.edges()).run({ concurrency: this.o.config.jobs, continue: true });
    if (this.declined) throw this.declined;
    await Promise.allSettled(this.uploads);
    await this.flushStats();
    return this.outcomes;
  }

  private finish(task: string, outcome: TaskOutcome, extra: Record<string, unknown> = {}): void {
    this.outcomes.set(task, outcome);
    this.o.emit({ type: 'task', task, state: outcome.state, ms: Math.round(outcome.ms), ...extra, ...(outcome.facts ? { facts: outcome.facts } : {}) } as never);
  }

  private async runOne(name: string): Promise<void> {
    const start = performance.now();
    const ms = () => performance.now() - start;
    const blocked = this.o.graph.deps(name).find((d) => this.outcomes.get(d)?.state === 'failed' || this.outcomes.get(d)?.state === 'skipped');
    if (this.failed || blocked || this.cancel.signal.aborted) {
      const reason = blocked ? `dependency ${blocked} did not complete` : this.cancel.signal.aborted && !this.failed ? 'interrupted' : 'an earlier task failed';
      return this.finish(name, { state: 'skipped', ms: 0, summary: [] }, { reason });
    }
    try {
      await this.decide(name, start);
    } catch (e) {
      if (e instanceof NotANoOp) {
        this.declined ??= e;
        this.cancel.abort(e);
        return this.finish(name, { state: 'skipped', ms: ms(), summary: [] }, { reason: e.message });
      }
      const cancelled = this.cancel.signal.aborted && !isRocmflowError(e);
      if (cancelled && this.failed) return this.finish(name, { state: 'skipped', ms: ms(), summary: [] }, { reason: 'cancelled: an earlier task failed' });
      this.failed = true;
      this.cancel.abort(new Error(`task ${name} failed`));
      const err = e instanceof Error ? e : new Error(String(e));
      const message = cancelled ? 'interrupted' : isRocmflowError(err) ? err.message : `task ${name}: ${err.message}`;
      this.finish(name, { state: 'failed', ms: ms(), summary: [] }, {
        error: message,
        details: isRocmflowError(err) ? [...err.details] : this.o.verbose ? [String(err.stack)] : undefined,
      });
    }
  }

  private depResults(name: string): { digests: Record<string, string>; results: Record<string, DepResult> } {
    const digests: Record<string, string> = {};
    const results: Record<string, DepResult> = {};
    for (const d of this.o.graph.deps(name)) {
      digests[d] = this.outcomes.get(d)!.manifestDigest!;
      const def = this.o.registry.tasks.get(d)!.def;
      results[d] = { outDir: Executor.outDir(this.o.config, this.o.target.name, d), outputs: this.outputsOf(def, d) };
    }
    return { digests, results };
  }

  outputsOf(def: LoadedTask['def'], name: string): string[] {
    // one check for every form: a function's result is held to the same rule as a list
    return normalizeOutputs(name, typeof def.outputs === 'function' ? def.outputs(this.taskContext(name)) : def.outputs);
  }

  private async decide(name: string, start: number): Promise<void> {
    const { index, target } = this.o;
    const task = this.o.registry.tasks.get(name)!;
    const ctx = this.taskContext(name);
    const outDir = Executor.outDir(this.o.config, target.name, name);
    const outputs = this.outputsOf(task.def, name);
    const stateKey = Executor.stateKey(this.o.config.stateDir, target.name, name);
    const prev = await index.get<TaskStateRecord>('state', stateKey);
    const { digests, results } = this.depResults(name);
    const hashing = makeProgress(this.o.emit, name);
    let hashHandle: ReturnType<typeof hashing.start> | undefined;
    const fp = await fingerprintTask({
      task, ctx, index, depDigests: digests, previousStamps: prev?.stamps, env: this.o.env,
      beforeHashing: this.o.onlyFresh ? (files) => { throw new NotANoOp(`${name}: ${files} input file(s) changed`); } : undefined,
      onHashProgress: (done, total) => {
        hashHandle ??= hashing.start('hashing inputs', { total, unit: 'bytes' });
        hashHandle.update(done, total);
      },
    });
    hashHandle?.done();
    const key = fingerprintKey(fp.record);
    const forced = this.o.force.has(name);
    const uncacheable = fp.record.uncacheable;

    const verdict = verdictFor({ forced, uncacheable, key, prev, outputsOnDisk: () => diskMatches(outDir, outputs, prev!.disk) });
    if (verdict !== 'fresh' && this.o.onlyFresh) throw new NotANoOp(`${name}: ${verdict === 'lookup' ? 'not fresh' : 'must run'}`);
    if (verdict === 'fresh') {
      // the same contents under new stamps (a ctime moved: a hard link made and removed, a chmod back and forth):
      // remember the new ones, or every later no-op looks each file up in the stat cache again
      if (fp.stamps !== prev!.stamps) {
        if (this.o.onlyFresh) throw new NotANoOp(`${name}: inputs unchanged under new stamps (the CLI records them)`);
        // over the state read above only: one that another process recorded meanwhile stays
        const now = await index.get<TaskStateRecord>('state', stateKey);
        if (now?.key === prev!.key && now.at === prev!.at) await index.set('state', stateKey, { ...prev!, stamps: fp.stamps, at: new Date().toISOString() } satisfies TaskStateRecord);
      }
      return this.finish(name, { state: 'fresh', ms: performance.now() - start, manifestDigest: prev!.manifestDigest, summary: prev!.summary, facts: prev!.facts }, { key });
    }
    if (verdict === 'lookup') {
      const hit = await this.restoreFromCache(name, key, outDir, outputs, fp, start);
      if (hit) return;
    }
    const { reason, changes } = whyRun({ forced, uncacheable, prev, record: fp.record });
    await this.execute(name, task, ctx, key, outDir, outputs, fp, results, start, { reason, changes });
  }

  /** Local index, then the remote; a damaged blob evicts the entry and returns false. */
  private async restoreFromCache(
    name: string, key: string, outDir: string, outputs: string[], fp: Awaited<ReturnType<typeof fingerprintTask>>, start: number,
  ): Promise<boolean> {
    const { index, remote } = this.o;
    if (this.refused.has(key)) return false;
    let entry = await index.get<ActionEntry>('action', key);
    let source: 'local' | 'remote' = 'local';
    if (!entry && remote) {
      entry = (await remote.pull(key, this.store)) ?? undefined;
      if (entry) {
        source = 'remote';
        await index.set('action', key, entry);
        await index.set('stats', `used:${key}`, Date.now());
      }
    }
    if (!entry) return false;
    let disk: DiskState;
    try {
      disk = restoreOutputs(outDir, entry.manifest, this.store, outputs);
    } catch (e) {
      if (!isRocmflowError(e) || !['E_BLOB_MODIFIED', 'E_BLOB_MISSING', 'E_BAD_ENTRY'].includes(e.code)) throw e;
      for (const x of entry.manifest.entries) if (x.sha256 && (e.message.includes(x.sha256))) this.store.evict(x.sha256);
      await index.delete('action', key);
      // an entry refused once is not fetched again by this run (one warning, one miss)
      if (e.code === 'E_BAD_ENTRY') this.refused.add(key);
      this.o.emit({ type: 'warning', task: name, message: `${e.message}; evicted it, rerunning ${name}` });
      return false;
    }
    const summary = localLines(entry.summary, this.outRoot());
    await this.recordState(name, key, fp, outDir, outputs, entry.manifest, summary, disk, entry.facts);
    await this.bumpStats(source, entry);
    this.finish(name, { state: 'cached', ms: performance.now() - start, manifestDigest: manifestDigest(entry.manifest), summary, facts: entry.facts }, { key, source });
    return true;
  }

  private async recordState(
    name: string, key: string, fp: { record: FingerprintRecord; stamps: Record<string, StatStamp> }, outDir: string, outputs: string[],
    manifest: ActionEntry['manifest'], summary: string[], disk?: DiskState, facts?: Record<string, Json>,
  ): Promise<void> {
    const rec: TaskStateRecord = {
      key, record: fp.record, stamps: fp.stamps, outputs, disk: disk ?? diskState(outDir, outputs), manifestDigest: manifestDigest(manifest), summary,
      ...(facts ? { facts } : {}), at: new Date().toISOString(),
    };
    await this.o.index.set('state', Executor.stateKey(this.o.config.stateDir, this.o.target.name, name), rec);
  }

  /** Hits are counted in memory and written once at the end of the run (parallel hits would race). */
  private readonly hits: Record<string, number> = {};

  private async bumpStats(source: 'local' | 'remote', entry: ActionEntry): Promise<void> {
    const h = this.hits;
    h[`${source}Hits`] = (h[`${source}Hits`] ?? 0) + 1;
    h[`${source}Bytes`] = (h[`${source}Bytes`] ?? 0) + manifestBytes(entry.manifest);
    h.savedMs = (h.savedMs ?? 0) + entry.durationMs;
    await this.o.index.set('stats', `used:${entry.key}`, Date.now());
  }

  private async flushStats(): Promise<void> {
    if (!Object.keys(this.hits).length) return;
    const s = (await this.o.index.get<Record<string, number>>('stats', 'totals')) ?? {};
    for (const [k, v] of Object.entries(this.hits)) s[k] = (s[k] ?? 0) + v;
    await this.o.index.set('stats', 'totals', s);
  }

  private async execute(
    name: string, task: LoadedTask, ctx: TaskContext<unknown>, key: string, outDir: string, outputs: string[],
    fp: Awaited<ReturnType<typeof fingerprintTask>>, deps: Record<string, DepResult>, start: number,
    why: { reason: string; changes: FieldChange[] },
  ): Promise<void> {
    const { config, index, target } = this.o;
    const signal = this.cancel.signal;
    const wsLock = await acquireLock(join(config.stateDir, 'locks', `${target.name}--${name}`), {
      signal, onWait: () => this.o.emit({ type: 'log', task: name, level: 'info', line: 'waiting for another rocmflow process working on this task' }),
    });
    const keyLock = await acquireLock(join(config.cacheDir, 'locks', key), { signal }).catch((e) => {
      wsLock.release();
      throw e;
    });
    try {
      // another process may have produced it while we waited
      if (!this.o.force.has(name) && !fp.record.uncacheable && (await this.restoreFromCache(name, key, outDir, outputs, fp, start))) return;
      await index.delete('state', Executor.stateKey(this.o.config.stateDir, target.name, name));
      this.o.emit({ type: 'start', task: name, reason: why.reason, changes: why.changes });
      for (const o of outputs) rmSync(join(outDir, o), { recursive: true, force: true });
      mkdirSync(outDir, { recursive: true });
      mkdirSync(this.logDir, { recursive: true });
      mkdirSync(join(config.stateDir, 'tmp'), { recursive: true });
      const workDir = mkdtempSync(join(config.stateDir, 'tmp', `${name}-`));
      const logFile = join(this.logDir, `${target.name}--${name}.log`);
      const logStream = createWriteStream(logFile);
      const log = makeLogger(this.o.emit, name, logStream);
      // each task gets its own signal, so what it listens with goes away with it: the run's signal
      // holds one listener per running task, not everything every task ever added
      const taskAbort = new AbortController();
      const onCancel = () => taskAbort.abort(signal.reason);
      if (signal.aborted) onCancel();
      else signal.addEventListener('abort', onCancel, { once: true });
      const shell = await createTaskShell({
        cwd: outDir, env: { ...this.o.env, ...target.definition.env({ detection: target.detection, options: target.options }) }, signal: taskAbort.signal, log: logStream,
        onOutput: this.o.verbose ? (line) => this.o.emit({ type: 'log', task: name, level: 'output', line }) : undefined,
      });
      let result: Awaited<ReturnType<LoadedTask['def']['run']>>;
      const runStart = performance.now();
      try {
        result = await task.def.run({
          ...ctx, outDir, workDir, deps: declaredDeps(name, deps), $: shell.$, signal: taskAbort.signal, logFile, log, progress: makeProgress(this.o.emit, name), cacheDir: config.cacheDir,
          isStoredBlob: (path: string, sha: string) => {
            try {
              return this.store.isBlob(lstatSync(path), sha.replace(/^sha256:/, ''));
            } catch {
              return false;
            }
          },
          storedBlob: (sha: string, size: number) => (isSha256Hex(sha) && !this.store.looksModified(sha, size) ? this.store.path(sha) : null),
        });
        signal.throwIfAborted();
      } finally {
        signal.removeEventListener('abort', onCancel);
        shell.dispose();
        await shell.killAll();
        await new Promise<void>((r) => logStream.end(r));
        rmSync(workDir, { recursive: true, force: true });
      }
      const captureStart = performance.now();
      const progress = makeProgress(this.o.emit, name);
      let h: ReturnType<typeof progress.start> | undefined;
      const manifest = await captureOutputs(outDir, outputs, this.store, {
        task: name,
        onProgress: (done, total) => {
          h ??= progress.start('caching outputs', { total, unit: 'bytes' });
          h.update(done, total);
        },
      });
      h?.done();
      const storeStart = performance.now();
      signal.throwIfAborted();
      const summary = result?.summary ?? [];
      const facts = result?.facts;
      const durationMs = Math.round(performance.now() - start);
      if (!fp.record.uncacheable) {
        const logBytes = readFileSync(logFile);
        const logDigest = sha256(logBytes);
        this.store.putBytes(logBytes, logDigest);
        const entry: ActionEntry = {
          v: 1, key, task: name, target: target.name, manifest, summary: portableLines(summary, this.outRoot()), ...(facts ? { facts } : {}), log: logDigest, durationMs, createdAt: new Date().toISOString(), rocmflowVersion: ROCMFLOW_VERSION,
        };
        // blobs durable first, the index entry last: a result is never visible half-written
        await this.store.sync();
        await index.set('action', key, entry);
        await index.set('stats', `used:${key}`, Date.now());
        if (this.o.remote?.canWrite) this.uploads.push(this.o.remote.push(key, entry, this.store));
      }
      await this.recordState(name, key, fp, outDir, outputs, manifest, summary, undefined, facts);
      const end = performance.now();
      // where a run's time went: deciding and locking, the task itself, hashing its outputs, storing them (sync, index)
      const phases = { prepare: runStart - start, run: captureStart - runStart, capture: storeStart - captureStart, store: end - storeStart };
      this.finish(name, { state: 'ran', ms: end - start, manifestDigest: manifestDigest(manifest), summary, facts }, {
        key, reason: why.reason, changes: why.changes, phases: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, Math.round(v)])),
      });
    } finally {
      keyLock.release();
      wsLock.release();
    }
  }
}
