/**
 * numerics-reference: the reference side of the numeric check. A fixed
 * evaluation text (src/llama/eval-text.ts) goes through `llama-perplexity`
 * of a CPU build of the same llama.cpp commit as the target's, and its
 * token distributions are kept (`base.kld`); strace-trace and trim-runtime
 * compare the target's runtime against them (src/pipeline/numerics.ts).
 *
 * For the cpu target the reference is build-llama's own output. For a GPU
 * target the task builds llama-perplexity for the CPU itself, with the cpu
 * target's flags and build-llama's source (ccache makes that cheap when the
 * cpu target was built); its result is cached like any task's.
 */
import { availableParallelism } from 'node:os';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defineTask, RocmflowError, s } from '../src/plugin/index.js';
import { evalText } from '../src/llama/eval-text.js';
import { DEFAULT_NUMERICS_SPEC, parseBasePerplexity, perplexityBaseCommand, thresholdGroup, type NumericsSpec, type NumericsThresholds, type ThresholdGroup } from '../src/llama/numerics.js';
import type { NumericsReference } from '../src/pipeline/numerics.js';
import { sha256 } from '../src/util/canonical.js';
import cpuTarget from '../plugins/cpu.js';

/** `tasks.numerics-reference` options. */
export interface NumericsReferenceOptions {
  /** Run the numeric check at all. @default true */
  enabled?: boolean;
  /** Context size of each evaluation chunk. @default 128 */
  ctxSize?: number;
  /** Chunks of the evaluation text (half of each is scored). @default 6 */
  chunks?: number;
  /** CPU threads of the reference run. @default the machine's available parallelism, at most 16 */
  threads?: number;
  /** Limit overrides per weight group (`float`: F32/F16/BF16, `q8`: Q8_*, `quant`: the rest). */
  thresholds?: Partial<Record<ThresholdGroup, Partial<NumericsThresholds>>>;
}

const limits = s.optional(s.object({
  meanKld: s.optional(s.number({ min: 0 })),
  maxKld: s.optional(s.number({ min: 0 })),
  minSameTop: s.optional(s.number({ min: 0, max: 1 })),
}));

const options = s.object({
  enabled: s.optional(s.boolean()),
  ctxSize: s.optional(s.number({ integer: true, min: 16, max: 1 << 20 })),
  chunks: s.optional(s.number({ integer: true, min: 1, max: 10_000 })),
  threads: s.optional(s.number({ integer: true, min: 1, max: 1024 })),
  thresholds: s.optional(s.object({ float: limits, q8: limits, quant: limits })),
});

const TEXT = evalText();

/** CMake flags that select or tune a GPU backend: left out of the CPU reference build. */
const GPU_FLAG = /^-D(GGML_(CUDA|HIP|VULKAN|SYCL|METAL|OPENCL|MUSA|CANN)|CMAKE_(CUDA|HIP)_|GPU_TARGETS|AMDGPU_TARGETS|CUDAToolkit_ROOT)/;

function specOf(o: NumericsReferenceOptions): NumericsSpec {
  return {
    ctxSize: o.ctxSize ?? DEFAULT_NUMERICS_SPEC.ctxSize,
    chunks: o.chunks ?? DEFAULT_NUMERICS_SPEC.chunks,
    threads: o.threads ?? Math.min(16, availableParallelism()),
  };
}

