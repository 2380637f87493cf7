/**
 * The numeric check: llama.cpp's `llama-perplexity` runs a fixed text
 * through a reference runtime (a CPU build of the same llama.cpp commit),
 * saving its token distributions (`--kl-divergence-base FILE`), then
 * through the runtime under test, comparing against them
 * (`--kl-divergence`): mean and maximum KL divergence, how often the most
 * likely token is the same, and perplexity on both sides. Text equality
 * proves a trimmed root lost nothing; these numbers prove the runtime
 * computes what a CPU computes.
 */
import { RocmflowError } from '../errors.js';

/** The evaluation: context size and number of chunks (half of each chunk is scored). */
export interface NumericsSpec {
  ctxSize: number;
  chunks: number;
  threads: number;
}

export const DEFAULT_NUMERICS_SPEC: NumericsSpec = { ctxSize: 128, chunks: 6, threads: 2 };

/** Limits a comparison must stay within. */
export interface NumericsThresholds {
  /** Largest allowed mean KL divergence (nats). */
  meanKld: number;
  /** Largest allowed KL divergence of any one token. */
  maxKld: number;
  /** Smallest allowed share (0..1) of tokens whose most likely next token is the reference's. */
  minSameTop: number;
}

/** Weight-type groups with their own limits: quantised kernels differ more between backends. */
export type ThresholdGroup = 'float' | 'q8' | 'quant';

/**
 * Defaults, per group, set from rocmflow's tiny model on an NVIDIA H200
 * (6 chunks of 128 tokens; docs/results/cuda-h200.md): CUDA against the CPU
 * build on F16 weights, mean KLD 1e-6, max 5e-6, same top token 99.7%; on
 * the same Q8_0 model 1.67e-4 and 96.0%; the F16 weights requantised to
 * Q8_0, 2.85e-4; other weights, 0.99 and 0%. The float limits sit two
 * orders above the backend difference and below what a requantisation
 * gives; the quantised groups allow the larger differences of
 * backend-specific quantised kernels.
 */
export const DEFAULT_THRESHOLDS: Record<ThresholdGroup, NumericsThresholds> = {
  float: { meanKld: 1e-4, maxKld: 1e-2, minSameTop: 0.98 },
  q8: { meanKld: 2e-3, maxKld: 0.1, minSameTop: 0.95 },
  quant: { meanKld: 2e-2, maxKld: 1, minSameTop: 0.85 },
};

/** The group of a GGUF weight type name (`F16`, `Q8_0`, `Q4_K_M`, `MOSTLY_Q4_0`...). */
export function thresholdGroup(fileType: string | null): ThresholdGroup {
  const t = (fileType ?? '').toUpperCase().replace(/^MOSTLY_/, '');
  if (/^(F32|F16|BF16)$/.test(t)) return 'float';
  if (/^Q8/.test(t)) return 'q8';
  return 'quant';
}

/** `llama-perplexity` saving the reference's distributions to `baseFile`. */
export function perplexityBaseCommand(p: { bin: string; model: string; text: string; baseFile: string; spec: NumericsSpec }): string[] {
  return [p.bin, '-m', p.model, '-f', p.text, '-c', String(p.spec.ctxSize), '--chunks', String(p.spec.chunks),
    '-t', String(p.spec.threads), '-b', String(p.spec.ctxSize), '--kl-divergence-base', p.baseFile];
}

/** `llama-perplexity` comparing a runtime against `baseFile` (the tokens come from that file). */
export function perplexityCompareCommand(p: { bin: string; model: string; baseFile: string; spec: NumericsSpec; gpu: boolean }): string[] {
  return [p.bin, '-m', p.model, '-c', String(p.spec.ctxSize), '--chunks', String(p.spec.chunks),
    '-t', String(p.spec.threads), '-b', String(p.spec.ctxSize), '--kl-divergence-base', p.baseFile, '--kl-divergence',
    ...(p.gpu ? ['-ngl', '999'] : ['-ngl', '0'])];
}

