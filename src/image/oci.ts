import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, copyFile, link, mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { RocmflowError } from '../errors.js';
import { detectCompression, openDecompressed, type Compression } from './compress.js';
import { digestHex, isOciDigest, sha256Of } from './digest-stream.js';
import { checkRepoTag, writeDockerArchive } from './docker-archive.js';
import { LAYER_MEDIA_TYPES, writeLayer, type LayerInfo } from './layer.js';
import { collectTree, type TarEntry, type TarSource } from './tar-entries.js';
import { defaultMtime, writeTar } from './tar-writer.js';

/** A layer of an image: an existing blob (e.g. a snapshot), or a tree to tar and compress now. */
export type OciLayerInput = (
  | {
      /** A compressed (or plain) layer tar already written. */
      blob: string;
      /** sha256 of the uncompressed tar; computed by decompressing when absent. */
      diffId?: string;
      /**
       * What the blob's writer recorded in the same pass (a snapshot's
       * manifest): when the blob hashes to `digest`, its diff_id is taken
       * from here instead of decompressing the whole blob again. A wrong
       * record can only give an image that runtimes refuse (they check every
       * layer against its diff_id), never other content.
       */
      recorded?: {
        digest: string; diffId: string; uncompressedSize: number;
        /**
         * The blob is the content store's own blob of `digest` (same inode,
         * unmodified: RunContext.isStoredBlob), so `digest` is its hash and
         * it is not read at all.
         */
        stored?: boolean;
      };
    }
  | {
      /** A directory, an explicit source list, or entries already resolved, to tar now. */
      from: string | readonly TarSource[] | { entries: readonly TarEntry[] };
      /** @default the image's `compression` */
      compression?: Compression;
      level?: number;
    }
  | {
      /** A layer an earlier image of this process wrote (its blob still on disk): linked in, digests taken as they are. */
      layer: LayerInfo;
    }
) & {
  /** `created_by` in the image history, e.g. "rocmflow snapshot-rocm". */
  comment?: string;
};

/** The runtime part of the image config (OCI `config`). */
export interface OciRuntimeConfig {
  entrypoint?: string[];
  cmd?: string[];
  /** Environment, `{ NAME: value }` or `["NAME=value"]`. */
  env?: Record<string, string> | string[];
  workingDir?: string;
  user?: string;
  /** e.g. `["8080/tcp"]` */
  exposedPorts?: string[];
  labels?: Record<string, string>;
}

export interface OciImageOptions {
  layers: readonly OciLayerInput[];
  config?: OciRuntimeConfig;
  /** @default "amd64" */
  architecture?: string;
  /** @default "linux" */
  os?: string;
  /** Image creation time, seconds since the epoch. @default SOURCE_DATE_EPOCH, else 0 */
  created?: number;
  /**
   * The image's name, recorded as `org.opencontainers.image.ref.name` in the
   * layout's index (`oci-archive:x.tar:<ref>`): a tag (`latest`) or a whole
   * reference (`localhost/rocmflow/llama-cpu:minimal`), which `podman load`
   * takes as the image's name. @default "latest"
   */
  ref?: string;
  /** Manifest annotations (`org.opencontainers.image.*`), also on the index entry. */
  annotations?: Record<string, string>;
  /** Write the OCI image layout here (`oci-layout`, `index.json`, `blobs/sha256/`). */
  ociDir?: string;
  /** Also write the layout as one tar (skopeo/podman `oci-archive:`). */
  ociArchive?: string;
  /** Also write a `docker load`-able archive. */
  dockerArchive?: string;
  /** Layers in the docker archive: gzip or plain tar (`docker load` takes no zstd). @default "gzip" */
  dockerCompression?: 'gzip' | 'none';
  /** `RepoTags` of the docker archive. @default `rocmflow:<ref>` */
  repoTag?: string;
  /** Compression of layers built from trees. @default "zstd" */
  compression?: Compression;
  level?: number;
  signal?: AbortSignal;
  /** What is being written (`layer 1/2`, `oci-archive`, `docker-archive`), with content bytes done and the total where known. */
  onProgress?(step: string, done?: number, total?: number): void;
}

export interface OciImage {
  manifestDigest: string;
  configDigest: string;
  /** Docker's image id (the config digest). */
  imageId: string;
  layers: LayerInfo[];
  ref: string;
  ociDir?: string;
  ociArchive?: string;
  dockerArchive?: string;
  /** Sums over the layers. */
  uncompressedSize: number;
  compressedSize: number;
}

export const MEDIA_TYPES = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
} as const;

/** A tag, or a reference in the characters the image spec allows for `ref.name`. */
const REF_RE = /^[A-Za-z0-9_](?:[A-Za-z0-9._:@/+-]{0,254})$/;

/**
 * Write an OCI image (directory layout, and optionally an oci-archive tar and
 * a docker-archive) from layers. Same inputs and `created` → same digests.
 */
