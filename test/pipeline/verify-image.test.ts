/**
 * `rocmflow verify` on the CPU pipeline's real images, as a user on another
 * machine runs it: the archives only (the workload comes from their label),
 * unpacked by rocmflow, the workload run in both roots, the minimal run
 * traced, the numbers checked against the full image's own llama.cpp on the
 * CPU. A minimal root that lost a library fails, naming the path the trim
 * missed; a model other than the images' is caught by the numbers.
 */
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rocmflowAsync } from '../helpers/cli.js';
import { cpuPipeline, SHARED_CACHE, type CpuPipeline } from '../helpers/cpu-pipeline.js';
import { WORKLOAD_LABEL } from '../../src/pipeline/images.js';
import { unpackImage } from '../../src/image/unpack.js';

const tmp = mkdtempSync(join(tmpdir(), 'rocmflow-verify-'));
let p: CpuPipeline;
let images: string;
let model: string;

beforeAll(async () => {
  p = await cpuPipeline();
  images = join(p.out('trim-runtime'), 'images');
  model = join(p.out('model'), 'model.gguf');
}, 3_600_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const verify = (args: string[], m = model) => rocmflowAsync(tmp, ['verify', '--model', m, ...args]).done;

/** The vocab file the pipeline's tiny model was made from (in the shared cache's sources). */
function vocabFile(): string {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name === 'ggml-vocab-llama-spm.gguf') found.push(join(d, e.name));
    }
  };
  walk(join(SHARED_CACHE, 'sources'));
  expect(found.length).toBeGreaterThan(0);
  return found[0]!;
}

describe('rocmflow verify', () => {
  it('checks the minimal image against the full one from the archives alone', async () => {
    const r = await verify(['--full', join(images, 'full.oci'), '--minimal', join(images, 'minimal.oci.tar'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const v = JSON.parse(r.stdout.trim().split('\n')[0]!);
    expect(v).toMatchObject({ ok: true, target: 'cpu', gpu: false, differing: [], sameAsBuild: true, missed: [], failures: [], model: { matches: true } });
    expect(v.images.full.kind).toBe('oci-layout');
    expect(v.images.minimal.kind).toBe('oci-archive');
    expect(Object.keys(v.full.texts).sort()).toEqual(['cli', 'long', 'long-stream', 'short', 'short-stream']);
    expect(v.minimal.texts).toEqual(v.full.texts);
    expect(v.minimal.speed.serverTokensPerSecond).toBeGreaterThan(0);
    // the numbers of both roots against the CPU reference, with the limits the images carry
    expect(v.numerics.limitsFrom).toBe('the images');
    for (const side of ['full', 'minimal']) {
      expect(v.numerics[side]).toMatchObject({ ok: true, group: 'q8' });
      expect(v.numerics[side].meanKld).toBeLessThan(1e-4);
      expect(v.numerics[side].sameTop).toBeGreaterThan(0.99);
    }
    // the workload came from the label: both images carry it
    const min = await unpackImage(join(images, 'minimal.oci.tar'), { dest: join(tmp, 'label') });
    expect(JSON.parse(min.config.labels[WORKLOAD_LABEL]!)).toMatchObject({ target: 'cpu', cli: expect.stringMatching(/^llama-(completion|cli)$/), gpu: false });
  }, 1_200_000);

  it('fails on a minimal root that lost a library, naming it as missed by the trim', async () => {
    const full = await unpackImage(join(images, 'full.oci'), { dest: join(tmp, 'full') });
    const minimal = join(tmp, 'broken');
    cpSync(join(tmp, 'label', 'rootfs'), minimal, { recursive: true, verbatimSymlinks: true });
    // the soname link the loader looks for (libraries sit beside the executables)
    const lib = readdirSync(join(minimal, 'opt/llama/bin')).find((n) => /^libggml-base\.so\.\d+$/.test(n));
    expect(lib).toBeDefined();
    rmSync(join(minimal, 'opt/llama/bin', lib!));
    const r = await verify(['--full', full.root, '--minimal', minimal, '--workload', join(p.out('strace-trace'), 'workload.json'), '--no-numerics']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/rocmflow: verify: the minimal root: /);
    expect(r.stderr).toContain(`/opt/llama/bin/${lib}`);
  }, 1_200_000);

  it('catches numbers that are not the images\' (another model of the same shape)', async () => {
    const other = join(tmp, 'other.gguf');
    // the pipeline's model with other weights: same vocab, shape and type, another seed
    const made = await rocmflowAsync(tmp, ['model', 'tiny', '--out', other, '--seed', '7', '--type', 'Q8_0', '--vocab', vocabFile()]).done;
    expect(made.code, made.stderr).toBe(0);
    const r = await verify(['--full', join(tmp, 'full', 'rootfs'), '--minimal', join(tmp, 'label', 'rootfs'), '--workload', join(p.out('strace-trace'), 'workload.json'), '--reference', p.out('numerics-reference'), '--json'], other);
    expect(r.code).toBe(1);
    // --json: the result, then the error event
    const [result, error] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(error).toMatchObject({ type: 'error', code: 'E_VERIFY' });
    const v = result;
    expect(v.numerics.full.ok).toBe(false);
    expect(v.failures.join(' ')).toMatch(/numerics \(full image\) beyond the q8 limits: mean KLD/);
  }, 1_200_000);
});
