import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sampleVram, startVramSampler } from '../../src/gpu/vram.js';
import { fakeSysfs, strixHalo } from './fake-sysfs.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('VRAM sampling from DRM sysfs', () => {
  it('returns the peak VRAM+GTT use seen while the counters move', async () => {
    const root = fakeSysfs([strixHalo]);
    const dev = join(root, 'sys/class/drm/renderD129/device');
    const sampler = startVramSampler({ kind: 'amd', root, drmDevice: 'renderD129' }, { intervalMs: 10 });
    await sleep(60);
    writeFileSync(join(dev, 'mem_info_gtt_used'), String(6 * 1024 ** 3));
    await sleep(80);
    writeFileSync(join(dev, 'mem_info_gtt_used'), String(200 * 1024 ** 2));
    await sleep(60);
    const s = await sampler.stop();
    expect(s.available).toBe(true);
    expect(s.baselineUsedBytes).toBe(30 * 1024 ** 2 + 100 * 1024 ** 2);
    expect(s.peakUsedBytes).toBe(30 * 1024 ** 2 + 6 * 1024 ** 3);
    expect(s.peakGttBytes).toBe(6 * 1024 ** 3);
    expect(s.samples).toBeGreaterThan(3);
  });

  it('a missing device is reported as unavailable, not as zero use', async () => {
    const root = fakeSysfs([]);
    const s = await sampleVram({ kind: 'amd', root, drmDevice: 'renderD200' }, { durationMs: 30, intervalMs: 10 });
    expect(s).toMatchObject({ available: false, samples: 0 });
  });
});

describe('VRAM sampling through nvidia-smi', () => {
  it('reads memory.used of the chosen index', async () => {
    // a stand-in nvidia-smi that reports more use on each call
    const dir = mkdtempSync(join(tmpdir(), 'rocmflow-smi-'));
    const counter = join(dir, 'n');
    writeFileSync(counter, '0');
    const smi = join(dir, 'nvidia-smi');
    writeFileSync(smi, `#!/bin/sh\nn=$(cat ${counter}); n=$((n+1)); echo $n > ${counter}\necho "0, NVIDIA GeForce RTX 4090, 8.9, 24564, 100"\necho "1, NVIDIA L4, 8.9, 23034, $((n*10))"\n`);
    chmodSync(smi, 0o755);
    const s = await sampleVram({ kind: 'nvidia', index: 1, command: smi }, { durationMs: 300, intervalMs: 50 });
    expect(s.available).toBe(true);
    expect(s.peakUsedBytes).toBe(s.samples * 10 * 1024 * 1024);
    expect(s.baselineUsedBytes).toBe(10 * 1024 * 1024);
  });
});
