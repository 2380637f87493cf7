/**
 * The three images trim-runtime writes: the minimal runtime (one layer, the
 * trimmed root), the full one it is measured against (the base's library
 * directories, the GPU runtime tree, the llama.cpp install) and the base
 * image under it (the full image without llama.cpp: what a team keeps in its
 * registry as the "ROCm base image"). The full image shares the base's
 * layers, so a registry that has the base receives only llama.cpp for it.
 *
 * Every image has one name, used in both archives and by `rocmflow exec`
 * and `push`: `localhost/rocmflow/llama-<target>:<kind>` (`localhost/` is how
 * podman names an image loaded from an archive, and docker accepts it as
 * is, so both engines show the same name). The minimal and full images serve
 * the model mounted at /models: llama-server is the entrypoint and its
 * `LLAMA_ARG_*` environment variables give host, port and model, so any
 * argument given to `run` (or `-e LLAMA_ARG_MODEL=...`) overrides them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeOciImage, runtimeLabels, type OciImage, type OciLayerInput } from '../image/oci.js';
import { readManifest } from '../image/snapshot-manifest.js';
import { layerEntries } from '../image/layer.js';
import { LAYER_ZSTD_LEVEL } from '../image/compress.js';
import { layerKey, recallLayer, recordedDigests, rememberLayer, type LayerMemo } from '../image/layer-memo.js';
import type { TarEntry, TarSource } from '../image/tar-entries.js';
import type { Progress, ProgressHandle } from '../plugin/types.js';
import { defaultMtime } from '../image/tar-writer.js';
import { UPSTREAM_LLAMA_GIT } from '../llama/source.js';
import { LLAMA_MOUNT, MODELS_MOUNT, ROCM_MOUNT } from './runtime.js';
import type { WorkloadSpec } from '../llama/workload.js';
import type { NumericsSpec, NumericsThresholds, ThresholdGroup } from '../llama/numerics.js';

/** The images of a target. */
export type ImageKind = 'minimal' | 'full' | 'base';
export const IMAGE_KINDS: readonly ImageKind[] = ['minimal', 'full', 'base'];

/** The repository every image of `target` is in. */
export function imageRepository(target: string): string {
  return `localhost/rocmflow/llama-${target}`;
}

/** The name a user types into `podman run`. */
export function imageName(target: string, kind: ImageKind): string {
  return `${imageRepository(target)}:${kind}`;
}

/** Where an image comes from: its `org.opencontainers.image.*` annotations and creation time. */
export interface ImageProvenance {
  /** The llama.cpp commit (`revision`). */
  revision: string | null;
  /** Where that commit can be fetched (`source`); null for a local tree or bundle. */
  source: string | null;
  /** `version`: llama.cpp's release (`git describe`), plus the GPU runtime's version where there is one. */
  version: string;
  /** Seconds since the epoch: SOURCE_DATE_EPOCH, else the llama.cpp commit's time, else 0. */
  created: number;
}

/** What provenance is read from: build-llama's build-info.json and fetch-rocm's fetch.json. */
export interface ProvenanceInputs {
  build: { commit: string | null; commitTime?: number | null; describe: string; source: unknown };
  /** fetch.json (`version` of the GPU runtime, if any). */
  runtime?: { version?: string | null } | null;
  /** The target's family: `rocm`, `cuda`, `cpu`. */
  family: string;
  env?: NodeJS.ProcessEnv;
}

const TAG_UNSAFE = /[^A-Za-z0-9_.-]+/g;

export function imageProvenance(i: ProvenanceInputs): ImageProvenance {
  const src = (i.build.source ?? {}) as { kind?: string; url?: string };
  const source = src.kind === 'git' && typeof src.url === 'string' && /^(https?|git|ssh):\/\//.test(src.url) ? src.url
    // node-llama-cpp's bundle is upstream llama.cpp at a release
    : src.kind === 'npm' ? UPSTREAM_LLAMA_GIT
    : null;
  const llama = i.build.describe && i.build.describe !== 'local tree' ? i.build.describe : (i.build.commit?.slice(0, 12) ?? 'local');
  const rt = i.family !== 'cpu' && i.runtime?.version ? `-${i.family}${i.runtime.version}` : '';
  const version = `${llama}${rt}`.replace(TAG_UNSAFE, '_').slice(0, 100);
  const env = i.env ?? process.env;
  const created = env.SOURCE_DATE_EPOCH ? defaultMtime(env) : (i.build.commitTime ?? 0);
  return { revision: i.build.commit, source, version, created };
}

