/**
 * AMD GPU discovery from the KFD topology that the amdgpu driver exposes
 * under /sys/class/kfd/kfd/topology/nodes/<n>/properties. ROCm's runtime
 * (ROCr) enumerates its GPU agents in KFD node order, so the position of a
 * GPU node among the GPU nodes is its HIP/ROCR device index.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readDrmMemInfo, type DrmMemInfo } from './drm.js';

/** One KFD topology node: a CPU socket or a GPU. */
export interface KfdNode {
  /** The node number (directory name under topology/nodes). */
  node: number;
  /** `simd_count > 0`: a GPU; CPU nodes have no SIMDs. */
  isGpu: boolean;
  /** Raw `gfx_target_version`, e.g. 110501; 0 on CPU nodes. */
  gfxTargetVersion: number;
  /** Decoded arch, e.g. `gfx1151`; null on CPU nodes. */
  arch: string | null;
  /** The HIP/ROCR device index (position among GPU nodes); null on CPU nodes. */
  deviceIndex: number | null;
  /** Render node minor: /dev/dri/renderD<minor>. */
  drmRenderMinor: number | null;
  vendorId: number;
  deviceId: number;
  /** Device-local memory in bytes as KFD reports it (0 on GTT-only APUs). */
  localMemSize: number;
  /** Integrated (APU) rather than discrete; see `isIntegrated` for the rule. */
  integrated: boolean;
  /** DRM memory counters of this GPU, when the driver exposes them. */
  mem: DrmMemInfo | null;
  /** Every numeric property of the node, as read. */
  properties: Record<string, number>;
}

/**
 * Arches that only ship as APUs (integrated graphics). Their carve-out VRAM
 * can be set large in firmware (Strix Halo: up to 96 GiB), so memory size
 * alone does not tell them apart from a discrete card.
 */
const INTEGRATED_ARCHES = new Set(['gfx902', 'gfx909', 'gfx90c', 'gfx1013', 'gfx1033', 'gfx1035', 'gfx1036', 'gfx1103', 'gfx1150', 'gfx1151', 'gfx1152', 'gfx1153']);

/**
 * Decode KFD's `gfx_target_version` (major*10000 + minor*100 + stepping) into
 * the LLVM arch name. Minor and stepping are printed in hex as ROCm does:
 * 110501 → gfx1151, 90010 → gfx90a, 90402 → gfx942.
 */
export function decodeGfxTargetVersion(v: number): string {
  const major = Math.floor(v / 10000);
  const minor = Math.floor(v / 100) % 100;
  const stepping = v % 100;
  return `gfx${major}${minor.toString(16)}${stepping.toString(16)}`;
}

/** The inverse of `decodeGfxTargetVersion` for arches of the usual `gfxMMms` shape. */
export function encodeGfxArch(arch: string): number {
  const m = /^gfx(\d{1,2})([0-9a-f])([0-9a-f])$/.exec(arch);
  if (!m) throw new Error(`not a gfx arch: ${arch}`);
  return Number(m[1]) * 10000 + parseInt(m[2]!, 16) * 100 + parseInt(m[3]!, 16);
}

/** Parse a KFD `properties` file: one `name value` pair per line. */
export function parseKfdProperties(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+)\s+(-?\d+)\s*$/.exec(line.trim());
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/**
 * The rule used for integrated vs discrete: a known APU-only arch, or a GPU
 * with no device-local memory in KFD (GTT-backed), or a DRM VRAM total under
 * 2 GiB (the default APU carve-out; discrete cards have far more).
 */
export function isIntegrated(arch: string | null, localMemSize: number, mem: DrmMemInfo | null): boolean {
  if (arch && INTEGRATED_ARCHES.has(arch)) return true;
  if (localMemSize === 0) return true;
  if (mem?.vramTotal !== undefined && mem.vramTotal < 2 * 1024 ** 3) return true;
  return false;
}

/**
 * Read every KFD topology node under `root` (default "/"). A host without
 * the amdgpu driver (no /sys/class/kfd) has none: that is not an error.
 */
export async function readKfdNodes(root = '/'): Promise<KfdNode[]> {
  const dir = join(root, 'sys/class/kfd/kfd/topology/nodes');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const numbers = names.filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
  const nodes: KfdNode[] = [];
  let gpuIndex = 0;
  for (const node of numbers) {
    let text: string;
    try {
      text = await readFile(join(dir, String(node), 'properties'), 'utf8');
    } catch {
      continue;
    }
    const p = parseKfdProperties(text);
    const isGpu = (p.simd_count ?? 0) > 0;
    const gfx = p.gfx_target_version ?? 0;
    const arch = isGpu && gfx > 0 ? decodeGfxTargetVersion(gfx) : null;
    const minor = isGpu && p.drm_render_minor !== undefined && p.drm_render_minor > 0 ? p.drm_render_minor : null;
    const mem = minor !== null ? await readDrmMemInfo(root, `renderD${minor}`) : null;
    const localMemSize = p.local_mem_size ?? 0;
    nodes.push({
      node,
      isGpu,
      gfxTargetVersion: gfx,
      arch,
      deviceIndex: isGpu ? gpuIndex++ : null,
      drmRenderMinor: minor,
      vendorId: p.vendor_id ?? 0,
      deviceId: p.device_id ?? 0,
      localMemSize,
      integrated: isGpu && isIntegrated(arch, localMemSize, mem),
      mem,
      properties: p,
    });
  }
  return nodes;
}

/** The GPU nodes only, in ROCm's enumeration order. */
export async function readKfdGpus(root = '/'): Promise<KfdNode[]> {
  return (await readKfdNodes(root)).filter((n) => n.isGpu);
}
