/**
 * The numeric check on real llama.cpp runs: the CPU build's llama-perplexity
 * saves a reference, then compares runtimes against it. The same runtime
 * and model pass with a KL divergence of zero; the same weights quantised
 * differently (Q8_0 against an F16 reference) are caught by the float
 * limits, and the message says by how much.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { evalText } from '../../src/llama/eval-text.js';
import {
  DEFAULT_THRESHOLDS, judgeNumerics, parseBasePerplexity, parseKlDivergence, perplexityBaseCommand, perplexityCompareCommand, thresholdGroup,
  type NumericsSpec,
} from '../../src/llama/numerics.js';
import { writeTinyModel } from '../../src/gguf/tiny-model.js';
import { modelWeightType, withLostLogRetry } from '../../src/pipeline/numerics.js';
import { RocmflowError } from '../../src/errors.js';
import { llamaCpuBuild, vocabFile } from '../helpers/llama.js';

const spec: NumericsSpec = { ctxSize: 128, chunks: 4, threads: 2 };

function runBoth(cmd: string[]): string {
  // the statistics go to stdout, the log to stderr: read both, as the pipeline does
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd[0]} exited with ${r.status ?? r.signal}: ${r.stderr.slice(-500)}`);
  return `${r.stdout}\n${r.stderr}`;
}

describe('evalText', () => {
  it('is the same for a seed, differs between seeds, and is long enough for several chunks', () => {
    expect(evalText()).toBe(evalText());
    expect(evalText(2000, 2)).not.toBe(evalText(2000, 1));
    expect(evalText().length).toBeGreaterThan(20_000);
  });
});

describe('thresholds', () => {
  it('group by weight type', () => {
    expect(thresholdGroup('F16')).toBe('float');
    expect(thresholdGroup('MOSTLY_BF16')).toBe('float');
    expect(thresholdGroup('Q8_0')).toBe('q8');
    expect(thresholdGroup('Q4_K_M')).toBe('quant');
    expect(thresholdGroup(null)).toBe('quant');
  });
  it('name every limit exceeded and by how much', () => {
    const v = judgeNumerics({ meanKld: 0.042, maxKld: 0.5, p99Kld: null, sameTop: 0.48, ppl: 1, pplBase: 1, chunks: 6, ctxSize: 128 }, 'float', DEFAULT_THRESHOLDS.float);
    expect(v.ok).toBe(false);
    expect(v.failures).toHaveLength(3);
    expect(v.failures[0]).toMatch(/^mean KLD 0\.042 > 1\.00e-4 \(420× the limit\)$/);
    expect(v.failures[2]).toMatch(/same top token 48\.0% < 98\.0%/);
  });
  it('a NaN never passes', () => {
    const v = judgeNumerics({ meanKld: Number.NaN, maxKld: 0, p99Kld: null, sameTop: 1, ppl: null, pplBase: null, chunks: null, ctxSize: null }, 'float', DEFAULT_THRESHOLDS.float);
    expect(v.ok).toBe(false);
  });
  it('output without statistics is an error that names the run', () => {
    expect(() => parseKlDivergence('main: error: failed to load model\n', 'numerics (trimmed root)')).toThrow(/numerics \(trimmed root\): llama-perplexity printed no KL divergence statistics \(last line: main: error: failed to load model\)/);
  });
});

describe('llama-perplexity against a CPU reference (real runs)', () => {
  let bin: string;
  let dir: string;
  let f16: string;
  let q8: string;
  let base: string;
  beforeAll(async () => {
    bin = join(await llamaCpuBuild(), 'bin', 'llama-perplexity');
    const vocab = await vocabFile();
    dir = mkdtempSync(join(tmpdir(), 'rf-numerics-'));
    // the same seeded weights, stored as F16 and as Q8_0
    f16 = (await writeTinyModel({ vocab, out: join(dir, 'f16.gguf'), weightType: 'F16' })).path;
    q8 = (await writeTinyModel({ vocab, out: join(dir, 'q8.gguf'), weightType: 'Q8_0' })).path;
    const text = join(dir, 'eval.txt');
    writeFileSync(text, evalText());
    base = join(dir, 'base.kld');
    // llama.cpp's logger can lose a run's last lines under load: repeated as the pipeline repeats it
    const ppl = await withLostLogRetry('base', async () => {
      const p = parseBasePerplexity(runBoth(perplexityBaseCommand({ bin, model: f16, text, baseFile: base, spec })));
      if (p === null) throw new RocmflowError('E_NUMERICS', 'base: llama-perplexity printed no final perplexity');
      return p;
    });
    expect(ppl).toBeGreaterThan(1);
  }, 1_800_000);

  it('the same runtime and model: zero divergence, within the float limits', async () => {
    expect(await modelWeightType(f16)).toBe('F16');
    const m = await withLostLogRetry('same', async () => parseKlDivergence(runBoth(perplexityCompareCommand({ bin, model: f16, baseFile: base, spec, gpu: false })), 'same'));
    expect(m.chunks).toBe(spec.chunks);
    expect(m.ctxSize).toBe(spec.ctxSize);
    expect(m.meanKld).toBeLessThan(1e-6);
    expect(m.sameTop).toBeGreaterThan(0.99);
    expect(judgeNumerics(m, 'float', DEFAULT_THRESHOLDS.float).ok).toBe(true);
  });

  it('a numerically different runtime (Q8_0 weights against the F16 reference) fails the float limits', async () => {
    expect(await modelWeightType(q8)).toBe('Q8_0');
    const m = await withLostLogRetry('q8', async () => parseKlDivergence(runBoth(perplexityCompareCommand({ bin, model: q8, baseFile: base, spec, gpu: false })), 'q8'));
    expect(m.meanKld).toBeGreaterThan(DEFAULT_THRESHOLDS.float.meanKld);
    const v = judgeNumerics(m, 'float', DEFAULT_THRESHOLDS.float);
    expect(v.ok).toBe(false);
    expect(v.failures.join('; ')).toMatch(/mean KLD .* > 1\.00e-4 \(\d/);
  });
});
