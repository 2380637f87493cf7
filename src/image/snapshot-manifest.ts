import { readFile } from 'node:fs/promises';
import { RocmflowError } from '../errors.js';
import type { LayerInfo } from './layer.js';
import type { TarEntry } from './tar-entries.js';

/** One path of a snapshot, as its manifest records it. */
export interface ManifestFile {
  path: string;
  type: TarEntry['type'];
  /** Octal permission bits, e.g. "0755" (absent for symlinks). */
  mode?: string;
  /** Regular files: size in bytes and sha256 (hex). */
  size?: number;
  sha256?: string;
  /** Symlinks: the target as stored; hardlinks: the archive path linked to. */
  target?: string;
}

/** The manifest written next to a snapshot (`X.tar.zst` → `X.manifest.json`). */
export interface SnapshotManifest {
  format: typeof MANIFEST_FORMAT;
  /** A version id of what was snapshotted (e.g. the ROCm build), when given. */
  version: string | null;
  /** The fixed mtime of every entry. */
  mtime: number;
  /** The archive as an OCI layer. */
  layer: Pick<LayerInfo, 'mediaType' | 'digest' | 'size' | 'diffId' | 'uncompressedSize'>;
  totals: { files: number; dirs: number; symlinks: number; hardlinks: number; bytes: number };
  /** Every entry in archive order. */
  files: ManifestFile[];
}

export const MANIFEST_FORMAT = 'rocmflow.snapshot.v1';

/** The manifest path that goes with a snapshot archive. */
export function manifestPathFor(archive: string): string {
  return archive.replace(/(\.tar)?(\.zst|\.zstd|\.gz)?$/, '') + '.manifest.json';
}

/** The manifest record of one entry. */
export function manifestFile(e: TarEntry, sha256?: string): ManifestFile {
  const mode = e.mode.toString(8).padStart(4, '0');
  if (e.type === 'file') return { path: e.path, type: e.type, mode, size: e.size, sha256: sha256 ?? '' };
  if (e.type === 'dir') return { path: e.path, type: e.type, mode };
  if (e.type === 'hardlink') return { path: e.path, type: e.type, mode, target: e.target! };
  return { path: e.path, type: e.type, target: e.target! };
}

export function totalsOf(files: readonly ManifestFile[]): SnapshotManifest['totals'] {
  const t = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0 };
  for (const f of files) {
    if (f.type === 'file') (t.files += 1), (t.bytes += f.size ?? 0);
    else if (f.type === 'dir') t.dirs += 1;
    else if (f.type === 'symlink') t.symlinks += 1;
    else t.hardlinks += 1;
  }
  return t;
}

/** Stable text: the header pretty-printed, one entry per line (diffable, byte-identical for the same tree). */
export function formatManifest(m: SnapshotManifest): string {
  const { files, ...head } = m;
  const top = JSON.stringify(head, null, 2).replace(/\n}$/, '');
  const lines = files.map((f) => `    ${JSON.stringify(f)}`);
  return `${top},\n  "files": [\n${lines.join(',\n')}\n  ]\n}\n`;
}

export async function readManifest(path: string): Promise<SnapshotManifest> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new RocmflowError('E_NO_MANIFEST', `snapshot manifest ${path} not found`, { exitCode: 2 });
    throw e;
  }
  let m: SnapshotManifest;
  try {
    m = JSON.parse(text) as SnapshotManifest;
  } catch {
    throw new RocmflowError('E_BAD_MANIFEST', `${path} is not valid JSON`);
  }
  if (m?.format !== MANIFEST_FORMAT || !Array.isArray(m.files) || typeof m.layer?.digest !== 'string')
    throw new RocmflowError('E_BAD_MANIFEST', `${path} is not a rocmflow snapshot manifest (format ${JSON.stringify(m?.format)})`);
  return m;
}

/** Differences between what a tree holds and what the manifest says, one line each. */
export function diffManifest(expected: readonly ManifestFile[], actual: readonly ManifestFile[]): string[] {
  const want = new Map(expected.map((f) => [f.path, f]));
  const problems: string[] = [];
  for (const a of actual) {
    const w = want.get(a.path);
    want.delete(a.path);
    if (!w) problems.push(`unexpected ${a.type} ${a.path}`);
    else if (w.type !== a.type) problems.push(`${a.path}: is a ${a.type}, expected a ${w.type}`);
    else if (w.mode !== a.mode) problems.push(`${a.path}: mode ${a.mode}, expected ${w.mode}`);
    else if (w.size !== a.size) problems.push(`${a.path}: ${a.size} bytes, expected ${w.size}`);
    else if (w.sha256 !== a.sha256) problems.push(`${a.path}: content differs (sha256 ${a.sha256?.slice(0, 12)}, expected ${w.sha256?.slice(0, 12)})`);
    else if (w.target !== a.target) problems.push(`${a.path}: links to ${a.target}, expected ${w.target}`);
  }
  for (const w of want.values()) problems.push(`missing ${w.type} ${w.path}`);
  return problems;
}
