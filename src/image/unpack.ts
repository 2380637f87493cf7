/**
 * Unpack an image built elsewhere into a root directory: an OCI archive
 * (`minimal.oci.tar`), an OCI image layout directory, or a docker archive
 * (`docker save` format), with tar, gzip or zstd layers. Used where a
 * machine checks images it did not build (`rocmflow verify`), so every byte
 * is treated as hostile: the archive and each layer go through the one safe
 * extractor (src/archive/extract.ts), every blob must match its digest and
 * every layer its diff_id, and whiteouts are applied without ever writing
 * through a link of a lower layer. A layer that writes under a lower
 * layer's symlink is refused instead of guessed at.
 *
 * Absolute symlinks inside a layer (`/usr/bin/cc -> /etc/alternatives/cc`)
 * become relative ones to the same place in the root: the same thing once
 * the root is entered, and the extractor never creates a link pointing out.
 */
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, rm, stat, statfs } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { RocmflowError } from '../errors.js';
import { extract } from '../archive/extract.js';
import { sha256 } from '../util/canonical.js';
import { isOciDigest } from './digest-stream.js';
import { sha256File } from '../util/sha256-file.js';

/** The parts of an image config a runner needs. */
export interface ImageRuntimeConfig {
  env: Record<string, string>;
  labels: Record<string, string>;
  entrypoint: string[];
}

export interface UnpackedImage {
  /** The root directory. */
  root: string;
  /** What the path was: `oci-archive`, `oci-layout`, `docker-archive` or `root` (a directory used as is). */
  kind: 'oci-archive' | 'oci-layout' | 'docker-archive' | 'root';
  /** The image config (empty for a plain root). */
  config: ImageRuntimeConfig;
  /** The manifest's digest (OCI) or the config's (docker), null for a root. */
  digest: string | null;
  layers: number;
}

export interface UnpackOptions {
  /** A new or empty directory for the result (the root is `<dest>/rootfs`). */
  dest: string;
  /** Pick a manifest by its `org.opencontainers.image.ref.name` when the index holds several. */
  ref?: string;
  signal?: AbortSignal;
  /** Progress: which layer, and compressed bytes read of it. */
  onProgress?(step: string, done: number, total: number): void;
  /**
   * The most the layers' files may come to. By default the space free under
   * `dest` less 1 GiB: a hostile image (its digests as consistent as any)
   * can hold a layer that expands without end, and it stops before the disk
   * is full.
   */
  maxBytes?: number;
}

const bad = (what: string, why: string) => new RocmflowError('E_BAD_IMAGE', `${what}: ${why}`);

/** A blob of an OCI layout: the path, after checking the digest's form (no `../` through a digest). */
function blobPath(layout: string, digest: unknown, what: string): string {
  if (!isOciDigest(digest)) throw bad(what, `"${String(digest)}" is not a sha256 digest`);
  return join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

/** Read a small JSON blob, checking its digest (when given) and its size. */
async function readJsonBlob(path: string, what: string, digest?: string, opts: { list?: boolean } = {}): Promise<Record<string, unknown>> {
  const st = await lstat(path).catch(() => null);
  if (!st?.isFile()) throw bad(what, `${relative(process.cwd(), path) || path} is missing or not a regular file`);
  if (st.size > 16 << 20) throw bad(what, `is ${st.size} bytes: too large for an image document`);
  const text = await readFile(path);
  if (digest && `sha256:${sha256(text)}` !== digest) throw bad(what, `content does not match its digest ${digest}`);
  let v: unknown;
  try {
    v = JSON.parse(text.toString('utf8'));
  } catch (e) {
    throw bad(what, `not JSON (${(e as Error).message})`);
  }
  if (opts.list ? !Array.isArray(v) : !v || typeof v !== 'object' || Array.isArray(v)) throw bad(what, opts.list ? 'not a JSON list' : 'not a JSON object');
  return v as Record<string, unknown>;
}

function runtimeConfig(config: Record<string, unknown>, what: string): ImageRuntimeConfig {
  const c = (config.config ?? config.Config ?? {}) as Record<string, unknown>;
  if (typeof c !== 'object' || c === null) throw bad(what, '"config" is not an object');
  const env: Record<string, string> = {};
  for (const e of Array.isArray(c.Env) ? c.Env : []) {
    if (typeof e !== 'string' || !e.includes('=')) throw bad(what, `Env entry ${JSON.stringify(e)} is not KEY=VALUE`);
    env[e.slice(0, e.indexOf('='))] = e.slice(e.indexOf('=') + 1);
  }
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries((c.Labels ?? {}) as Record<string, unknown>)) if (typeof v === 'string') labels[k] = v;
  const entrypoint = Array.isArray(c.Entrypoint) ? c.Entrypoint.filter((x): x is string => typeof x === 'string') : [];
  return { env, labels, entrypoint };
}

