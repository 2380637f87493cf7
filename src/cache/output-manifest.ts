/**
 * Output manifests: what a task produced (files, directories, symlinks with
 * their modes and digests), how it is captured into the content store, how
 * it is restored, and how the outputs on disk are checked against it.
 */
import {
  chmodSync, constants, copyFileSync, linkSync, lstatSync, mkdirSync, readdirSync, readlinkSync, rmSync, symlinkSync, type Stats,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { RocmflowError } from '../errors.js';
import { canonicalJson, sha256 } from '../util/canonical.js';
import { hashFiles } from '../util/hash-pool.js';
import { storeError, type ContentStore } from './content-store.js';

export interface ManifestEntry {
  /** Path relative to the task's output directory. */
  path: string;
  type: 'file' | 'dir' | 'symlink';
  /** Permission bits as the task left them. */
  mode: number;
  size?: number;
  sha256?: string;
  target?: string;
}

export interface OutputManifest {
  entries: ManifestEntry[];
}

/** What the outputs looked like on disk when last written or restored (fresh checks compare this). */
export type DiskState = Record<string, string>;

const digests = new WeakMap<OutputManifest, string>();

/** The digest dependents' keys include; computed once per manifest object (tens of thousands of entries are common). */
export function manifestDigest(m: OutputManifest): string {
  let d = digests.get(m);
  if (!d) {
    d = sha256(canonicalJson(m.entries));
    digests.set(m, d);
  }
  return d;
}

export function manifestBytes(m: OutputManifest): number {
  return m.entries.reduce((a, e) => a + (e.size ?? 0), 0);
}

function walk(root: string, rel: string, out: { rel: string; st: Stats }[]): void {
  const abs = join(root, rel);
  let st: Stats;
  try {
    st = lstatSync(abs);
  } catch {
    return;
  }
  out.push({ rel, st });
  if (st.isDirectory()) for (const name of readdirSync(abs).sort()) walk(root, `${rel}/${name}`, out);
}

/** Lstat every entry under the declared outputs. Missing outputs are reported by name. */
export function scanOutputs(outDir: string, outputs: readonly string[]): { rel: string; st: Stats }[] {
  const found: { rel: string; st: Stats }[] = [];
  for (const o of outputs) walk(outDir, o.replace(/\/+$/, ''), found);
  found.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  return found.filter((e, i) => i === 0 || found[i - 1]!.rel !== e.rel);
}

function stampOf(st: Stats, linkTarget?: string): string {
  const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'f';
  // write bits are dropped on capture (blobs are read-only), so they are not compared
  const mode = st.mode & 0o7555;
  return type === 'd' ? `d:${mode}` : type === 'l' ? `l:${linkTarget}` : `f:${mode}:${st.size}:${st.mtimeMs}:${st.ino}`;
}

export function diskState(outDir: string, outputs: readonly string[]): DiskState {
  const state: DiskState = {};
  for (const { rel, st } of scanOutputs(outDir, outputs)) state[rel] = stampOf(st, st.isSymbolicLink() ? readlinkSync(join(outDir, rel)) : undefined);
  return state;
}

/** Do the outputs on disk still look exactly as recorded (no extra, missing or changed entries)? */
export function diskMatches(outDir: string, outputs: readonly string[], recorded: DiskState | undefined): boolean {
  if (!recorded) return false;
  const now = diskState(outDir, outputs);
  const a = Object.keys(now);
  if (a.length !== Object.keys(recorded).length) return false;
  return a.every((k) => recorded[k] === now[k]);
}

/**
 * Capture the declared outputs into the store. Files are hashed on all
 * cores, then hard-linked (or copied) in as read-only blobs.
 */
export async function captureOutputs(
  outDir: string,
  outputs: readonly string[],
  store: ContentStore,
  opts: { task: string; onProgress?: (done: number, total: number) => void },
): Promise<OutputManifest> {
  const scanned = scanOutputs(outDir, outputs);
  for (const o of outputs) {
    const rel = o.replace(/\/+$/, '');
    if (!scanned.some((e) => e.rel === rel)) throw new RocmflowError('E_OUTPUT_MISSING', `task ${opts.task}: declared output ${rel} was not created`);
  }
  const files = scanned.filter((e) => e.st.isFile());
  for (const e of scanned)
    if (!e.st.isFile() && !e.st.isDirectory() && !e.st.isSymbolicLink())
      throw new RocmflowError('E_OUTPUT_TYPE', `task ${opts.task}: output ${e.rel} is not a file, directory or symlink`);
  const total = files.reduce((a, f) => a + Number(f.st.size), 0);
  const digests = await hashFiles(files.map((f) => ({ path: join(outDir, f.rel), size: Number(f.st.size) })), {
    onProgress: (b) => opts.onProgress?.(b, total),
  });
  const byRel = new Map(files.map((f, i) => [f.rel, digests[i]!.digest]));
  const entries: ManifestEntry[] = [];
  for (const { rel, st } of scanned) {
    const mode = st.mode & 0o7777;
    if (st.isDirectory()) entries.push({ path: rel, type: 'dir', mode });
    else if (st.isSymbolicLink()) entries.push({ path: rel, type: 'symlink', mode: 0o777, target: readlinkSync(join(outDir, rel)) });
    else {
      const digest = byRel.get(rel)!;
      try {
        store.ingest(join(outDir, rel), digest, (mode & 0o111) !== 0);
      } catch (e) {
        throw e instanceof RocmflowError ? e : storeError(e, store.path(digest));
      }
      entries.push({ path: rel, type: 'file', mode, size: Number(st.size), sha256: digest });
    }
  }
  return { entries };
}

/**
 * Restore a manifest into `outDir` (emptied first). Files are hard links
 * to their blobs when the blob's exec bit matches, copies (reflinks where
 * the filesystem can) otherwise. Throws E_BLOB_MODIFIED / E_BLOB_MISSING
 * when a blob is gone or was modified; the caller evicts and reruns.
 */
export function restoreOutputs(outDir: string, manifest: OutputManifest, store: ContentStore, outputs: readonly string[]): DiskState {
  // one lstat per blob: is it there, unmodified, and which exec bit does it have
  const blobStats = new Map<string, Stats>();
  for (const e of manifest.entries)
    if (e.type === 'file' && !blobStats.has(e.sha256!)) {
      let st: Stats;
      try {
        st = lstatSync(store.path(e.sha256!));
      } catch {
        throw new RocmflowError('E_BLOB_MISSING', `blob ${e.sha256} for ${e.path} is missing from the cache`);
      }
      if (store.statLooksModified(st, e.size!)) throw new RocmflowError('E_BLOB_MODIFIED', `blob ${e.sha256} for ${e.path} was modified on disk`);
      blobStats.set(e.sha256!, st);
    }
  for (const o of outputs) rmSync(join(outDir, o), { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const made = new Set<string>([outDir]);
  // entries come parents first: a plain mkdir almost always does (the
  // recursive form walks the whole path and cost ~0.5 ms per directory)
  const ensureDir = (d: string) => {
    if (made.has(d)) return;
    try {
      mkdirSync(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') mkdirSync(d, { recursive: true });
      else if (code !== 'EEXIST') throw e;
    }
    made.add(d);
  };
  const dirs: ManifestEntry[] = [];
  const disk: DiskState = {};
  for (const e of manifest.entries) {
    const dest = `${outDir}/${e.path}`;
    ensureDir(dirname(dest));
    if (e.type === 'dir') {
      ensureDir(dest);
      dirs.push(e);
      disk[e.path] = `d:${e.mode & 0o7555}`;
    } else if (e.type === 'symlink') {
      symlinkSync(e.target!, dest);
      disk[e.path] = `l:${e.target}`;
    } else {
      const blob = store.path(e.sha256!);
      const bst = blobStats.get(e.sha256!)!;
      let linked = false;
      if ((bst.mode & 0o111) !== 0 === ((e.mode & 0o111) !== 0)) {
        try {
          linkSync(blob, dest);
          linked = true;
        } catch {}
      }
      if (linked) disk[e.path] = stampOf(bst);
      else {
        copyFileSync(blob, dest, constants.COPYFILE_FICLONE);
        chmodSync(dest, e.mode);
        disk[e.path] = stampOf(lstatSync(dest));
      }
    }
  }
  // directory modes last, deepest first, so read-only dirs don't block their children
  for (const d of dirs.reverse()) chmodSync(join(outDir, d.path), d.mode);
  return disk;
}
