import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import gfx1100 from '../../plugins/gfx1100.js';
import gfx1151 from '../../plugins/gfx1151.js';
import cpu from '../../plugins/cpu.js';
import cuda from '../../plugins/cuda.js';
import { chooseAutoTarget, detectTargets } from '../../src/plugin/select-target.js';

const builtinTargets = () => [gfx1151, gfx1100, cuda, cpu];
import { decodeGfxTargetVersion, encodeGfxArch, readKfdGpus, readKfdNodes } from '../../src/gpu/kfd.js';
import { listDrmCards } from '../../src/gpu/drm.js';
import type { DetectContext } from '../../src/plugin/types.js';
import { cpuNode, fakeSysfs, GiB, rx7900, strixHalo, writeDrm } from './fake-sysfs.js';

const ctx = (root: string, options: Record<string, unknown> = {}): DetectContext => ({ root, env: { PATH: mkdtempSync(join(tmpdir(), 'rocmflow-nopath-')) }, options });

describe('gfx_target_version', () => {
  it('decodes major, minor and hex stepping as ROCm does', () => {
    expect(decodeGfxTargetVersion(110501)).toBe('gfx1151');
    expect(decodeGfxTargetVersion(110000)).toBe('gfx1100');
    expect(decodeGfxTargetVersion(90010)).toBe('gfx90a');
    expect(decodeGfxTargetVersion(90402)).toBe('gfx942');
    expect(decodeGfxTargetVersion(120001)).toBe('gfx1201');
    expect(decodeGfxTargetVersion(100300)).toBe('gfx1030');
    for (const a of ['gfx1151', 'gfx1100', 'gfx90a', 'gfx942', 'gfx1201', 'gfx803']) expect(decodeGfxTargetVersion(encodeGfxArch(a))).toBe(a);
  });
});

describe('a Strix Halo host (CPU node + gfx1151 iGPU)', () => {
  const root = fakeSysfs([cpuNode, strixHalo], { devKfd: true });

  it('reads the KFD topology: the CPU node is no GPU, the iGPU is HIP device 0', async () => {
    const nodes = await readKfdNodes(root);
    expect(nodes.map((n) => [n.node, n.isGpu, n.arch, n.deviceIndex])).toEqual([[0, false, null, null], [1, true, 'gfx1151', 0]]);
    const g = nodes[1]!;
    expect(g.integrated).toBe(true);
    expect(g.drmRenderMinor).toBe(129);
    expect(g.vendorId).toBe(4098);
    expect(g.mem).toEqual({ vramTotal: 512 * 1024 ** 2, vramUsed: 30 * 1024 ** 2, gttTotal: 96 * GiB, gttUsed: 100 * 1024 ** 2 });
  });

  it('gfx1151 is detected and pinned; gfx1100 is not', async () => {
    const d = await gfx1151.detect(ctx(root));
    expect(d).toMatchObject({ found: true, deviceIndex: 0 });
    expect(d.description).toBe('gfx1151 (integrated) at KFD node 1: HIP device 0 of 1, /dev/dri/renderD129');
    expect(d.facts).toMatchObject({ integrated: true, gpuCount: 1, renderNode: '/dev/dri/renderD129', kfdDevice: true, gttTotalBytes: 96 * GiB });
    expect(gfx1151.env({ detection: d, options: {} })).toEqual({ ROCR_VISIBLE_DEVICES: '0', HIP_VISIBLE_DEVICES: '0' });
    const other = await gfx1100.detect(ctx(root));
    expect(other).toEqual({ found: false, description: 'no gfx1100 GPU (KFD: gfx1151 at node 1)' });
  });

  it('auto picks gfx1151', async () => {
    const auto = chooseAutoTarget(await detectTargets(builtinTargets(), { root, env: ctx(root).env }));
    expect(auto?.target.name).toBe('gfx1151');
  });
});

