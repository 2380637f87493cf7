/**
 * strace-trace: run the target's workload (llama-server + the CLI, see
 * src/llama/workload.ts) inside the full runtime under strace, and record
 * what it touched, what it generated and how fast.
 *
 * The device check itself is `detect-target` (tasks/detect-target.ts), a
 * dependency that runs before anything is fetched or built.
 *
 * Fingerprint: the workload parameters, strace's and bwrap's versions, the
 * base root's record (base-root's `root.json`, a dependency: its OS and
 * every package version), and for the host's `/` or a directory root its
 * `/etc/ld.so.cache`, which changes whenever system libraries are installed
 * or upgraded. The system libraries themselves are not hashed (a whole root
 * cannot be hashed cheaply); trim-runtime re-derives the ELF closure and
 * verifies the result.
 *
 * Without the device (`--no-device`, see detect-target) the workload runs
 * with no device node passed in: HIP finds no GPU and ggml's CPU backend
 * runs, while the GPU libraries are still loaded.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { defineTask, s, type Detection } from '../src/plugin/core.js';
import { DEFAULT_WORKLOAD, type WorkloadSpec } from '../src/llama/workload-spec.js';
import type { VramSample, VramSource } from '../src/gpu/vram.js';
import type { NumericsResult } from '../src/pipeline/numerics.js';

/** `tasks.strace-trace` options. */
export interface StraceTraceOptions {
  seed?: number;
  threads?: number;
  ctxSize?: number;
  /** Tokens for the short prompt; the long one gets twice as many. @default 16 */
  nPredict?: number;
  /** Seconds llama-server may take to load. @default 120 */
  healthTimeout?: number;
}

const options = s.object({
  seed: s.optional(s.number({ integer: true, min: 0 })),
  threads: s.optional(s.number({ integer: true, min: 1 })),
  ctxSize: s.optional(s.number({ integer: true, min: 64 })),
  nPredict: s.optional(s.number({ integer: true, min: 1, max: 4096 })),
  healthTimeout: s.optional(s.number({ min: 1 })),
});

/** The workload these options describe. */
export function workloadSpec(o: StraceTraceOptions): WorkloadSpec {
  const n = o.nPredict ?? DEFAULT_WORKLOAD.cli.nPredict;
  return {
    seed: o.seed ?? DEFAULT_WORKLOAD.seed,
    threads: o.threads ?? DEFAULT_WORKLOAD.threads,
    ctxSize: o.ctxSize ?? DEFAULT_WORKLOAD.ctxSize,
    requests: DEFAULT_WORKLOAD.requests.map((r) => ({ ...r, nPredict: r.name.startsWith('long') ? 2 * n : n })),
    cli: { ...DEFAULT_WORKLOAD.cli, nPredict: n },
  };
}

