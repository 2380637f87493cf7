/**
 * The two images trim-runtime writes: the minimal runtime (one layer, the
 * trimmed root) and the full one it is measured against (the GPU runtime,
 * the llama.cpp install and the base's library directories; see
 * src/runtime/pipeline-report.ts). Both run llama-server as entrypoint and
 * carry the devices and environment they need as labels.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeOciImage, runtimeLabels, type OciImage, type OciLayerInput } from '../image/oci.js';
import { readManifest } from '../image/snapshot-manifest.js';
import type { TarSource } from '../image/tar-entries.js';

export interface RuntimeImagesOptions {
  /** The trimmed root directory. */
  rootfs: string;
  /** The full runtime's entries (archive paths). */
  full: TarSource[];
  /** snapshot-rocm's archive, reused as the full image's ROCm layer when its paths are already under opt/rocm/. */
  rocmSnapshot?: string;
  /** Where `minimal.oci.tar`, `minimal.docker.tar` and `full.oci.tar` go. */
  outDir: string;
  target: string;
  /** Runtime environment of the target (device pinning etc.). */
  env: Record<string, string>;
  devices: string[];
  version: string;
  signal?: AbortSignal;
  onProgress?(message: string): void;
}

export interface RuntimeImages {
  minimal: OciImage;
  full: OciImage;
  /** True when the snapshot archive became the ROCm layer as is. */
  reusedSnapshot: boolean;
}

const ENTRYPOINT = ['/opt/llama/bin/llama-server'];
const CMD = ['--host', '0.0.0.0', '--port', '8080'];

/** A snapshot can be a layer of this image only if it unpacks under opt/rocm/ (its own paths are relative to the tree). */
async function snapshotUsable(archive: string | undefined): Promise<boolean> {
  if (!archive || !existsSync(archive)) return false;
  const m = await readManifest(archive.replace(/\.tar\.zst$/, '.manifest.json')).catch(() => null);
  return !!m && m.files.length > 0 && m.files.every((f) => f.path === 'opt' || f.path.startsWith('opt/'));
}

export async function writeRuntimeImages(o: RuntimeImagesOptions): Promise<RuntimeImages> {
  const config = (title: string) => ({
    entrypoint: ENTRYPOINT,
    cmd: CMD,
    env: o.env,
    exposedPorts: ['8080/tcp'],
    labels: runtimeLabels({ devices: o.devices, env: o.env, title, version: o.version, description: `llama.cpp runtime for ${o.target} (rocmflow)` }),
  });
  o.onProgress?.('minimal image');
  const minimal = await writeOciImage({
    layers: [{ from: o.rootfs, comment: `rocmflow trim-runtime (${o.target}, trimmed root)` }],
    config: config(`rocmflow-${o.target}-minimal`),
    ref: `${o.target}-minimal`,
    ociArchive: join(o.outDir, 'minimal.oci.tar'),
    dockerArchive: join(o.outDir, 'minimal.docker.tar'),
    repoTag: `rocmflow/llama-${o.target}:minimal`,
    signal: o.signal,
  });

  o.onProgress?.('full image');
  const reusedSnapshot = await snapshotUsable(o.rocmSnapshot);
  const rocm = o.full.filter((e) => e.path === 'opt/rocm' || e.path.startsWith('opt/rocm/'));
  const llama = o.full.filter((e) => e.path === 'opt/llama' || e.path.startsWith('opt/llama/'));
  const system = o.full.filter((e) => !rocm.includes(e) && !llama.includes(e));
  const layers: OciLayerInput[] = [];
  if (system.length) layers.push({ from: system, comment: 'host system library directories' });
  if (reusedSnapshot) layers.push({ blob: o.rocmSnapshot!, comment: 'rocmflow snapshot-rocm' });
  else if (rocm.length) layers.push({ from: rocm, comment: 'GPU runtime tree' });
  layers.push({ from: llama, comment: 'llama.cpp install' });
  const full = await writeOciImage({
    layers,
    config: config(`rocmflow-${o.target}-full`),
    ref: `${o.target}-full`,
    ociArchive: join(o.outDir, 'full.oci.tar'),
    signal: o.signal,
  });
  return { minimal, full, reusedSnapshot };
}
