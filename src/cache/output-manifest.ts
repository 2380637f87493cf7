/**
 * Output manifests: what a task produced (files, directories, symlinks with
 * their modes and digests), how it is captured into the content store, how
 * it is restored, and how the outputs on disk are checked against it.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync, constants, copyFileSync, linkSync, lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, type Stats,
} from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { RocmflowError } from '../errors.js';
import { canonicalJson, isSha256Hex, sha256 } from '../util/canonical.js';
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

/**
 * Normalise a task's declared output paths, whatever form declared them
 * (an array or a function): each must stay inside the output directory.
 * Throws E_OUTPUT_PATH naming the task and the path.
 */
export function normalizeOutputs(task: string, outputs: unknown): string[] {
  if (!Array.isArray(outputs)) throw new RocmflowError('E_OUTPUT_PATH', `task ${task}: outputs must be a list of relative paths`);
  return outputs.map((o) => {
    const n = typeof o === 'string' && o !== '' && !o.includes('\0') && !o.startsWith('/') ? posix.normalize(o).replace(/\/+$/, '') : null;
    if (n === null || n === '.' || n === '..' || n.startsWith('../'))
      throw new RocmflowError('E_OUTPUT_PATH', `task ${task}: output ${JSON.stringify(o)} is not a relative path inside the task's output directory`);
    return n;
  });
}

/**
 * Check a manifest made elsewhere (a remote, a shared index) before any of
 * it touches the disk: known types; unique, normalised, relative paths;
 * nothing below a symlink or a file of the same manifest (in any order);
 * digests that are 64 hex digits. With `outputs`, every path must lie in
 * one of them. Returns a one-line reason, or null when it is sound.
 */