describe('a host with a gfx1100 dGPU and a gfx1151 iGPU', () => {
  it('pins each target to its own device index, in KFD order', async () => {
    const root = fakeSysfs([cpuNode, rx7900, strixHalo]);
    const a = await gfx1151.detect(ctx(root));
    const b = await gfx1100.detect(ctx(root));
    expect(a).toMatchObject({ found: true, deviceIndex: 1 });
    expect(a.description).toContain('also present: gfx1100 (device 0)');
    expect(b).toMatchObject({ found: true, deviceIndex: 0 });
    expect(b.facts).toMatchObject({ integrated: false, vramTotalBytes: 24 * GiB });
    expect(gfx1151.env({ detection: a, options: {} }).ROCR_VISIBLE_DEVICES).toBe('1');
    expect(gfx1100.env({ detection: b, options: {} }).ROCR_VISIBLE_DEVICES).toBe('0');
  });

  it('auto takes the GPU the system lists first (the lowest device index)', async () => {
    const first = chooseAutoTarget(await detectTargets(builtinTargets(), { root: fakeSysfs([cpuNode, rx7900, strixHalo]), env: ctx('/').env }));
    expect(first?.target.name).toBe('gfx1100');
    const second = chooseAutoTarget(await detectTargets(builtinTargets(), { root: fakeSysfs([cpuNode, strixHalo, rx7900]), env: ctx('/').env }));
    expect(second?.target.name).toBe('gfx1151');
  });

  it('the reverse order swaps the indices', async () => {
    const root = fakeSysfs([cpuNode, strixHalo, rx7900]);
    expect((await gfx1151.detect(ctx(root))).deviceIndex).toBe(0);
    expect((await gfx1100.detect(ctx(root))).deviceIndex).toBe(1);
    const gpus = await readKfdGpus(root);
    expect(gpus.map((g) => `${g.arch}:${g.integrated ? 'i' : 'd'}`)).toEqual(['gfx1151:i', 'gfx1100:d']);
  });

  it('targets.<name>.device overrides the choice, and must be that arch', async () => {
    const root = fakeSysfs([cpuNode, rx7900, strixHalo]);
    expect(await gfx1151.detect(ctx(root, { device: 0 }))).toEqual({ found: false, description: 'targets.gfx1151.device 0 is not a gfx1151 (KFD: gfx1100 at node 1, gfx1151 at node 2)' });
    expect((await gfx1151.detect(ctx(root, { device: 1 }))).deviceIndex).toBe(1);
  });

  it('the options schema names the key of a bad value', () => {
    expect(() => gfx1151.options!.parse({ uma: 'yes' }, 'targets.gfx1151')).toThrow('targets.gfx1151.uma: expected true or false');
    expect(() => gfx1151.options!.parse({ rocwmma: true }, 'targets.gfx1151')).toThrow('targets.gfx1151.rocwmma: unknown key (did you mean "rocwmmaFlashAttention"?)');
  });
});

describe('hosts without an AMD GPU', () => {
  it('a CPU-only topology has no GPU; cpu is chosen', async () => {
    const root = fakeSysfs([cpuNode]);
    expect(await readKfdGpus(root)).toEqual([]);
    expect((await gfx1151.detect(ctx(root))).found).toBe(false);
    const auto = chooseAutoTarget(await detectTargets(builtinTargets(), { root, env: ctx(root).env }));
    expect(auto?.target.name).toBe('cpu');
  });

  it('no /sys/class/kfd at all is not an error', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rocmflow-empty-'));
    expect(await readKfdNodes(root)).toEqual([]);
    expect(await gfx1151.detect(ctx(root))).toEqual({ found: false, description: 'no AMD GPU (no KFD topology: amdgpu driver not loaded?)' });
    expect((await cpu.detect(ctx(root))).found).toBe(true);
  });
});

describe('DRM cards', () => {
  it('lists cards with amdgpu memory counters', async () => {
    const root = fakeSysfs([]);
    writeDrm(root, 'card1', { vramTotal: 8 * GiB, vramUsed: GiB });
    writeDrm(root, 'card0', { vramTotal: 512 * 1024 ** 2, gttUsed: 5 });
    const cards = await listDrmCards(root);
    expect(cards.map((c) => [c.name, c.mem])).toEqual([['card0', { vramTotal: 512 * 1024 ** 2, gttUsed: 5 }], ['card1', { vramTotal: 8 * GiB, vramUsed: GiB }]]);
  });
});