export async function writeOciImage(opts: OciImageOptions): Promise<OciImage> {
  const ref = opts.ref ?? 'latest';
  if (!REF_RE.test(ref)) throw new RocmflowError('E_BAD_REF', `image ref ${JSON.stringify(ref)} is not a valid tag or reference (letters, digits and . _ - : @ / +)`, { exitCode: 2 });
  const repoTag = opts.repoTag ?? `rocmflow:${ref}`;
  if (opts.dockerArchive) checkRepoTag(repoTag);
  if (!opts.layers.length) throw new RocmflowError('E_NO_LAYERS', 'an image needs at least one layer', { exitCode: 2 });
  const created = opts.created ?? defaultMtime();
  const scratch = opts.ociDir ? null : await mkdtemp(join(tmpdir(), 'rocmflow-oci-'));
  const dir = opts.ociDir ?? scratch!;
  const blobs = join(dir, 'blobs', 'sha256');
  try {
    if (opts.ociDir) await clearLayoutDir(opts.ociDir);
    await mkdir(blobs, { recursive: true });
    const layers: LayerInfo[] = [];
    for (const [i, l] of opts.layers.entries()) {
      opts.onProgress?.(`layer ${i + 1}/${opts.layers.length}`, 0);
      layers.push('blob' in l ? await addBlob(blobs, l.blob, l.diffId, opts.signal, l.recorded) : 'layer' in l ? await linkLayer(blobs, l.layer) : await buildLayer(blobs, l, opts, created, i));
    }
    const stamp = new Date(created * 1000).toISOString().replace('.000Z', 'Z');
    const config = imageConfig(opts, layers, stamp);
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDigest = await putBlob(blobs, configBytes);
    const manifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.manifest,
      config: { mediaType: MEDIA_TYPES.config, digest: configDigest, size: configBytes.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
      ...(opts.annotations && Object.keys(opts.annotations).length ? { annotations: opts.annotations } : {}),
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const manifestDigest = await putBlob(blobs, manifestBytes);
    const index = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.index,
      manifests: [
        {
          mediaType: MEDIA_TYPES.manifest,
          digest: manifestDigest,
          size: manifestBytes.length,
          platform: { architecture: config.architecture, os: config.os },
          annotations: { ...opts.annotations, 'org.opencontainers.image.ref.name': ref },
        },
      ],
    };
    await writeFile(join(dir, 'index.json'), JSON.stringify(index));
    await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const result: OciImage = {
      manifestDigest, configDigest, imageId: configDigest, layers, ref,
      ociDir: opts.ociDir,
      uncompressedSize: layers.reduce((n, l) => n + l.uncompressedSize, 0),
      compressedSize: layers.reduce((n, l) => n + l.size, 0),
    };
    if (opts.ociArchive) {
      opts.onProgress?.('oci-archive', 0);
      await writeTarFile(dir, opts.ociArchive, created, opts.signal, (done, total) => opts.onProgress?.('oci-archive', done, total));
      result.ociArchive = opts.ociArchive;
    }
    if (opts.dockerArchive) {
      opts.onProgress?.('docker-archive', 0);
      await writeDockerArchive({
        out: opts.dockerArchive,
        configBytes,
        layers,
        repoTag,
        compression: opts.dockerCompression ?? 'gzip',
        mtime: created,
        signal: opts.signal,
      });
      result.dockerArchive = opts.dockerArchive;
    }
    return result;
  } catch (e) {
    // a half-written layout is worse than none: it would pass for an image
    if (opts.ociDir && !(e instanceof RocmflowError && e.code === 'E_DEST_NOT_EMPTY')) await rm(opts.ociDir, { recursive: true, force: true });
    throw e;
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

/** Labels that tell a runner what the image needs from the host. */
export function runtimeLabels(opts: { devices?: readonly string[]; env?: Record<string, string>; title?: string; version?: string; description?: string }): Record<string, string> {
  const labels: Record<string, string> = {};
  if (opts.devices?.length) labels['org.rocmflow.devices'] = opts.devices.join(',');
  if (opts.env && Object.keys(opts.env).length) labels['org.rocmflow.env'] = Object.entries(opts.env).map(([k, v]) => `${k}=${v}`).join(',');
  if (opts.title) labels['org.opencontainers.image.title'] = opts.title;
  if (opts.version) labels['org.opencontainers.image.version'] = opts.version;
  if (opts.description) labels['org.opencontainers.image.description'] = opts.description;
  return labels;
}

function imageConfig(opts: OciImageOptions, layers: readonly LayerInfo[], created: string) {
  const c = opts.config ?? {};
  const env = Array.isArray(c.env) ? [...c.env] : Object.entries(c.env ?? {}).map(([k, v]) => `${k}=${v}`);
  const runtime: Record<string, unknown> = {};
  if (c.user) runtime.User = c.user;
  if (c.exposedPorts?.length) runtime.ExposedPorts = Object.fromEntries(c.exposedPorts.map((p) => [p, {}]));
  if (env.length) runtime.Env = env;
  if (c.entrypoint) runtime.Entrypoint = c.entrypoint;
  if (c.cmd) runtime.Cmd = c.cmd;
  if (c.workingDir) runtime.WorkingDir = c.workingDir;
  if (c.labels && Object.keys(c.labels).length) runtime.Labels = c.labels;
  return {
    created,
    architecture: opts.architecture ?? 'amd64',
    os: opts.os ?? 'linux',
    config: runtime,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: opts.layers.map((l) => ({ created, created_by: l.comment ?? 'rocmflow' })),
  };
}

async function putBlob(blobs: string, bytes: Buffer): Promise<string> {
  const digest = sha256Of(bytes);
  await writeFile(join(blobs, digestHex(digest)), bytes, { mode: 0o644 });
  return digest;
}

async function buildLayer(blobs: string, l: Extract<OciLayerInput, { from: unknown }>, opts: OciImageOptions, mtime: number, i: number): Promise<LayerInfo> {
  const tmp = join(blobs, `.layer-${i}`);
  const info = await writeLayer({
    from: l.from, out: tmp, compression: l.compression ?? opts.compression ?? 'zstd', level: l.level ?? opts.level, mtime, signal: opts.signal,
    onProgress: (done, total) => opts.onProgress?.(`layer ${i + 1}/${opts.layers.length}`, done, total),
  });
  const path = join(blobs, digestHex(info.digest));
  await rename(tmp, path);
  await chmod(path, 0o644);
  const { entries: _entries, ...layer } = info;
  return { ...layer, path };
}

/** A blob this process wrote for another image: hard-linked (copied across filesystems), not hashed again. */
async function linkLayer(blobs: string, layer: LayerInfo): Promise<LayerInfo> {
  const path = join(blobs, digestHex(layer.digest));
  await link(layer.path, path).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code === 'EEXIST') return;
    if (e.code === 'ENOENT') throw new RocmflowError('E_NOT_FOUND', `layer blob ${layer.path} is gone`);
    await copyFile(layer.path, path);
  });
  return { ...layer, path };
}