export interface RuntimeImagesOptions {
  /** The trimmed root directory. */
  rootfs: string;
  /** The full runtime's entries (archive paths). */
  full: TarSource[];
  /** snapshot-rocm's archive, reused as the full image's ROCm layer when its paths are already under opt/rocm/. */
  rocmSnapshot?: string;
  /**
   * Is `path` the content store's blob of this digest (see
   * RunContext.isStoredBlob)? Then the snapshot's recorded digest is taken
   * without reading the archive.
   */
  isStoredBlob?(path: string, digest: string): boolean;
  /**
   * Layers of the full image made before, found again by their files'
   * stat (image/layer-memo.ts): the host's system libraries are then the
   * stored blob of the last run, not compressed anew.
   */
  layerMemo?: LayerMemo;
  /** Where `minimal.oci.tar`, `minimal.docker.tar` and the layouts `full.oci/` and `base.oci/` go. */
  outDir: string;
  target: string;
  /** Runtime environment of the target (device pinning etc.). */
  env: Record<string, string>;
  devices: string[];
  provenance: ImageProvenance;
  /** rocmflow's version (a label). */
  rocmflowVersion: string;
  /**
   * What the images were verified with (the workload, its texts, the numeric
   * check's settings): the `org.rocmflow.workload` label of the minimal and
   * full images, which `rocmflow verify` reruns on the target machine.
   */
  workload?: ImageWorkload;
  signal?: AbortSignal;
  /** Progress per image and step (`minimal image: layer 1/1`), in content bytes. */
  progress?: Progress;
}

/** A written image and its name. */
export interface NamedImage extends OciImage {
  name: string;
}

export interface RuntimeImages {
  minimal: NamedImage;
  /** An OCI image layout directory (`full.oci/`), its blobs hard links where they can be. */
  full: NamedImage;
  /** An OCI image layout directory (`base.oci/`), its blobs hard links to the full image's. */
  base: NamedImage;
  /** True when the snapshot archive became the ROCm layer as is. */
  reusedSnapshot: boolean;
  /** How many of the full image's other layers were stored blobs of earlier runs (layerMemo). */
  reusedLayers: number;
  /**
   * Milliseconds per image (each includes its layers and archives), for the
   * report. The minimal image is written while the full and base images are,
   * so its time overlaps theirs.
   */
  timings: Record<ImageKind, number>;
}

/** The label that carries the verification workload. */
export const WORKLOAD_LABEL = 'org.rocmflow.workload';

/** The workload label's content: what `rocmflow verify` needs to rerun the check elsewhere. */
export interface ImageWorkload {
  target: string;
  spec: WorkloadSpec;
  /** `llama-completion` or `llama-cli`. */
  cli: string;
  /** Texts of the traced run on the build machine, by request name and `cli`. */
  texts: Record<string, string>;
  /** Traced with the GPU (false for the cpu target and --no-device runs). */
  gpu: boolean;
  noDevice: boolean;
  /** The model the texts came from (mounted at /models/model.gguf, not in the image). */
  model: { sha256: string; size: number };
  /** In-root paths a container runtime provides from the host (the GPU driver's libraries). */
  hostProvided: string[];
  /** The target's environment as traced (the images' config carries it too; a root given as a directory has only this). */
  env?: Record<string, string>;
  /** The numeric check's evaluation and limits; null when disabled. */
  numerics: { spec: NumericsSpec; textSha256: string; weightType: string | null; group: ThresholdGroup; thresholds: NumericsThresholds } | null;
}