/** What one comparison measured. */
export interface NumericsMeasure {
  meanKld: number;
  maxKld: number;
  p99Kld: number | null;
  /** 0..1 */
  sameTop: number;
  ppl: number | null;
  pplBase: number | null;
  chunks: number | null;
  ctxSize: number | null;
}

const NUM = '(-?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][-+]?\\d+)?|nan|inf)';
function grab(text: string, label: string): number | null {
  const m = new RegExp(`${label}\\s*:\\s*${NUM}`).exec(text);
  return m ? Number(m[1]) : null;
}

/** The base run's final perplexity (`Final estimate: PPL = 12.34 +/- 0.56`). */
export function parseBasePerplexity(output: string): number | null {
  const m = new RegExp(`Final estimate: PPL = ${NUM}`).exec(output);
  return m ? Number(m[1]) : null;
}

/** The statistics printed by `--kl-divergence`; `what` names the run in the error. */
export function parseKlDivergence(output: string, what: string): NumericsMeasure {
  const meanKld = grab(output, 'Mean\\s+KLD');
  const maxKld = grab(output, 'Maximum\\s+KLD');
  const sameTop = grab(output, 'Same top p');
  if (meanKld === null || maxKld === null || sameTop === null) {
    const last = output.trim().split('\n').slice(-1)[0] ?? '';
    throw new RocmflowError('E_NUMERICS', `${what}: llama-perplexity printed no KL divergence statistics${last ? ` (last line: ${last.slice(0, 200)})` : ''}`);
  }
  const chunks = /computing over (\d+) chunks, n_ctx=(\d+)/.exec(output);
  return {
    meanKld, maxKld, p99Kld: grab(output, '99\\.0%\\s+KLD'), sameTop: sameTop / 100,
    ppl: grab(output, 'Mean PPL\\(Q\\)'), pplBase: grab(output, 'Mean PPL\\(base\\)'),
    chunks: chunks ? Number(chunks[1]) : null, ctxSize: chunks ? Number(chunks[2]) : null,
  };
}

export interface NumericsVerdict {
  ok: boolean;
  group: ThresholdGroup;
  thresholds: NumericsThresholds;
  /** One phrase per limit exceeded, saying by how much. */
  failures: string[];
}

const fmt = (x: number) => (x === 0 ? '0' : Math.abs(x) < 1e-3 || Math.abs(x) >= 1e4 ? x.toExponential(2) : String(Number(x.toPrecision(4))));

/** Compare a measure with the limits of its group. */
export function judgeNumerics(m: NumericsMeasure, group: ThresholdGroup, thresholds: NumericsThresholds): NumericsVerdict {
  const failures: string[] = [];
  const over = (name: string, v: number, max: number) => {
    if (!(v <= max)) failures.push(`${name} ${fmt(v)} > ${fmt(max)}${max > 0 && Number.isFinite(v) ? ` (${fmt(v / max)}× the limit)` : ''}`);
  };
  over('mean KLD', m.meanKld, thresholds.meanKld);
  over('max KLD', m.maxKld, thresholds.maxKld);
  if (!(m.sameTop >= thresholds.minSameTop))
    failures.push(`same top token ${(m.sameTop * 100).toFixed(1)}% < ${(thresholds.minSameTop * 100).toFixed(1)}% (${((thresholds.minSameTop - m.sameTop) * 100).toFixed(1)} points short)`);
  return { ok: failures.length === 0, group, thresholds, failures };
}

/** One line for summaries: `numerics vs CPU: mean KLD 1.0e-6 (max 6.0e-6), same top 99.6%, PPL 2.3e4 vs 2.3e4 (float limits: ok)`. */
export function numericsLine(m: NumericsMeasure, v: NumericsVerdict, label = 'numerics'): string {
  const ppl = m.ppl !== null && m.pplBase !== null ? `, PPL ${fmt(m.ppl)} vs ${fmt(m.pplBase)}` : '';
  return `${label} vs the CPU reference: mean KLD ${fmt(m.meanKld)} (max ${fmt(m.maxKld)}), same top token ${(m.sameTop * 100).toFixed(1)}%${ppl} ` +
    `(${v.group} limits: ${v.ok ? 'ok' : v.failures.join('; ')})`;
}
