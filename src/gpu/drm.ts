/**
 * AMD GPU memory counters from DRM sysfs: `/sys/class/drm/<dev>/device/
 * mem_info_{vram,gtt}_{total,used}` (bytes). Strix Halo allocates much of a
 * model through GTT, so both are read.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Memory counters of one GPU, in bytes; a counter the driver lacks is undefined. */
export interface DrmMemInfo {
  vramTotal?: number;
  vramUsed?: number;
  gttTotal?: number;
  gttUsed?: number;
}

/** A DRM device (card<n> or renderD<n>) with its memory counters. */
export interface DrmDevice {
  /** `card0`, `renderD128`, ... */
  name: string;
  /** Absolute path of its sysfs `device` directory (under the given root). */
  deviceDir: string;
  mem: DrmMemInfo;
}

async function readNumber(file: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(file, 'utf8')).trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Read the memory counters of `/sys/class/drm/<name>/device`; null when it has none. */
export async function readDrmMemInfo(root: string, name: string): Promise<DrmMemInfo | null> {
  const dir = join(root, 'sys/class/drm', name, 'device');
  const [vramTotal, vramUsed, gttTotal, gttUsed] = await Promise.all(
    ['mem_info_vram_total', 'mem_info_vram_used', 'mem_info_gtt_total', 'mem_info_gtt_used'].map((f) => readNumber(join(dir, f))),
  );
  if ([vramTotal, vramUsed, gttTotal, gttUsed].every((x) => x === undefined)) return null;
  const mem: DrmMemInfo = {};
  if (vramTotal !== undefined) mem.vramTotal = vramTotal;
  if (vramUsed !== undefined) mem.vramUsed = vramUsed;
  if (gttTotal !== undefined) mem.gttTotal = gttTotal;
  if (gttUsed !== undefined) mem.gttUsed = gttUsed;
  return mem;
}

/** Every `card<n>` under /sys/class/drm that exposes amdgpu memory counters. */
export async function listDrmCards(root = '/'): Promise<DrmDevice[]> {
  let names: string[];
  try {
    names = await readdir(join(root, 'sys/class/drm'));
  } catch {
    return [];
  }
  const cards = names.filter((n) => /^card\d+$/.test(n)).sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
  const out: DrmDevice[] = [];
  for (const name of cards) {
    const mem = await readDrmMemInfo(root, name);
    if (mem) out.push({ name, deviceDir: join(root, 'sys/class/drm', name, 'device'), mem });
  }
  return out;
}
