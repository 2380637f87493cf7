import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { RocmflowError } from '../errors.js';
import { createCompressor, openDecompressed } from './compress.js';
import { digestHex, sha256Of } from './digest-stream.js';
import type { LayerInfo } from './layer.js';
import { planEntries } from './tar-entries.js';
import { writeTar } from './tar-writer.js';

export interface DockerArchiveOptions {
  out: string;
  /** The image config, byte for byte as in the OCI layout (its digest is the image id). */
  configBytes: Buffer;
  layers: readonly LayerInfo[];
  /** e.g. `rocmflow/minimal:latest` */
  repoTag: string;
  /** `docker load` reads gzip or plain layer tars, not zstd: zstd layers are converted. */
  compression: 'gzip' | 'none';
  mtime: number;
  signal?: AbortSignal;
}

const REPO_TAG_RE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?$/;

/** Refuse a `RepoTags` entry docker would reject, before any work is done. */
export function checkRepoTag(tag: string): void {
  if (!REPO_TAG_RE.test(tag))
    throw new RocmflowError('E_BAD_REF', `docker tag ${JSON.stringify(tag)} is not valid (lowercase name[:tag], e.g. rocmflow/minimal:latest)`, { exitCode: 2 });
}

/**
 * A docker-archive (what `docker save` writes and `docker load` /
 * `podman load` read): `manifest.json`, `<config digest>.json` and one tar
 * per layer, named by diff_id.
 */
export async function writeDockerArchive(opts: DockerArchiveOptions): Promise<void> {
  checkRepoTag(opts.repoTag);
  const staging = `${opts.out}.staging-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  try {
    const configName = `${digestHex(sha256Of(opts.configBytes))}.json`;
    await writeFile(join(staging, configName), opts.configBytes);
    const sources = [{ path: configName, source: join(staging, configName) }];
    const names: string[] = [];
    for (const l of opts.layers) {
      const name = `${digestHex(l.diffId)}.tar${opts.compression === 'gzip' ? '.gz' : ''}`;
      names.push(name);
      if (sources.some((s) => s.path === name)) continue;
      sources.push({ path: name, source: l.compression === opts.compression ? l.path : await convert(l, join(staging, name), opts) });
    }
    const manifest = [{ Config: configName, RepoTags: [opts.repoTag], Layers: names }];
    await writeFile(join(staging, 'manifest.json'), JSON.stringify(manifest));
    sources.push({ path: 'manifest.json', source: join(staging, 'manifest.json') });
    const entries = (await planEntries(sources)).map((e) => ({ ...e, mode: e.type === 'dir' ? 0o755 : 0o644 }));
    const tmp = `${opts.out}.tmp-${process.pid}`;
    const file = createWriteStream(tmp);
    try {
      await writeTar(entries, file, { mtime: opts.mtime, signal: opts.signal });
      file.end();
      await finished(file);
      await rename(tmp, opts.out);
    } catch (e) {
      file.destroy();
      await rm(tmp, { force: true });
      throw e;
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Re-encode a layer (zstd → gzip or plain), checking its diff_id on the way. */
async function convert(l: LayerInfo, out: string, opts: DockerArchiveOptions): Promise<string> {
  const src = await openDecompressed(l.path, opts.signal);
  const file = createWriteStream(out);
  const c = createCompressor(file, { format: opts.compression, level: 6, signal: opts.signal });
  src.stream.pipe(c.input);
  const [r] = await Promise.all([c.done, src.done]);
  if (r.uncompressed.digest !== l.diffId) throw new RocmflowError('E_LAYER_MISMATCH', `layer ${l.path}: tar digest ${r.uncompressed.digest} is not its diff_id ${l.diffId}`);
  return out;
}
