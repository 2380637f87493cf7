/**
 * `rocmflow push` against a real registry (Debian's docker-registry,
 * distribution 2.8, on 127.0.0.1): the CPU pipeline's base, full and minimal
 * images go up tagged by image and version with the manifests rocmflow
 * built; the full image sends only what the base did not; a second push
 * sends nothing; podman pulls the minimal image back and its CLI prints the
 * traced text.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeEngine } from '../../src/runtime/container-engine.js';
import { cliCommand, type WorkloadSpec } from '../../src/llama/workload.js';
import { which } from '../../src/util/which.js';
import { rocmflow } from '../helpers/cli.js';
import { cpuPipeline, SHARED_CACHE, type CpuPipeline } from '../helpers/cpu-pipeline.js';
import { startRegistry, unmountUnder, type Daemon } from '../helpers/daemons.js';

const tmp = mkdtempSync(join(tmpdir(), 'rocmflow-push-'));
const REGISTRY_BIN = which('docker-registry') ?? (which('/usr/bin/docker-registry') ? '/usr/bin/docker-registry' : null);

describe.skipIf(!REGISTRY_BIN || !which('skopeo'))('rocmflow push to a registry on 127.0.0.1', () => {
  let p: CpuPipeline;
  let registry: Daemon;
  let report: { images: Record<'base' | 'full' | 'minimal', { digest: string; version: string; layers: number }> };
  const push = (...extra: string[]) => rocmflow(p.ws, ['push', registry.address, '--target', 'cpu', '--tls-verify=false', ...extra], { ROCMFLOW_CACHE_DIR: SHARED_CACHE });
  const events = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

  beforeAll(async () => {
    p = await cpuPipeline();
    report = JSON.parse(readFileSync(join(p.out('trim-runtime'), 'report.json'), 'utf8'));
    registry = await startRegistry();
  }, 3_600_000);

  afterAll(async () => {
    if (process.env.CONTAINERS_STORAGE_CONF?.startsWith(tmp) && which('podman')) spawnSync('podman', ['system', 'reset', '--force'], { stdio: 'ignore' });
    await registry?.stop();
    if (registry) rmSync(registry.dir, { recursive: true, force: true });
    unmountUnder(tmp);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('pushes base, full and minimal, tagged by image and version, with the built manifests; the full image sends only llama.cpp', async () => {
    const r = push('--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [base, full, minimal] = events(r.stdout);
    expect([base.image, full.image, minimal.image]).toEqual(['base', 'full', 'minimal']);
    for (const e of [base, full, minimal]) {
      expect(e.repository).toBe(`${registry.address}/rocmflow/llama-cpu`);
      expect(e.digest).toBe(report.images[e.image as 'base'].digest);
    }
    // a layer and the config each, all new
    expect(base.sent).toHaveLength(report.images.base.layers + 1);
    expect(base.skipped).toEqual([]);
    // the base's layers are already there: the llama.cpp layer and the config go up
    expect(full.skipped).toHaveLength(report.images.base.layers);
    expect(full.sent).toHaveLength(2);
    expect(full.skipped.every((d: string) => base.sent.includes(d))).toBe(true);
    const tags = (await (await fetch(`http://${registry.address}/v2/rocmflow/llama-cpu/tags/list`)).json()) as { tags: string[] };
    const v = report.images.minimal.version;
    expect(tags.tags.sort()).toEqual(['base', `base-${v}`, 'full', `full-${v}`, 'minimal', `minimal-${v}`].sort());
    // the registry serves the manifest rocmflow wrote, byte for byte
    const res = await fetch(`http://${registry.address}/v2/rocmflow/llama-cpu/manifests/minimal-${v}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(res.headers.get('docker-content-digest')).toBe(report.images.minimal.digest);
  }, 600_000);

  it('a second push sends nothing: every blob is already in the registry', () => {
    const r = push('--json');
    expect(r.code).toBe(0);
    for (const e of events(r.stdout)) {
      expect(e.sent).toEqual([]);
      expect(e.skipped.length).toBe(report.images[e.image as 'base'].layers + 1);
    }
    const human = push('--images', 'minimal');
    expect(human.stdout).toMatch(/^minimal: .*\/rocmflow\/llama-cpu:minimal-\S+ and :minimal, 0 blobs sent, 2 already in the registry \(sha256:[0-9a-f]{64}, same manifest digest as built\)$/m);
  }, 600_000);

  it.skipIf(!which('podman'))('podman pulls the minimal image back and its CLI prints the traced text', async () => {
    mkdirSync(join(tmp, 'podman'));
    writeFileSync(join(tmp, 'storage.conf'), `[storage]\ndriver = "overlay"\ngraphroot = "${join(tmp, 'podman', 'root')}"\nrunroot = "${join(tmp, 'podman', 'run')}"\n`);
    process.env.CONTAINERS_STORAGE_CONF = join(tmp, 'storage.conf');
    const traced = JSON.parse(readFileSync(join(p.out('strace-trace'), 'workload.json'), 'utf8')) as { spec: WorkloadSpec; cli: string; texts: Record<string, string> };
    const ref = `${registry.address}/rocmflow/llama-cpu:minimal-${report.images.minimal.version}`;
    const engine = await probeEngine({ name: 'podman', pull: { ref, tlsVerify: false }, image: ref, check: ['/opt/llama/bin/llama-server', '--version'] });
    const [cli, ...args] = cliCommand(traced.spec, { binDir: '/opt/llama/bin', model: '/models/model.gguf', cli: traced.cli }, false);
    const out = execFileSync(engine.bin, [
      ...engine.global, 'run', '--rm', '--network', 'host', ...engine.run, '-v', `${p.out('model')}:/models:ro`, '--entrypoint', cli!, ref, ...args,
    ], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toBe(traced.texts.cli);
  }, 600_000);
});