/** Put an existing blob in the layout (hardlinked when possible) and hash it to get its digest, unless it is a stored blob of a known one. */
async function addBlob(
  blobs: string, blob: string, diffId: string | undefined, signal?: AbortSignal,
  recorded?: { digest: string; diffId: string; uncompressedSize: number; stored?: boolean },
): Promise<LayerInfo> {
  const compression = await detectCompression(blob).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new RocmflowError('E_NOT_FOUND', `layer blob ${blob} not found`, { exitCode: 2 });
    throw e;
  });
  const tmp = join(blobs, `.incoming-${process.pid}`);
  await link(blob, tmp).catch(() => copyFile(blob, tmp));
  const { digest, size } = recorded?.stored && isOciDigest(recorded.digest) ? { digest: recorded.digest, size: (await stat(tmp)).size } : await hashFile(tmp, signal);
  let uncompressedSize = size;
  if (compression === 'none') {
    if (diffId && diffId !== digest) throw new RocmflowError('E_LAYER_MISMATCH', `layer ${blob}: its digest is ${digest}, not the diff_id given (${diffId})`);
    diffId = digest;
  } else if (recorded && recorded.digest === digest && (!diffId || diffId === recorded.diffId)) {
    diffId = recorded.diffId;
    uncompressedSize = recorded.uncompressedSize;
  } else {
    // a compressed blob's diff_id is checked, not trusted: a wrong one makes every runtime refuse the image
    const u = await openDecompressed(tmp, signal);
    u.stream.resume();
    const r = await u.done;
    if (diffId && diffId !== r.uncompressed.digest) throw new RocmflowError('E_LAYER_MISMATCH', `layer ${blob}: its tar digest is ${r.uncompressed.digest}, not the diff_id given (${diffId})`);
    diffId = r.uncompressed.digest;
    uncompressedSize = r.uncompressed.size;
  }
  const path = join(blobs, digestHex(digest));
  await rename(tmp, path);
  return { path, mediaType: LAYER_MEDIA_TYPES[compression], compression, digest, size, diffId, uncompressedSize };
}

/** Replace an earlier image layout, but never wipe a directory that holds something else. */
async function clearLayoutDir(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  if (!names.length) return;
  if (!names.includes('oci-layout'))
    throw new RocmflowError('E_DEST_NOT_EMPTY', `${dir} is not empty and not an OCI image layout; choose a new directory`, { exitCode: 2 });
  await rm(dir, { recursive: true, force: true });
}

async function hashFile(path: string, signal?: AbortSignal): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, signal }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** A directory as a deterministic plain tar, with normalised modes (the layout's own modes depend on umask). */
export async function writeTarFile(dir: string, out: string, mtime: number, signal?: AbortSignal, onProgress?: (done: number, total: number) => void): Promise<void> {
  const entries = (await collectTree(dir)).map((e) => ({ ...e, mode: e.type === 'dir' ? 0o755 : 0o644 }));
  const total = entries.reduce((n, e) => n + e.size, 0);
  const tmp = `${out}.tmp-${process.pid}`;
  const file = createWriteStream(tmp);
  try {
    await writeTar(entries, file, { mtime, signal, onProgress: onProgress && ((done) => onProgress(done, total)) });
    file.end();
    await finished(file);
    await rename(tmp, out);
  } catch (e) {
    file.destroy();
    await rm(tmp, { force: true });
    throw e;
  }
}
