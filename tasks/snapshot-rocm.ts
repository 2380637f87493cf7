/**
 * The `snapshot-rocm` task: a deterministic `rocm.tar.zst` of the fetched
 * ROCm tree plus `rocm.manifest.json` (every path with size, mode, sha256 or
 * link target; totals; the ROCm version id). The same tree gives the same
 * bytes. Its paths are those of the runtime images (`opt/rocm/...`), so the
 * archive is the full image's GPU runtime layer as is: the toolkit is
 * compressed once per version, not once per trim-runtime run.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { defineTask, RocmflowError, s, type RunContext, type TaskContext, type TaskInputs } from '../src/plugin/core.js';
import type { SnapshotInfo } from '../src/image/snapshot.js';
import { ROCM_MOUNT } from '../src/pipeline/runtime.js';

/** `tasks.snapshot-rocm` options. */
export interface SnapshotRocmOptions {
  /** zstd level (1..22). @default 3 */
  level?: number;
  /** mtime of every entry, seconds since the epoch. @default SOURCE_DATE_EPOCH, else 0 */
  mtime?: number;
}

export const snapshotRocmOptions: s.Schema<SnapshotRocmOptions> = s.object({
  level: s.optional(s.number({ integer: true, min: 1, max: 22 })),
  mtime: s.optional(s.number({ integer: true, min: 0 })),
});

/** Where fetch-rocm's tree is, and what version it holds. */
export interface RocmTree {
  /** The directory to snapshot, or null when the target has no GPU runtime (`kind: none`). */
  dir: string | null;
  kind: string;
  version: string | null;
}

/**
 * Read fetch-rocm's output: `fetch.json` says the source kind; a `dir`
 * source is not copied, its `rocm.json` holds the path; others extracted
 * into `rocm/`.
 */
export async function locateRocmTree(fetchOutDir: string): Promise<RocmTree> {
  const fetchJson = join(fetchOutDir, 'fetch.json');
  const record = await readJsonObject(fetchJson);
  const kind = typeof record.kind === 'string' ? record.kind : null;
  if (!kind) throw new RocmflowError('E_BAD_FETCH_RECORD', `${fetchJson}: missing "kind"`);
  const version = versionOf(record.version, record.buildId);
  // none: no GPU runtime; inRoot: apt packages installed into the base root, which the images carry already
  if (kind === 'none' || record.inRoot === true) return { dir: null, kind, version };
  if (kind === 'dir') {
    const rocmJson = join(fetchOutDir, 'rocm.json');
    const p = (await readJsonObject(rocmJson)).path;
    if (typeof p !== 'string' || !p) throw new RocmflowError('E_BAD_FETCH_RECORD', `${rocmJson}: missing "path" of the ROCm install`);
    return { dir: resolve(fetchOutDir, p), kind, version };
  }
  return { dir: join(fetchOutDir, 'rocm'), kind, version };
}

/** Snapshot fetch-rocm's tree into `outDir`; an empty tree when there is no GPU runtime. */
export async function snapshotRocm(fetchOutDir: string, outDir: string, workDir: string, opts: SnapshotRocmOptions & Pick<RunContext, 'signal'> & { onProgress?(done: number, total: number): void }): Promise<SnapshotInfo & { kind: string }> {
  const tree = await locateRocmTree(fetchOutDir);
  let dir = tree.dir;
  if (!dir) {
    dir = join(workDir, 'empty-rocm');
    await mkdir(dir, { recursive: true });
  }
  const { snapshot } = await import('../src/image/snapshot.js');
  const info = await snapshot({
    source: dir,
    out: join(outDir, 'rocm.tar.zst'),
    manifestOut: join(outDir, 'rocm.manifest.json'),
    level: opts.level,
    mtime: opts.mtime,
    // the paths the tree has in the runtime images, so the archive is the full image's layer as is
    prefix: tree.dir ? ROCM_MOUNT.slice(1) : undefined,
    version: tree.version ?? undefined,
    signal: opts.signal,
    onProgress: opts.onProgress,
  });
  return { ...info, kind: tree.kind };
}

export default defineTask<SnapshotRocmOptions>({
  name: 'snapshot-rocm',
  description: 'deterministic tar.zst + manifest of the ROCm tree (also the full image layer)',
  deps: ['fetch-rocm'],
  options: snapshotRocmOptions,
  inputs(ctx: TaskContext<SnapshotRocmOptions>): TaskInputs {
    const inputs: TaskInputs = {
      params: { level: ctx.options.level ?? null, mtime: ctx.options.mtime ?? null },
      // the default mtime comes from here
      env: ['SOURCE_DATE_EPOCH'],
      tools: ['zstd --version'],
    };
    // a `dir` source is hashed in place, not copied: fetch-rocm's outputs then
    // only name the path, so the tree itself must be an input here too
    const dir = dirSource(ctx);
    if (dir) inputs.files = [dir];
    return inputs;
  },
  outputs: ['rocm.tar.zst', 'rocm.manifest.json'],
  async run(ctx) {
    // loaded when the task runs, not for the check that finds it fresh
    const { humanBytes } = await import('../src/image/report.js');
    const dep = ctx.deps['fetch-rocm'];
    if (!dep) throw new RocmflowError('E_MISSING_DEP', 'snapshot-rocm: the fetch-rocm result is missing');
    const bar = ctx.progress.start('snapshot ROCm', { unit: 'bytes' });
    const info = await snapshotRocm(dep.outDir, ctx.outDir, ctx.workDir, {
      level: ctx.options.level,
      mtime: ctx.options.mtime,
      signal: ctx.signal,
      onProgress: (done, total) => bar.update(done, total),
    });
    bar.done();
    const t = info.totals;
    return {
      summary: [
        `ROCm snapshot${info.version ? ` ${info.version}` : ''}: ${t.files.toLocaleString('en-US')} files, ${humanBytes(info.uncompressedSize)} → ${humanBytes(info.size)} zstd` +
          (info.kind === 'none' ? ' (no GPU runtime: empty tree)' : ''),
        `layer ${info.digest}`,
      ],
    };
  },
});

function dirSource(ctx: TaskContext<SnapshotRocmOptions>): string | null {
  const opt = (ctx.config.tasks['fetch-rocm'] as { source?: { kind?: string; path?: string } } | undefined)?.source;
  const src = opt ?? ctx.target.definition.runtime;
  return src?.kind === 'dir' && typeof (src as { path?: unknown }).path === 'string' ? resolve(ctx.projectRoot, (src as { path: string }).path) : null;
}

function versionOf(v: unknown, buildId: unknown): string | null {
  if (typeof v === 'string' && v) return typeof buildId === 'string' && buildId ? `${v}+${buildId}` : v;
  if (v && typeof v === 'object') {
    const o = v as { version?: unknown; buildId?: unknown };
    if (typeof o.version === 'string') return versionOf(o.version, o.buildId);
  }
  return null;
}

async function readJsonObject(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new RocmflowError('E_BAD_FETCH_RECORD', `${path} not found: fetch-rocm did not record what it fetched`);
    throw e;
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {}
  throw new RocmflowError('E_BAD_FETCH_RECORD', `${path} is not a JSON object`);
}
