/**
 * The numeric check in the pipeline. numerics-reference runs the evaluation
 * text through a CPU build of the same llama.cpp commit and keeps its token
 * distributions (`base.kld`); strace-trace (full runtime) and trim-runtime
 * (trimmed root) run the target's `llama-perplexity` against them, with the
 * reference directory bound read-only at NUMERICS_MOUNT.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RocmflowError } from '../errors.js';
import { sha256 } from '../util/canonical.js';
import { readGguf } from '../gguf/read.js';
import { describeModel } from '../gguf/describe.js';
import {
  DEFAULT_THRESHOLDS, judgeNumerics, numericsLine, parseKlDivergence, perplexityCompareCommand,
  type NumericsMeasure, type NumericsSpec, type NumericsThresholds, type NumericsVerdict, type ThresholdGroup,
} from '../llama/numerics.js';
import type { WorkloadRunner } from '../llama/workload.js';
import type { DepResult } from '../plugin/types.js';

/** Where the reference directory is bound inside a root. */
export const NUMERICS_MOUNT = '/rocmflow/numerics';

/** What numerics-reference wrote (`reference.json`). */
export interface NumericsReference {
  enabled: boolean;
  spec: NumericsSpec;
  /** The model's weight type (`F16`, `Q8_0`...) and the limits that apply to it. */
  weightType: string | null;
  group: ThresholdGroup;
  thresholds: NumericsThresholds;
  /** The reference build: target, commit, flags. */
  build: { target: string; commit: string | null; flags: string[] } | null;
  /** The reference's own perplexity on the text. */
  ppl: number | null;
  tokensScored: number | null;
  seconds: number;
}

/** Every result of one comparison, as report.json and workload.json carry it. */
export interface NumericsResult extends NumericsMeasure {
  ok: boolean;
  group: ThresholdGroup;
  thresholds: NumericsThresholds;
  failures: string[];
  line: string;
  seconds: number;
  /** Where it ran: `full runtime`, `trimmed root`, an image. */
  where: string;
}

/** Limits for the model's group, with `tasks.numerics-reference.thresholds` overrides. */
export function thresholdsFor(group: ThresholdGroup, overrides?: Partial<Record<ThresholdGroup, Partial<NumericsThresholds>>>): NumericsThresholds {
  return { ...DEFAULT_THRESHOLDS[group], ...(overrides?.[group] ?? {}) };
}

/** The weight type of a GGUF model file. */
export async function modelWeightType(path: string): Promise<string | null> {
  const g = await readGguf(path, { skipArrays: true });
  return describeModel(g).quantization;
}

/** numerics-reference's output directory and record, or null when the task is not a dependency or is disabled. */
export async function numericsFromDeps(deps: Readonly<Record<string, DepResult>>): Promise<{ dir: string; reference: NumericsReference; textSha256: string } | null> {
  const dep = deps['numerics-reference'];
  if (!dep) return null;
  const file = join(dep.outDir, 'reference.json');
  if (!existsSync(file)) throw new RocmflowError('E_MISSING_DEP', `numerics-reference: ${file} is missing; rerun with --force numerics-reference`);
  const reference = JSON.parse(await readFile(file, 'utf8')) as NumericsReference;
  if (!reference.enabled) return null;
  if (!existsSync(join(dep.outDir, 'base.kld'))) throw new RocmflowError('E_MISSING_DEP', `numerics-reference: ${dep.outDir}/base.kld is missing; rerun with --force numerics-reference`);
  const text = await readFile(join(dep.outDir, 'eval.txt'), 'utf8').catch(() => {
    throw new RocmflowError('E_MISSING_DEP', `numerics-reference: ${dep.outDir}/eval.txt is missing; rerun with --force numerics-reference`);
  });
  return { dir: dep.outDir, reference, textSha256: sha256(text) };
}

/**
 * Run the comparison with `runner` (which must bind the reference directory
 * at NUMERICS_MOUNT and the model at `model`); `binDir` is in-root.
 */
export async function compareNumerics(p: {
  runner: WorkloadRunner; binDir: string; model: string; reference: NumericsReference; gpu: boolean; where: string; name?: string;
}): Promise<NumericsResult> {
  const started = Date.now();
  const cmd = perplexityCompareCommand({ bin: `${p.binDir}/llama-perplexity`, model: p.model, baseFile: `${NUMERICS_MOUNT}/base.kld`, spec: p.reference.spec, gpu: p.gpu });
  const m = await withLostLogRetry(`numerics (${p.where})`, async () => {
    const r = await p.runner.run(cmd, p.name ?? 'perplexity');
    const output = `${r.stdout}\n${r.stderr}`;
    if (r.exitCode !== 0) {
      const last = output.trim().split('\n').slice(-3).join(' | ');
      throw new RocmflowError('E_NUMERICS', `numerics (${p.where}): llama-perplexity exited with ${r.exitCode}: ${last.slice(0, 400)}`);
    }
    return parseKlDivergence(output, `numerics (${p.where})`);
  });
  const v: NumericsVerdict = judgeNumerics(m, p.reference.group, p.reference.thresholds);
  return { ...m, ok: v.ok, group: v.group, thresholds: v.thresholds, failures: v.failures, line: numericsLine(m, v, p.where === 'full runtime' ? 'numerics' : `numerics in the ${p.where}`), seconds: (Date.now() - started) / 1000, where: p.where };
}

/**
 * llama.cpp's logger prints from a worker thread and is never flushed at
 * exit (common/log.cpp says so), so under load a run that exited 0 can lose
 * its last lines, here the final statistics. The numbers are deterministic:
 * such a run is repeated (twice at most) instead of failing the check.
 */
export async function withLostLogRetry<T>(what: string, attempt: () => Promise<T>, tries = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (e) {
      const lost = e instanceof RocmflowError && /printed no (KL divergence statistics|final perplexity)/.test(e.message);
      if (!lost || i >= tries) throw e;
    }
  }
}

/** The error for a comparison over its limits. */
export function numericsError(r: NumericsResult): RocmflowError {
  return new RocmflowError('E_NUMERICS', `numerics (${r.where}) differ from the CPU reference beyond the ${r.group} limits: ${r.failures.join('; ')}`, {
    details: ['the runtime computes other numbers than llama.cpp on the CPU (a broken kernel, a wrong library); raise tasks.numerics-reference.thresholds only if this difference is expected'],
  });
}