export function manifestProblem(manifest: unknown, outputs?: readonly string[]): string | null {
  const entries = (manifest as OutputManifest | undefined)?.entries;
  if (!Array.isArray(entries)) return 'manifest.entries missing';
  const types = new Map<string, string>();
  for (const m of entries as ManifestEntry[]) {
    const p = m?.path;
    if (typeof p !== 'string' || p === '' || p.startsWith('/') || p.includes('\0') || p.split('/').some((c) => c === '' || c === '.' || c === '..'))
      return `unsafe output path ${JSON.stringify(p)}`;
    if (types.has(p)) return `${p} is listed twice`;
    if (!Number.isInteger(m.mode) || m.mode < 0 || m.mode > 0o7777) return `${p}: bad mode`;
    if (m.type === 'file') {
      if (typeof m.sha256 !== 'string' || !isSha256Hex(m.sha256) || !Number.isSafeInteger(m.size) || m.size! < 0) return `${p}: bad digest or size`;
    } else if (m.type === 'symlink') {
      if (typeof m.target !== 'string' || m.target === '' || m.target.includes('\0')) return `${p}: symlink target missing`;
    } else if (m.type !== 'dir') return `${p}: unknown type ${JSON.stringify(m.type)}`;
    if (outputs && !outputs.some((o) => p === o || p.startsWith(`${o}/`))) return `${p} is not under a declared output`;
    types.set(p, m.type);
  }
  for (const p of types.keys())
    for (let i = p.indexOf('/'); i > 0; i = p.indexOf('/', i + 1)) {
      const t = types.get(p.slice(0, i));
      if (t && t !== 'dir') return `${p} lies under a ${t} (${p.slice(0, i)})`;
    }
  return null;
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
  const state: DiskState = Object.create(null); // paths as keys: no prototype (a file may be named __proto__)
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
 * cores, then hard-linked (or copied) in as read-only blobs. A file named
 * by a sha256 that is already the store's blob of it (a hard link) is
 * taken as is, unread.
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
  // a file named by its own sha256 (an OCI layout's blobs/sha256/<hex>) that is a hard link to the
  // store's blob of that digest is that blob: nothing to read
  const byRel = new Map<string, string>();
  for (const f of files) {
    const name = posix.basename(f.rel);
    if (store.isBlob(f.st, name)) byRel.set(f.rel, name);
  }
  // hard links among the outputs (one layer blob in two OCI layouts) are one file: read once, and,
  // when every link of it is an output, linked into the store like a file with one name
  const inode = (st: Stats) => `${st.dev}:${st.ino}`;
  const links = new Map<string, number>();
  for (const f of files) links.set(inode(f.st), (links.get(inode(f.st)) ?? 0) + 1);
  const firstOf = new Map<string, string>();
  const toHash = files.filter((f) => {
    if (byRel.has(f.rel) || firstOf.has(inode(f.st))) return false;
    firstOf.set(inode(f.st), f.rel);
    return true;
  });
  const total = toHash.reduce((a, f) => a + Number(f.st.size), 0);
  const digests = await hashFiles(toHash.map((f) => ({ path: join(outDir, f.rel), size: Number(f.st.size) })), {
    onProgress: (b) => opts.onProgress?.(b, total),
  });
  toHash.forEach((f, i) => byRel.set(f.rel, digests[i]!.digest));
  for (const f of files) if (!byRel.has(f.rel)) byRel.set(f.rel, byRel.get(firstOf.get(inode(f.st))!)!);
  const entries: ManifestEntry[] = [];
  for (const { rel, st } of scanned) {
    const mode = st.mode & 0o7777;
    if (st.isDirectory()) entries.push({ path: rel, type: 'dir', mode });
    else if (st.isSymbolicLink()) entries.push({ path: rel, type: 'symlink', mode: 0o777, target: readlinkSync(join(outDir, rel)) });
    else {
      const digest = byRel.get(rel)!;
      try {
        store.ingest(join(outDir, rel), digest, (mode & 0o111) !== 0, links.get(inode(st)) ?? 1);
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
/**
 * The mode a restored file or directory gets: its permission bits without
 * write for group and others, and never setuid, setgid or sticky. A
 * manifest may come from a remote, and rocmflow restores as root: an entry
 * must not make a setuid-root program, nor a directory other users can
 * swap files in before a later step reads them.
 */
export const restoredMode = (mode: number): number => mode & 0o755;

export function restoreOutputs(outDir: string, manifest: OutputManifest, store: ContentStore, outputs: readonly string[]): DiskState {
  const problem = manifestProblem(manifest, outputs);
  if (problem) throw new RocmflowError('E_BAD_ENTRY', `cache entry refused: ${problem}`);
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
      if (!st.isFile()) throw new RocmflowError('E_BLOB_MODIFIED', `blob ${e.sha256} for ${e.path} is not a regular file`);
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
      if (code === 'ENOENT') {
        ensureDir(dirname(d));
        mkdirSync(d);
      } else if (code !== 'EEXIST') throw e;
      // something already there must be a real directory, never a link to elsewhere
      else if (!lstatSync(d).isDirectory()) throw new RocmflowError('E_BAD_ENTRY', `cannot restore into ${d}: it exists and is not a directory`);
    }
    made.add(d);
  };
  // link() and symlink() create a name and never follow or replace what is
  // there, so most names are made in place with one call; a name that
  // already exists is made under a temp name and renamed over it (a rename
  // replaces whatever is at the destination and never follows a link there)
  const tmpName = (dest: string) => `${dirname(dest)}/.rf-restore-${randomBytes(6).toString('hex')}`;
  const place = (tmp: string, dest: string) => {
    try {
      renameSync(tmp, dest);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  };
  const create = (dest: string, make: (name: string) => void) => {
    try {
      make(dest);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const tmp = tmpName(dest);
    make(tmp);
    place(tmp, dest);
  };
  const dirs: ManifestEntry[] = [];
  const disk: DiskState = Object.create(null); // paths as keys: no prototype (a file may be named __proto__)
  for (const e of manifest.entries) {
    const dest = `${outDir}/${e.path}`;
    ensureDir(dirname(dest));
    if (e.type === 'dir') {
      ensureDir(dest);
      dirs.push(e);
      disk[e.path] = `d:${restoredMode(e.mode) & 0o7555}`;
    } else if (e.type === 'symlink') {
      create(dest, (name) => symlinkSync(e.target!, name));
      disk[e.path] = `l:${e.target}`;
    } else {
      const blob = store.path(e.sha256!);
      const bst = blobStats.get(e.sha256!)!;
      let linked = false;
      if ((bst.mode & 0o111) !== 0 === ((e.mode & 0o111) !== 0)) {
        try {
          create(dest, (name) => linkSync(blob, name));
          linked = true;
        } catch {}
      }
      if (!linked) {
        // a copy can fail half-way: it is made under a temp name, never at its place
        const tmp = tmpName(dest);
        try {
          copyFileSync(blob, tmp, constants.COPYFILE_FICLONE | constants.COPYFILE_EXCL);
          chmodSync(tmp, restoredMode(e.mode));
        } catch (err) {
          rmSync(tmp, { force: true });
          throw err;
        }
        place(tmp, dest);
      }
      disk[e.path] = linked ? stampOf(bst) : stampOf(lstatSync(dest));
    }
  }
  // directory modes last, deepest first, so read-only dirs don't block their children
  for (const d of dirs.reverse()) chmodSync(join(outDir, d.path), restoredMode(d.mode));
  return disk;
}
