/**
 * Builds fake sysfs trees (KFD topology + DRM memory counters) in temp dirs,
 * in the format the amdgpu driver writes, for detection tests.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FakeNode {
  /** 0 for a CPU node. */
  simdCount: number;
  gfxTargetVersion?: number;
  renderMinor?: number;
  localMemSize?: number;
  deviceId?: number;
  /** DRM counters for renderD<minor> (bytes). */
  vramTotal?: number;
  vramUsed?: number;
  gttTotal?: number;
  gttUsed?: number;
}

export const GiB = 1024 ** 3;
export const cpuNode: FakeNode = { simdCount: 0 };
export const strixHalo: FakeNode = { simdCount: 80, gfxTargetVersion: 110501, renderMinor: 129, localMemSize: 512 * 1024 ** 2, deviceId: 0x1586, vramTotal: 512 * 1024 ** 2, vramUsed: 30 * 1024 ** 2, gttTotal: 96 * GiB, gttUsed: 100 * 1024 ** 2 };
export const rx7900: FakeNode = { simdCount: 192, gfxTargetVersion: 110000, renderMinor: 128, localMemSize: 24 * GiB, deviceId: 0x744c, vramTotal: 24 * GiB, vramUsed: 1 * GiB, gttTotal: 64 * GiB, gttUsed: 0 };

function properties(n: FakeNode): string {
  const gpu = n.simdCount > 0;
  const p: [string, number][] = [
    ['cpu_cores_count', gpu ? 0 : 32], ['simd_count', n.simdCount], ['mem_banks_count', 1], ['caches_count', gpu ? 206 : 0],
    ['io_links_count', 1], ['p2p_links_count', 0], ['cpu_core_id_base', 0], ['simd_id_base', gpu ? 2147487744 : 0],
    ['max_waves_per_simd', gpu ? 16 : 0], ['lds_size_in_kb', gpu ? 64 : 0], ['wave_front_size', gpu ? 32 : 0],
    ['gfx_target_version', n.gfxTargetVersion ?? 0], ['vendor_id', gpu ? 4098 : 0], ['device_id', n.deviceId ?? 0],
    ['location_id', gpu ? 49920 : 0], ['domain', 0], ['drm_render_minor', n.renderMinor ?? 0], ['hive_id', 0],
    ['num_sdma_engines', gpu ? 2 : 0], ['local_mem_size', n.localMemSize ?? 0], ['fw_version', gpu ? 2370 : 0],
    ['capability', gpu ? 671629952 : 0], ['unique_id', 0], ['num_xcc', gpu ? 1 : 0],
  ];
  return p.map(([k, v]) => `${k} ${v}`).join('\n') + '\n';
}

/** Write one DRM counter set for `dev` (renderD<n> or card<n>). */
export function writeDrm(root: string, dev: string, n: Pick<FakeNode, 'vramTotal' | 'vramUsed' | 'gttTotal' | 'gttUsed'>): void {
  const dir = join(root, 'sys/class/drm', dev, 'device');
  mkdirSync(dir, { recursive: true });
  const files: [string, number | undefined][] = [['mem_info_vram_total', n.vramTotal], ['mem_info_vram_used', n.vramUsed], ['mem_info_gtt_total', n.gttTotal], ['mem_info_gtt_used', n.gttUsed]];
  for (const [f, v] of files) if (v !== undefined) writeFileSync(join(dir, f), `${v}\n`);
}

/** A root with /sys/class/kfd/kfd/topology/nodes/<i> for each node and its DRM counters. */
export function fakeSysfs(nodes: FakeNode[], opts: { devKfd?: boolean } = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'rocmflow-sysfs-'));
  nodes.forEach((n, i) => {
    const dir = join(root, 'sys/class/kfd/kfd/topology/nodes', String(i));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'properties'), properties(n));
    writeFileSync(join(dir, 'name'), n.simdCount ? 'ip discovery\n' : '\n');
    if (n.renderMinor) writeDrm(root, `renderD${n.renderMinor}`, n);
  });
  if (opts.devKfd) {
    mkdirSync(join(root, 'dev'), { recursive: true });
    writeFileSync(join(root, 'dev/kfd'), '');
  }
  return root;
}