function vramSource(family: string, d: Detection): VramSource | null {
  if (!d.found) return null;
  if (family === 'rocm') {
    const node = d.facts?.renderNode;
    return typeof node === 'string' ? { kind: 'amd', drmDevice: node.replace(/^.*\//, '') } : null;
  }
  if (family === 'cuda') return { kind: 'nvidia', index: d.deviceIndex ?? 0 };
  return null;
}


const straceTrace = defineTask<StraceTraceOptions>({
  name: 'strace-trace',
  description: 'Trace llama-server and the CLI on the model inside the full runtime (strace): access set, texts, timings, peak GPU memory',
  deps: ['detect-target', 'base-root', 'build-llama', 'fetch-rocm', 'model', 'numerics-reference'],
  options,
  // whole folders: the engine may hash a compiled mirror of the sources, where file names differ
  inputs(ctx) {
    const source = (ctx.config.tasks['base-root'] as { source?: unknown } | undefined)?.source ?? 'host';
    const dir = source === 'host' ? '/' : typeof (source as { dir?: unknown }).dir === 'string' ? resolve(ctx.projectRoot, (source as { dir: string }).dir) : null;
    const ldCache = dir ? join(dir, 'etc/ld.so.cache') : null;
    return {
      params: { workload: workloadSpec(ctx.options) as never, family: ctx.target.definition.family },
      files: ldCache && existsSync(ldCache) ? [ldCache] : [],
      tools: ['strace -V', 'bwrap --version'],
    };
  },
  outputs: ['trace', 'access.json', 'workload.json'],
  async run(ctx) {
    // loaded when the task runs, not for the check that finds it fresh
    const { pickCli, runWorkload, textsOf } = await import('../src/llama/workload.js');
    const { sandboxRunner } = await import('../src/pipeline/workload-runner.js');
    const { pipelineRuntime, LLAMA_MOUNT, MODELS_MOUNT, ROCM_MOUNT } = await import('../src/pipeline/runtime.js');
    const { startVramSampler } = await import('../src/gpu/vram.js');
    const { parseTraceFiles } = await import('../src/trace/parse.js');
    const { compareNumerics, numericsError, numericsFromDeps, NUMERICS_MOUNT } = await import('../src/pipeline/numerics.js');
    const def = ctx.target.definition;
    const device = JSON.parse(await readFile(join(ctx.deps['detect-target']!.outDir, 'device.json'), 'utf8')) as { detection: Detection; noDevice?: boolean };
    const detection = device.detection;
    const noDevice = device.noDevice === true;
    const gpu = def.family !== 'cpu' && !noDevice;
    const rt = await pipelineRuntime(ctx.deps, { cacheDir: ctx.cacheDir, projectRoot: ctx.projectRoot });
    const env = def.env({ detection, options: ctx.target.options, ...(rt.runtimeRoot ? { runtimeRoot: ROCM_MOUNT } : {}) });
    const spec = workloadSpec(ctx.options);
    const cli = pickCli(join(rt.llamaDir, 'bin'));
    const traceDir = join(ctx.outDir, 'trace');
    await mkdir(traceDir, { recursive: true });
    const numerics = await numericsFromDeps(ctx.deps);
    const runner = await sandboxRunner({
      layout: rt.layout,
      binds: [{ source: rt.modelsDir, dest: MODELS_MOUNT }, ...(numerics ? [{ source: numerics.dir, dest: NUMERICS_MOUNT }] : [])],
      devices: noDevice ? [] : def.devices, env, traceDir, signal: ctx.signal,
    });

    const src = noDevice ? null : vramSource(def.family, detection);
    let sampler: ReturnType<typeof startVramSampler> | null = null;
    let vram: VramSample | null = null;
    const bar = ctx.progress.start('workload under strace', { total: 2, unit: 'steps' });
    let result: Awaited<ReturnType<typeof runWorkload>>;
    try {
      result = await runWorkload({
      spec, runner, gpu, signal: ctx.signal, healthTimeoutMs: (ctx.options.healthTimeout ?? 120) * 1000,
      paths: { binDir: rt.binDir, model: `${MODELS_MOUNT}/model.gguf`, cli },
      onServerUp: () => {
        bar.update(1);
        if (src) sampler = startVramSampler(src);
      },
      log: (l) => ctx.log.info(l),
      });
    } finally {
      const running = sampler as ReturnType<typeof startVramSampler> | null;
      if (running) vram = await running.stop();
    }
    bar.done();

    // the numeric check, traced too: the trimmed root then holds llama-perplexity and what it loads
    let numericsResult: NumericsResult | null = null;
    if (numerics) {
      const nbar = ctx.progress.start('numerics: llama-perplexity against the CPU reference', { unit: 'steps' });
      try {
        numericsResult = await compareNumerics({ runner, binDir: rt.binDir, model: `${MODELS_MOUNT}/model.gguf`, reference: numerics.reference, gpu, where: 'full runtime' });
      } finally {
        nbar.done();
      }
      ctx.log.info(numericsResult.line);
    }

    const trace = await parseTraceFiles(runner.logs, { cwd: '/' });
    for (const w of trace.warnings.slice(0, 20)) ctx.log.warn(`trace: ${w}`);
    await writeFile(join(ctx.outDir, 'access.json'), JSON.stringify(trace.access, null, 2) + '\n');
    // zstd -19: strace logs shrink ~20x, and the cache keeps every version
    const raw = (await readdir(traceDir)).filter((n) => n.endsWith('.log'));
    for (const l of raw) await ctx.$`zstd -q -19 --rm -f ${join(traceDir, l)}`;
    const logs = raw.map((l) => `${l}.zst`);
    const bytes = (await Promise.all(logs.map((l) => stat(join(traceDir, l))))).reduce((n, st) => n + st.size, 0);

    const record = {
      target: ctx.target.name,
      detection,
      env,
      gpu,
      noDevice,
      method: runner.method,
      layout: {
        base: rt.layout.base === '/' ? '/' : 'base-root',
        layers: rt.layout.layers.map((l) => l.mount),
        binds: [MODELS_MOUNT, ...(numerics ? [NUMERICS_MOUNT] : [])],
        llama: LLAMA_MOUNT,
      },
      spec,
      cli,
      texts: textsOf(result),
      result,
      peakVram: vram,
      numerics: numericsResult,
      trace: { logs: logs.map((l) => `trace/${l}`), files: trace.access.files.length, executables: trace.access.executables, missing: trace.access.missing.length },
    };
    await writeFile(join(ctx.outDir, 'workload.json'), JSON.stringify(record, null, 2) + '\n');

    if (numericsResult && !numericsResult.ok) throw numericsError(numericsResult);

    const gen = result.requests.map((r) => r.timings?.predictedPerSecond ?? 0);
    const speed = gen.length ? (gen.reduce((a, b) => a + b, 0) / gen.length).toFixed(1) : '?';
    return {
      summary: [
        `traced llama-server (${result.requests.length} requests, loaded in ${result.server.loadMs} ms, ${speed} tokens/s generated) and ${cli} in ${runner.method}: ` +
          `${trace.access.files.length} files, ${trace.access.executables.length} executables (${(bytes / 1024).toFixed(0)} KiB of zstd logs)`,
        ...(numericsResult ? [numericsResult.line] : []),
        ...(vram?.available ? [`peak GPU memory ${(vram.peakUsedBytes / 2 ** 20).toFixed(0)} MiB (baseline ${(vram.baselineUsedBytes / 2 ** 20).toFixed(0)} MiB)`] : []),
      ],
    };
  },
});

export default straceTrace;