const SERVER = `${LLAMA_MOUNT}/bin/llama-server`;
/** llama-server reads these when the flag is not given: the image serves /models/model.gguf on 0.0.0.0:8080 unless told otherwise. */
export const SERVE_ENV: Readonly<Record<string, string>> = {
  LLAMA_ARG_HOST: '0.0.0.0',
  LLAMA_ARG_PORT: '8080',
  LLAMA_ARG_MODEL: `${MODELS_MOUNT}/model.gguf`,
};
const PATH = `${LLAMA_MOUNT}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;

/**
 * An entry's mode in the images. The cache takes the write bits off what it
 * restores, so one build, fresh or restored, differs only in them: the
 * images ignore them, and give the owner write permission everywhere and
 * everyone write permission on sticky directories (/tmp), so the same
 * inputs make the same image either way.
 */
export function imageMode(e: TarEntry): TarEntry {
  if (e.type === 'symlink') return e;
  const sticky = e.type === 'dir' && (e.mode & 0o1000) !== 0;
  return { ...e, mode: (e.mode & ~0o222) | (sticky ? 0o222 : 0o200) };
}

/** How the full image's file-made layers are compressed: part of their memo key, so set here once. */
const MEMO_COMPRESSION = { compression: 'zstd', level: LAYER_ZSTD_LEVEL } as const;

const normalized = async (from: string | readonly TarSource[]) => ({ entries: (await layerEntries(from)).map(imageMode) });

/**
 * A snapshot is this image's GPU runtime layer as is when it unpacks under
 * opt/rocm/ (snapshot-rocm writes it so). Its manifest's record of both
 * digests, from the pass that wrote it, comes along when well-formed (the
 * manifest may come from a shared cache).
 */
async function usableSnapshot(
  archive: string | undefined, isStoredBlob?: (path: string, digest: string) => boolean,
): Promise<{ recorded?: { digest: string; diffId: string; uncompressedSize: number; stored?: boolean } } | null> {
  if (!archive || !existsSync(archive)) return null;
  const m = await readManifest(archive.replace(/\.tar\.zst$/, '.manifest.json')).catch(() => null);
  const rocm = ROCM_MOUNT.slice(1);
  if (!m || m.files.length === 0 || !m.files.every((f) => rocm === f.path || rocm.startsWith(`${f.path}/`) || f.path.startsWith(`${rocm}/`))) return null;
  const r = recordedDigests(m.layer);
  return r ? { recorded: { ...r, stored: isStoredBlob?.(archive, r.digest) ?? false } } : {};
}

export async function writeRuntimeImages(o: RuntimeImagesOptions): Promise<RuntimeImages> {
  const p = o.provenance;
  const stamp = new Date(p.created * 1000).toISOString().replace('.000Z', 'Z');
  const describe = (kind: ImageKind) => {
    const name = imageName(o.target, kind);
    const annotations: Record<string, string> = {
      'org.opencontainers.image.title': name,
      'org.opencontainers.image.description': kind === 'base'
        ? `the ${o.target} runtime without llama.cpp (rocmflow)`
        : `llama.cpp ${kind === 'minimal' ? 'runtime trimmed to what a traced inference needs' : 'runtime, untrimmed'} for ${o.target} (rocmflow)`,
      'org.opencontainers.image.version': p.version,
      'org.opencontainers.image.created': stamp,
      ...(p.revision ? { 'org.opencontainers.image.revision': p.revision } : {}),
      ...(p.source ? { 'org.opencontainers.image.source': p.source } : {}),
      'org.rocmflow.target': o.target,
      'org.rocmflow.image': kind,
      'org.rocmflow.version': o.rocmflowVersion,
    };
    const labels: Record<string, string> = { ...runtimeLabels({ devices: o.devices, env: o.env }), ...annotations };
    if (o.workload && kind !== 'base') labels[WORKLOAD_LABEL] = JSON.stringify(o.workload);
    const env = { ...o.env, PATH: o.env.PATH ? `${LLAMA_MOUNT}/bin:${o.env.PATH}` : PATH };
    const config = kind === 'base'
      ? { env: o.env, labels }
      : { entrypoint: [SERVER], env: { ...env, ...SERVE_ENV }, exposedPorts: ['8080/tcp'], labels };
    return { name, annotations, config, ref: name, created: p.created, signal: o.signal };
  };
  // one bar per image: the minimal image is written while the full and base images are
  const bars = new Map<ImageKind, { label: string; handle: ProgressHandle } | null>();
  const progress = (image: ImageKind) => (step: string, done?: number, total?: number) => {
    const label = `${image} image: ${step}`;
    let bar = bars.get(image) ?? null;
    if (bar?.label !== label) {
      bar?.handle.done();
      bar = o.progress ? { label, handle: o.progress.start(label, { unit: 'bytes', total }) } : null;
      bars.set(image, bar);
    }
    if (done !== undefined) bar?.handle.update(done, total);
  };
  const endBar = (image: ImageKind) => {
    bars.get(image)?.handle.done();
    bars.set(image, null);
  };
  const timings = {} as Record<ImageKind, number>;
  const timed = async <T>(kind: ImageKind, work: () => Promise<T>): Promise<T> => {
    const since = performance.now();
    try {
      return await work();
    } finally {
      timings[kind] = Math.round(performance.now() - since);
      endBar(kind);
    }
  };

  const writeMinimal = () => timed('minimal', async () => writeOciImage({
    ...describe('minimal'),
    layers: [{ from: await normalized(o.rootfs), comment: `rocmflow trim-runtime (${o.target}, trimmed root)` }],
    ociArchive: join(o.outDir, 'minimal.oci.tar'),
    dockerArchive: join(o.outDir, 'minimal.docker.tar'),
    repoTag: imageName(o.target, 'minimal'),
    onProgress: progress('minimal'),
  }));

  const snapshot = await usableSnapshot(o.rocmSnapshot, o.isStoredBlob);
  const reusedSnapshot = !!snapshot;
  const under = (mount: string) => (e: TarSource) => e.path === mount.slice(1) || e.path.startsWith(`${mount.slice(1)}/`);
  const rocm = o.full.filter(under(ROCM_MOUNT));
  const llama = o.full.filter(under(LLAMA_MOUNT));
  const system = o.full.filter((e) => !rocm.includes(e) && !llama.includes(e));
  // The full and base images are layout directories, not archives: the GPU runtime's layer is the
  // snapshot itself, hard-linked in, and the base links the full image's lower layers. An archive
  // would copy gigabytes the cache already holds, every run.
  // a layer made from files is looked up first: unchanged files give the last run's stored blob
  let reusedLayers = 0;
  const remember: { at: number; key: string }[] = [];
  const memoized = async (from: readonly TarSource[], comment: string, at: number): Promise<OciLayerInput> => {
    const { entries } = await normalized(from);
    const memo = o.layerMemo;
    const key = memo ? layerKey(entries, { ...MEMO_COMPRESSION, mtime: p.created, version: memo.version }) : null;
    const hit = key ? recallLayer(memo!, key) : null;
    if (hit) {
      reusedLayers++;
      return { blob: hit.blob, recorded: hit.recorded, comment };
    }
    if (key) remember.push({ at, key });
    return { from: { entries }, ...MEMO_COMPRESSION, comment };
  };
  const writeFullAndBase = async () => {
    const lower: OciLayerInput[] = [];
    if (system.length) lower.push(await memoized(system, 'host system library directories', lower.length));
    if (snapshot) lower.push({ blob: o.rocmSnapshot!, recorded: snapshot.recorded, comment: 'rocmflow snapshot-rocm' });
    else if (rocm.length) lower.push(await memoized(rocm, 'GPU runtime tree', lower.length));
    const full = await timed('full', async () => writeOciImage({
      ...describe('full'),
      layers: [...lower, await memoized(llama, 'llama.cpp install', lower.length)],
      ociDir: join(o.outDir, 'full.oci'),
      onProgress: progress('full'),
    }));
    for (const { at, key } of remember) rememberLayer(o.layerMemo!, key, full.layers[at]!);
    const shared = full.layers.slice(0, lower.length);
    const base = await timed('base', () => writeOciImage({
      ...describe('base'),
      // an image needs a layer: a target with neither system libraries nor a GPU runtime gets an empty one
      layers: shared.length ? shared.map((layer, i) => ({ layer, comment: lower[i]!.comment })) : [{ from: [], comment: 'empty' }],
      ociDir: join(o.outDir, 'base.oci'),
      onProgress: progress('base'),
    }));
    return { full, base };
  };
  // the two are independent: the minimal image's compression overlaps the full image's.
  // Both settle before a failure is reported, so nothing is left writing into outDir.
  const [m, fb] = await Promise.allSettled([writeMinimal(), writeFullAndBase()]);
  if (m.status === 'rejected') throw m.reason;
  if (fb.status === 'rejected') throw fb.reason;
  const { full, base } = fb.value;
  const minimal = m.value;
  return {
    minimal: { ...minimal, name: imageName(o.target, 'minimal') },
    full: { ...full, name: imageName(o.target, 'full') },
    base: { ...base, name: imageName(o.target, 'base') },
    reusedSnapshot,
    reusedLayers,
    timings: Object.fromEntries(IMAGE_KINDS.map((k) => [k, timings[k]])) as Record<ImageKind, number>,
  };
}
