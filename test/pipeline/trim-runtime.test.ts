/**
 * The acceptance test of the main job, on the CPU: `rocmflow run
 * trim-runtime --target cpu` with the project's own config (in a temp
 * workspace that only moves the state; the cache is the one the pipeline
 * tests share, see test/helpers/cpu-pipeline.ts): llama.cpp built from
 * node-llama-cpp's bundle, llama-server and the CLI traced on the generated
 * tiny model, trimmed, verified with identical text, written as OCI images
 * that skopeo and umoci accept. Then: a second run is all fresh, a forced
 * rerun takes the full image's layers from the store, and one changed
 * cmake flag reruns build-llama and what follows, nothing before.
 *
 * One pipeline run is shared by every assertion (beforeAll); ccache (shared,
 * in the user's cache) keeps the rebuilds short.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, rocmflowAsync, states, type CliResult } from '../helpers/cli.js';
import { SHARED_CACHE } from '../helpers/cpu-pipeline.js';

const ws = mkdtempSync(join(tmpdir(), 'rocmflow-e2e-'));
const out = (task: string) => join(ws, 'state', 'out', 'cpu', task);
const env = {
  // the cache the other pipeline tests share (test/helpers/cpu-pipeline.ts): one llama.cpp build for all of them
  ROCMFLOW_CACHE_DIR: SHARED_CACHE,
};

function writeConfig(extraFlags: string[]): void {
  writeFileSync(join(ws, 'rocmflow.config.ts'), `import project from ${JSON.stringify(join(REPO, 'rocmflow.config.ts'))};
import { DEFAULT_LLAMA_CMAKE_FLAGS } from ${JSON.stringify(join(REPO, 'src/llama/build.ts'))};
export default async () => {
  const c = project;
  return { ...c, stateDir: ${JSON.stringify(join(ws, 'state'))},
    tasks: { ...c.tasks, 'build-llama': { cmakeFlags: [...DEFAULT_LLAMA_CMAKE_FLAGS, ...${JSON.stringify(extraFlags)}] } } };
};
`);
}

const run = (args: string[]): Promise<CliResult> => rocmflowAsync(ws, args, env).done;
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

let first: CliResult;

beforeAll(async () => {
  writeConfig([]);
  first = await run(['run', 'trim-runtime', '--target', 'cpu', '--json']);
  if (first.code !== 0) console.error(first.stdout.split('\n').filter((l) => /"(task|summary)"/.test(l)).join('\n'), first.stderr);
}, 3_600_000);

afterAll(() => rmSync(ws, { recursive: true, force: true }));

describe('rocmflow run trim-runtime --target cpu', () => {
  it('builds, traces, trims and verifies identical text', () => {
    expect(first.code).toBe(0);
    const st = states(first);
    for (const t of ['detect-target', 'fetch-rocm', 'build-llama', 'model', 'strace-trace', 'snapshot-rocm', 'trim-runtime']) expect(st[t]).toMatch(/^(ran|cached)$/);

    const traced = json(join(out('strace-trace'), 'workload.json'));
    expect(traced.result.requests.map((r: { stream: boolean }) => r.stream)).toEqual([false, true, false, true]);
    for (const r of traced.result.requests) {
      expect(r.text.length).toBeGreaterThan(0);
      expect(r.timings.predictedTokens).toBe(r.nPredict);
      expect(r.timings.predictedPerSecond).toBeGreaterThan(0);
    }
    // same prompt, same seed: streamed and not give the same text
    expect(traced.texts['short-stream']).toBe(traced.texts.short);
    expect(traced.result.cli.exitCode).toBe(0);
    expect(traced.result.server.cleanStop).toBe(true);
    expect(traced.trace.executables).toEqual(expect.arrayContaining(['/opt/llama/bin/llama-server', `/opt/llama/bin/${traced.cli}`]));

    const report = json(join(out('trim-runtime'), 'report.json'));
    expect(report.verify.ok).toBe(true);
    expect(report.verify.texts).toEqual(traced.texts);
    const summary = first.events.find((e) => e.type === 'summary');
    expect(JSON.stringify(summary)).toMatch(/verified: 4 server requests \+ 1 llama-(completion|cli) run gave identical text in the trimmed root/);
    expect(JSON.stringify(summary)).toContain('reproducibility.json');
    // where the time went, per phase and per image, in the report and the summary
    expect(Object.keys(report.timings)).toEqual(['closure', 'assemble', 'strip', 'verification', 'full runtime listing', 'images', 'images: minimal', 'images: full', 'images: base']);
    for (const ms of Object.values(report.timings)) expect(ms).toBeGreaterThanOrEqual(0);
    expect(JSON.stringify(summary)).toMatch(/timings: closure [\d.]+ s, assemble [\d.]+ s, strip [\d.]+ s, verification [\d.]+ s, full runtime listing [\d.]+ s, images [\d.]+ s \(per image, the minimal one written alongside the other two: minimal [\d.]+ s, full [\d.]+ s, base [\d.]+ s\)/);
  });

  // 20 MB as `du -h` and the seed project's hand-made trim (~17 MB) count them: MiB
  it('keeps the minimal CPU runtime within 20 MiB, model not included', () => {
    const manifest = json(join(out('trim-runtime'), 'rootfs.manifest.json'));
    const paths: string[] = manifest.entries.map((e: { path: string }) => e.path);
    expect(paths).toContain('/opt/llama/bin/llama-server');
    expect(paths.some((p) => p.startsWith('/models'))).toBe(false);
    expect(manifest.bytes).toBeLessThanOrEqual(20 * 1024 * 1024);
    const report = json(join(out('trim-runtime'), 'report.json'));
    expect(report.full.bytes).toBeGreaterThan(5 * manifest.bytes);
    expect(report.byCategory.map((r: { key: string }) => r.key)).toEqual(expect.arrayContaining(['system', 'llama.cpp']));
    // three sizes: apparent (the manifest's bytes), allocated on disk (whole 4 KiB blocks), the minimal image's compressed layers
    expect(report.sizes.apparent).toBe(manifest.bytes);
    expect(report.sizes.allocated).toBeGreaterThanOrEqual(manifest.bytes * 0.9);
    expect(report.sizes.compressed).toBe(report.images.minimal.compressed);
    // the CPU has no fat binaries: nothing pruned, nothing to cover
    expect(report.fatbins).toEqual({ prune: null, arch: null, files: [] });
    expect(report.coverage).toEqual([]);
    expect(first.events.find((e) => e.type === 'summary').facts['trim-runtime'].sizes).toEqual(report.sizes);
    const repro = json(join(out('trim-runtime'), 'reproducibility.json'));
    expect(repro.llama.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(repro.model.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(repro.tools.strace).toMatch(/strace/);
  });

  it('writes images that skopeo inspects and umoci unpacks', () => {
    const images = join(out('trim-runtime'), 'images');
    const oci = JSON.parse(sh('skopeo', ['inspect', '--config', `oci-archive:${join(images, 'minimal.oci.tar')}`]));
    expect(oci.config.Entrypoint).toEqual(['/opt/llama/bin/llama-server']);
    expect(oci.config.Labels['org.opencontainers.image.title']).toBe('localhost/rocmflow/llama-cpu:minimal');
    const docker = JSON.parse(sh('skopeo', ['inspect', `docker-archive:${join(images, 'minimal.docker.tar')}`]));
    expect(docker.Layers).toHaveLength(1);
    const full = JSON.parse(sh('skopeo', ['inspect', `oci:${join(images, 'full.oci')}`]));
    expect(full.Layers.length).toBeGreaterThanOrEqual(2);
    // Debian's umoci reads no zstd layers: recompress to gzip with skopeo, then unpack
    sh('skopeo', ['copy', '--dest-compress-format', 'gzip', `oci-archive:${join(images, 'minimal.oci.tar')}`, `oci:${join(ws, 'oci-gz')}:minimal`]);
    sh('umoci', ['unpack', '--image', `${join(ws, 'oci-gz')}:minimal`, join(ws, 'bundle')]);
    expect(existsSync(join(ws, 'bundle/rootfs/opt/llama/bin/llama-server'))).toBe(true);
  });

  it('is all fresh the second time', async () => {
    const again = await run(['run', 'trim-runtime', '--target', 'cpu', '--json']);
    expect(again.code).toBe(0);
    const st = states(again);
    // detect-target, base-root, fetch-rocm, gpu-coverage, build-llama, model, numerics-reference, strace-trace, snapshot-rocm, trim-runtime
    expect(Object.keys(st).length).toBe(10);
    for (const s of Object.values(st)) expect(s).toMatch(/^(fresh|cached)$/);
  }, 300_000);

  it('a forced rerun takes the full image\'s layers from the store, made on an earlier run: the same image, nothing compressed again', async () => {
    const force = ['run', 'trim-runtime', '--target', 'cpu', '--force', 'trim-runtime', '--json'];
    // the first run may have been restored from the shared cache: this one makes the layers (or finds them) and remembers them
    const a = await run(force);
    expect(a.code).toBe(0);
    const ra = json(join(out('trim-runtime'), 'report.json'));
    const b = await run(force);
    expect(b.code).toBe(0);
    expect(states(b)['trim-runtime']).toBe('ran');
    const rb = json(join(out('trim-runtime'), 'report.json'));
    // the cpu target's full image: the host's library directories and llama.cpp, both unchanged
    expect(rb.images.full.layers).toBe(2);
    expect(rb.reusedLayers).toBe(2);
    expect(rb.images.full.digest).toBe(ra.images.full.digest);
    expect(rb.images.base.digest).toBe(ra.images.base.digest);
    const full = JSON.parse(sh('skopeo', ['inspect', `oci:${join(out('trim-runtime'), 'images', 'full.oci')}`]));
    expect(full.Layers).toHaveLength(2);
  }, 600_000);

  it('reruns build-llama and what follows when one cmake flag changes, and explain names it', async () => {
    writeConfig(['-DGGML_AVX512=OFF']);
    const explain = await run(['explain', 'build-llama', '--target', 'cpu']);
    expect(explain.stdout).toContain('-DGGML_AVX512=OFF');
    const r = await run(['run', 'trim-runtime', '--target', 'cpu', '--json']);
    expect(r.code).toBe(0);
    const st = states(r);
    for (const t of ['build-llama', 'strace-trace', 'trim-runtime']) expect(st[t]).toMatch(/^(ran|cached)$/);
    for (const t of ['fetch-rocm', 'snapshot-rocm', 'model', 'detect-target']) expect(st[t]).toBe('fresh');
  }, 3_600_000);
});