/**
 * Move the extracted layer `from` into `root`, applying its whiteouts:
 * `.wh.NAME` removes NAME of a lower layer, `.wh..wh..opq` empties the
 * directory. A directory over a lower directory is merged; anything else
 * replaces what was there. Nothing is followed: a layer entry under a lower
 * layer's symlink is refused.
 */
async function applyLayer(from: string, root: string, what: string, at = ''): Promise<void> {
  const names = await readdir(from);
  // whiteouts first (they speak of lower layers only)
  if (names.includes('.wh..wh..opq')) {
    for (const n of await readdir(root).catch(() => [] as string[])) await rm(join(root, n), { recursive: true, force: true });
  }
  for (const n of names) {
    if (!n.startsWith('.wh.') || n === '.wh..wh..opq') continue;
    const victim = n.slice('.wh.'.length);
    if (!victim || victim === '.' || victim === '..' || victim.includes('/')) throw bad(what, `whiteout "${join(at, n)}" names no entry`);
    await rm(join(root, victim), { recursive: true, force: true });
  }
  for (const n of names) {
    if (n.startsWith('.wh.')) continue;
    const src = join(from, n);
    const dst = join(root, n);
    const [s, d] = await Promise.all([lstat(src), lstat(dst).catch(() => null)]);
    if (s.isDirectory() && d?.isDirectory()) {
      await applyLayer(src, dst, what, join(at, n));
      continue;
    }
    if (s.isDirectory() && d?.isSymbolicLink()) throw bad(what, `"${join(at, n)}/" is written under a lower layer's symlink "${join(at, n)}": not supported`);
    if (d) await rm(dst, { recursive: true, force: true });
    await rename(src, dst);
  }
}

async function freeBytes(dir: string): Promise<number> {
  const st = await statfs(dir);
  return st.bavail * st.bsize;
}

/** What the path holds. */
async function kindOf(path: string): Promise<UnpackedImage['kind'] | 'archive'> {
  const st = await stat(path).catch(() => null);
  if (!st) throw new RocmflowError('E_BAD_IMAGE', `${path}: no such file or directory`, { exitCode: 2 });
  if (st.isFile()) return 'archive';
  if (!st.isDirectory()) throw new RocmflowError('E_BAD_IMAGE', `${path}: not a file or a directory`, { exitCode: 2 });
  if (existsSync(join(path, 'oci-layout')) && existsSync(join(path, 'index.json'))) return 'oci-layout';
  if (existsSync(join(path, 'manifest.json')) && !existsSync(join(path, 'usr'))) return 'docker-archive';
  return 'root';
}

/**
 * Unpack `image` into `<dest>/rootfs`, or, when it is a root directory
 * already, return it as is (`kind: 'root'`, empty config).
 */
