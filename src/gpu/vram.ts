/**
 * Peak GPU memory use over a period, sampled while a workload runs (the
 * trace task reports it). AMD: DRM sysfs counters of one render node (VRAM
 * and GTT, since APUs allocate through GTT); NVIDIA: nvidia-smi's memory.used.
 */
import { readDrmMemInfo } from './drm.js';
import { queryNvidia } from './nvidia.js';

/** Which device to sample. */
export type VramSource =
  | { kind: 'amd'; root?: string; /** `renderD128` or `card0` */ drmDevice: string }
  | { kind: 'nvidia'; index: number; env?: Readonly<Record<string, string | undefined>>; command?: string };

/** What a sampler saw. */
export interface VramSample {
  /** Highest used device memory seen (AMD: VRAM + GTT), in bytes. */
  peakUsedBytes: number;
  /** Used bytes at the first sample: subtract for the workload's own share. */
  baselineUsedBytes: number;
  /** AMD only: the VRAM and GTT parts at the peak. */
  peakVramBytes?: number;
  peakGttBytes?: number;
  samples: number;
  /** False when no counter could be read at all (no such device). */
  available: boolean;
}

export interface VramSampler {
  /** Stop sampling and return what was seen (one last sample is taken). */
  stop(): Promise<VramSample>;
}

async function readOnce(src: VramSource): Promise<{ used: number; vram?: number; gtt?: number } | null> {
  if (src.kind === 'amd') {
    const m = await readDrmMemInfo(src.root ?? '/', src.drmDevice);
    if (!m || (m.vramUsed === undefined && m.gttUsed === undefined)) return null;
    return { used: (m.vramUsed ?? 0) + (m.gttUsed ?? 0), vram: m.vramUsed, gtt: m.gttUsed };
  }
  const q = await queryNvidia({ env: src.env, command: src.command });
  const gpu = q.gpus.find((g) => g.index === src.index);
  return gpu ? { used: gpu.memoryUsedBytes } : null;
}

/** Start sampling every `intervalMs` (default 250 ms) until `stop()`. */
export function startVramSampler(src: VramSource, opts: { intervalMs?: number } = {}): VramSampler {
  const state: VramSample = { peakUsedBytes: 0, baselineUsedBytes: 0, samples: 0, available: false };
  let busy: Promise<void> = Promise.resolve();
  const take = () => {
    // never overlap two reads (nvidia-smi can be slower than the interval)
    busy = busy.then(async () => {
      const s = await readOnce(src).catch(() => null);
      if (!s) return;
      if (!state.available) state.baselineUsedBytes = s.used;
      state.available = true;
      state.samples++;
      if (s.used >= state.peakUsedBytes) {
        state.peakUsedBytes = s.used;
        if (s.vram !== undefined) state.peakVramBytes = s.vram;
        if (s.gtt !== undefined) state.peakGttBytes = s.gtt;
      }
    });
  };
  take();
  const timer = setInterval(take, opts.intervalMs ?? 250);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      take();
      await busy;
      return { ...state };
    },
  };
}

/** Sample for `durationMs` (or until `signal` aborts) and return the peak. */
export async function sampleVram(src: VramSource, opts: { durationMs: number; intervalMs?: number; signal?: AbortSignal }): Promise<VramSample> {
  const sampler = startVramSampler(src, opts);
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, opts.durationMs);
    opts.signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
  return sampler.stop();
}