export default defineTask<NumericsReferenceOptions>({
  name: 'numerics-reference',
  description: 'Run a fixed text through a CPU build of the same llama.cpp (llama-perplexity) and keep its token distributions for the numeric check',
  deps: ['build-llama', 'model'],
  options,
  inputs(ctx) {
    const { threads: _threads, ...spec } = specOf(ctx.options);
    return {
      params: {
        enabled: ctx.options.enabled ?? true, spec, text: sha256(TEXT), thresholds: (ctx.options.thresholds ?? null) as never,
        reference: ctx.target.definition.family === 'cpu' ? 'build-llama' : 'cpu build',
      },
    };
  },
  outputs: ['reference.json', 'eval.txt', 'base.kld', 'reference', 'perplexity.log'],
  async run(ctx) {
    // loaded when the task runs, not for the check that finds it fresh
    const { buildLlama, buildLlamaOptionsSchema } = await import('../src/llama/build.js');
    const { execStreaming } = await import('../src/llama/exec.js');
    const { modelWeightType, thresholdsFor, withLostLogRetry } = await import('../src/pipeline/numerics.js');
    const spec = specOf(ctx.options);
    const model = join(ctx.deps.model!.outDir, 'model.gguf');
    const weightType = await modelWeightType(model);
    const group = thresholdGroup(weightType);
    const record: NumericsReference = {
      enabled: ctx.options.enabled ?? true, spec, weightType, group, thresholds: thresholdsFor(group, ctx.options.thresholds),
      build: null, ppl: null, tokensScored: null, seconds: 0,
    };
    if (!record.enabled) {
      // every declared output exists, empty: the record says the check is off
      await writeFile(join(ctx.outDir, 'reference.json'), JSON.stringify(record, null, 2) + '\n');
      await mkdir(join(ctx.outDir, 'reference'), { recursive: true });
      for (const f of ['eval.txt', 'base.kld']) await writeFile(join(ctx.outDir, f), '');
      await writeFile(join(ctx.outDir, 'perplexity.log'), 'numeric check disabled (tasks.numerics-reference.enabled: false)\n');
      return { summary: ['numeric check disabled (tasks.numerics-reference.enabled: false)'] };
    }
    const targetBuild = ctx.deps['build-llama']!.outDir;
    const targetInfo = JSON.parse(await readFile(join(targetBuild, 'build-info.json'), 'utf8')) as { commit: string | null; flags: string[]; target: string };
    if (!existsSync(join(targetBuild, 'llama', 'bin', 'llama-perplexity')))
      throw new RocmflowError('E_NUMERICS', `numerics-reference: build-llama did not build llama-perplexity: add it to tasks.build-llama.targets, or set tasks.numerics-reference.enabled: false`, { exitCode: 2 });

    // a declared output: the CPU build of a GPU target goes here (empty for the cpu target, which uses its own build)
    await mkdir(join(ctx.outDir, 'reference'), { recursive: true });
    let bin: string;
    if (ctx.target.definition.family === 'cpu') {
      bin = join(targetBuild, 'llama', 'bin', 'llama-perplexity');
      record.build = { target: targetInfo.target, commit: targetInfo.commit, flags: targetInfo.flags };
    } else {
      const buildOptions = buildLlamaOptionsSchema.parse(ctx.config.tasks['build-llama'] ?? {}, 'tasks.build-llama');
      const info = await buildLlama({
        target: { name: 'cpu', definition: cpuTarget, detection: null, options: {} },
        // the config's flags without the GPU ones (a CPU build of the same configuration)
        options: { ...buildOptions, cmakeFlags: buildOptions.cmakeFlags.filter((f) => !GPU_FLAG.test(f)), targets: ['llama-perplexity'] },
        outDir: join(ctx.outDir, 'reference'), workDir: ctx.workDir, cacheDir: ctx.cacheDir, signal: ctx.signal, log: ctx.log, progress: ctx.progress,
      });
      if (info.commit !== targetInfo.commit)
        throw new RocmflowError('E_NUMERICS', `numerics-reference: the CPU reference built llama.cpp ${info.commit ?? 'local tree'} but build-llama built ${targetInfo.commit ?? 'a local tree'}; pin tasks.build-llama.source to a commit`);
      bin = join(ctx.outDir, 'reference', 'llama', 'bin', 'llama-perplexity');
      record.build = { target: 'cpu', commit: info.commit, flags: info.flags };
    }

    const textFile = join(ctx.outDir, 'eval.txt');
    await writeFile(textFile, TEXT);
    const started = Date.now();
    const bar = ctx.progress.start('numerics: reference run on the CPU', { unit: 'steps' });
    const log = join(ctx.outDir, 'perplexity.log');
    // a run that exited 0 may still have lost its last lines (llama.cpp's logger is not flushed at exit): once more
    const output = await withLostLogRetry('numerics-reference', async () => {
      const lines: string[] = [];
      await execStreaming(bin, perplexityBaseCommand({ bin, model, text: textFile, baseFile: join(ctx.outDir, 'base.kld'), spec }).slice(1), {
        signal: ctx.signal, what: 'numerics-reference: llama-perplexity', hint: `see ${log}`,
        onLine: (l) => lines.push(l),
      }).finally(() => writeFile(log, lines.join('\n') + '\n'));
      const text = lines.join('\n');
      if (parseBasePerplexity(text) === null)
        throw new RocmflowError('E_NUMERICS', `numerics-reference: llama-perplexity printed no final perplexity (see ${log}); is the text long enough for ${spec.chunks} chunks of ${spec.ctxSize}?`);
      return text;
    }).finally(() => bar.done());
    record.seconds = (Date.now() - started) / 1000;
    record.ppl = parseBasePerplexity(output);
    const m = /(?:calculating perplexity|computing) over (\d+) chunks/.exec(output);
    record.tokensScored = m ? Number(m[1]) * Math.floor(spec.ctxSize / 2) : null;
    await writeFile(join(ctx.outDir, 'reference.json'), JSON.stringify(record, null, 2) + '\n');
    return {
      summary: [`numerics reference: ${weightType ?? 'unknown'} model, ${spec.chunks} chunks of ${spec.ctxSize} tokens on the CPU build (${record.build?.commit?.slice(0, 12) ?? 'local tree'}): PPL ${record.ppl}, ${record.seconds.toFixed(1)} s; ${group} limits: mean KLD ≤ ${record.thresholds.meanKld}, same top ≥ ${(record.thresholds.minSameTop * 100).toFixed(0)}%`],
    };
  },
});