export async function unpackImage(image: string, o: UnpackOptions): Promise<UnpackedImage> {
  let kind = await kindOf(image);
  if (kind === 'root') return { root: image, kind, config: { env: {}, labels: {}, entrypoint: [] }, digest: null, layers: 0 };
  await mkdir(o.dest, { recursive: true });
  if ((await readdir(o.dest)).length) throw new RocmflowError('E_DEST_NOT_EMPTY', `cannot unpack ${image}: ${o.dest} is not empty`);
  let dir = image;
  let budget = o.maxBytes ?? (await freeBytes(o.dest)) - (1 << 30);
  if (kind === 'archive') {
    dir = join(o.dest, 'image');
    o.onProgress?.(`read ${image}`, 0, (await stat(image)).size);
    const r = await extract({ archive: image, dest: dir, stripTopDir: false, signal: o.signal, maxBytes: Math.max(0, budget), onProgress: (d, t) => o.onProgress?.(`read ${image}`, d, t) });
    budget -= r.bytes;
    kind = existsSync(join(dir, 'index.json')) ? 'oci-archive' : existsSync(join(dir, 'manifest.json')) ? 'docker-archive' : 'root';
    if (kind === 'root') throw bad(image, 'neither an OCI archive (no index.json) nor a docker archive (no manifest.json)');
  }

  // the layers (path, media digest to check or null, diff_id) and the config
  let layers: { path: string; digest: string | null }[];
  let config: Record<string, unknown>;
  let digest: string;
  if (kind === 'docker-archive') {
    // read like every other JSON of an image: a regular file, size-capped, one error naming it when it does not parse
    const m = (await readJsonBlob(join(dir, 'manifest.json'), `${image} (manifest.json)`, undefined, { list: true }).catch((e: unknown) => {
      throw e instanceof RocmflowError ? e : bad(image, 'manifest.json is unreadable');
    })) as unknown;
    if (!Array.isArray(m) || m.length === 0) throw bad(image, 'manifest.json lists no image');
    const tagged = (x: unknown) => Array.isArray((x as { RepoTags?: unknown })?.RepoTags) && ((x as { RepoTags: unknown[] }).RepoTags).includes(o.ref!);
    const entry = (o.ref ? m.find(tagged) : m[0]) as { Config?: unknown; Layers?: unknown } | undefined;
    if (entry !== undefined && (typeof entry !== 'object' || entry === null)) throw bad(image, 'manifest.json: an image entry is not an object');
    if (!entry) throw bad(image, `manifest.json has no image tagged ${o.ref}`);
    const inside = (p: unknown, what: string) => {
      if (typeof p !== 'string' || p.startsWith('/') || p.split('/').includes('..')) throw bad(image, `${what} "${String(p)}" is not a path inside the archive`);
      return join(dir, p);
    };
    const configPath = inside(entry.Config, 'Config');
    config = await readJsonBlob(configPath, `${image} (config)`);
    digest = `sha256:${await sha256File(configPath)}`;
    if (!Array.isArray(entry.Layers)) throw bad(image, 'manifest.json: Layers is not a list');
    layers = entry.Layers.map((l, i) => ({ path: inside(l, `layer ${i + 1}`), digest: null }));
  } else {
    const index = await readJsonBlob(join(dir, 'index.json'), `${image} (index.json)`);
    const manifests = Array.isArray(index.manifests) ? (index.manifests as { digest?: unknown; annotations?: Record<string, string> }[]) : [];
    if (manifests.some((d) => typeof d !== 'object' || d === null)) throw bad(image, 'index.json: a manifest descriptor is not an object');
    const pick = o.ref ? manifests.filter((d) => d.annotations?.['org.opencontainers.image.ref.name'] === o.ref) : manifests;
    if (pick.length !== 1) throw bad(image, o.ref ? `holds ${pick.length} manifests named ${o.ref}` : `holds ${manifests.length} manifests: name one (ref)`);
    digest = String(pick[0]!.digest);
    const manifest = await readJsonBlob(blobPath(dir, pick[0]!.digest, `${image} (index.json)`), `${image} (manifest ${digest})`, digest);
    const cd = (manifest.config as { digest?: unknown } | undefined)?.digest;
    config = await readJsonBlob(blobPath(dir, cd, `${image} (manifest)`), `${image} (config)`, String(cd));
    if (!Array.isArray(manifest.layers)) throw bad(image, `manifest ${digest}: "layers" is not a list`);
    layers = (manifest.layers as { digest?: unknown }[]).map((l, i) => ({ path: blobPath(dir, l?.digest, `${image} (layer ${i + 1})`), digest: String(l.digest) }));
  }
  const diffIds = (config.rootfs as { diff_ids?: unknown } | undefined)?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.length !== layers.length) throw bad(image, `the config lists ${Array.isArray(diffIds) ? diffIds.length : 'no'} diff_ids for ${layers.length} layers`);

  const root = join(o.dest, 'rootfs');
  await mkdir(root, { mode: 0o755 });
  for (const [i, l] of layers.entries()) {
    const what = `${image} (layer ${i + 1} of ${layers.length})`;
    const st = await lstat(l.path).catch(() => null);
    if (!st?.isFile()) throw bad(what, 'its blob is missing or not a regular file');
    const staging = join(o.dest, `layer-${i + 1}`);
    const step = `layer ${i + 1}/${layers.length}`;
    const r = await extract({
      archive: l.path, dest: staging, stripTopDir: false, absoluteLinkRoots: ['/'], signal: o.signal, maxBytes: Math.max(0, budget),
      onProgress: (d, t) => o.onProgress?.(step, d, t),
    }).catch((e: unknown) => {
      throw e instanceof RocmflowError ? new RocmflowError(e.code, `${what}: ${e.message}`) : e;
    });
    budget -= r.bytes;
    if (l.digest && r.digests.compressed.digest !== l.digest) throw bad(what, `content is ${r.digests.compressed.digest}, the manifest says ${l.digest}`);
    if (r.digests.uncompressed.digest !== diffIds[i]) throw bad(what, `uncompressed content is ${r.digests.uncompressed.digest}, the config's diff_id is ${String(diffIds[i])}`);
    await applyLayer(staging, root, what);
    await rm(staging, { recursive: true, force: true });
  }
  if (dir !== image) await rm(dir, { recursive: true, force: true });
  return { root, kind, config: runtimeConfig(config, `${image} (config)`), digest, layers: layers.length };
}
