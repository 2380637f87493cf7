/**
 * The CPU pipeline's images as users get them: one name, the provenance
 * annotations and a true creation time in both archives; loaded and run by
 * real container engines (podman; Debian's docker.io daemon with vfs and no
 * bridge), where llama-server serves the traced requests and the CLI prints
 * the traced text, identical to the trace's; `rocmflow exec` finds the
 * engine flags this machine needs by probing.
 *
 * podman works in a temp store (CONTAINERS_STORAGE_CONF), docker in a
 * daemon of its own; only the ~20 MB minimal image is run (vfs copies
 * layers).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedProbe, probeEngine, runArgv, type ContainerEngine } from '../../src/runtime/container-engine.js';
import { containerRunner } from '../../src/pipeline/container-runner.js';
import { cliCommand, runWorkload, textsOf, type WorkloadSpec } from '../../src/llama/workload.js';
import { complete } from '../../src/llama/client.js';
import { freePort, LlamaServer } from '../../src/llama/server.js';
import { which } from '../../src/util/which.js';
import { rocmflow } from '../helpers/cli.js';
import { cpuPipeline, SHARED_CACHE, type CpuPipeline } from '../helpers/cpu-pipeline.js';
import { DOCKERD, startDockerd, unmountUnder, type Daemon } from '../helpers/daemons.js';

const tmp = mkdtempSync(join(tmpdir(), 'rocmflow-images-'));
const NAME = 'localhost/rocmflow/llama-cpu:minimal';
const SERVER = '/opt/llama/bin/llama-server';
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

let p: CpuPipeline;
let images: string;
let traced: { spec: WorkloadSpec; cli: string; texts: Record<string, string> };
let build: { commit: string; commitTime: number; describe: string };
let models: string;

beforeAll(async () => {
  p = await cpuPipeline();
  images = join(p.out('trim-runtime'), 'images');
  traced = json(join(p.out('strace-trace'), 'workload.json'));
  build = json(join(p.out('build-llama'), 'build-info.json'));
  models = p.out('model');
  // podman's store for this file: a temp directory, not the machine's
  mkdirSync(join(tmp, 'podman'));
  writeFileSync(join(tmp, 'storage.conf'), `[storage]\ndriver = "overlay"\ngraphroot = "${join(tmp, 'podman', 'root')}"\nrunroot = "${join(tmp, 'podman', 'run')}"\n`);
  process.env.CONTAINERS_STORAGE_CONF = join(tmp, 'storage.conf');
}, 3_600_000);

afterAll(() => {
  if (which('podman')) spawnSync('podman', ['system', 'reset', '--force'], { stdio: 'ignore' });
  unmountUnder(tmp);
  rmSync(tmp, { recursive: true, force: true });
});

describe('the archives', () => {
  it('carry one name, the provenance annotations and the llama.cpp commit time', () => {
    const report = json(join(p.out('trim-runtime'), 'report.json'));
    expect(report.images.minimal.name).toBe(NAME);
    expect(report.images.full.name).toBe('localhost/rocmflow/llama-cpu:full');
    expect(report.images.base.name).toBe('localhost/rocmflow/llama-cpu:base');
    const created = new Date(build.commitTime * 1000).toISOString().replace('.000Z', 'Z');
    expect(build.commitTime).toBeGreaterThan(Date.parse('2023-01-01') / 1000);

    const oci = `oci-archive:${join(images, 'minimal.oci.tar')}`;
    const config = JSON.parse(sh('skopeo', ['inspect', '--config', oci]));
    const manifest = JSON.parse(sh('skopeo', ['inspect', '--raw', oci]));
    expect(config.created).toBe(created);
    expect(config.config.Entrypoint).toEqual([SERVER]);
    expect(config.config.Env).toEqual(expect.arrayContaining(['LLAMA_ARG_HOST=0.0.0.0', 'LLAMA_ARG_PORT=8080', 'LLAMA_ARG_MODEL=/models/model.gguf']));
    expect(config.config.Env.find((e: string) => e.startsWith('PATH='))).toMatch(/^PATH=\/opt\/llama\/bin:/);
    for (const where of [manifest.annotations, config.config.Labels]) {
      expect(where).toMatchObject({
        'org.opencontainers.image.title': NAME,
        'org.opencontainers.image.revision': build.commit,
        'org.opencontainers.image.source': 'https://github.com/ggml-org/llama.cpp',
        'org.opencontainers.image.version': build.describe,
        'org.opencontainers.image.created': created,
        'org.rocmflow.target': 'cpu',
        'org.rocmflow.image': 'minimal',
      });
    }
    // the layout's index names the image as podman will
    const index = JSON.parse(sh('tar', ['-xOf', join(images, 'minimal.oci.tar'), 'index.json']));
    expect(index.manifests[0].annotations['org.opencontainers.image.ref.name']).toBe(NAME);
    const docker = JSON.parse(sh('skopeo', ['inspect', `docker-archive:${join(images, 'minimal.docker.tar')}`]));
    expect(JSON.parse(sh('tar', ['-xOf', join(images, 'minimal.docker.tar'), 'manifest.json']))[0].RepoTags).toEqual([NAME]);
    expect(docker.Labels['org.opencontainers.image.revision']).toBe(build.commit);
    expect(docker.Created).toBe(created);
  });

  it('the base image is the full one without llama.cpp, sharing its layers', () => {
    const full = JSON.parse(sh('skopeo', ['inspect', `oci:${join(images, 'full.oci')}`]));
    const base = JSON.parse(sh('skopeo', ['inspect', `oci:${join(images, 'base.oci')}`]));
    expect(base.Layers.length).toBe(full.Layers.length - 1);
    expect(full.Layers.slice(0, base.Layers.length)).toEqual(base.Layers);
    expect(base.Labels['org.rocmflow.image']).toBe('base');
    const config = JSON.parse(sh('skopeo', ['inspect', '--config', `oci:${join(images, 'base.oci')}`]));
    expect(config.config.Entrypoint).toBeUndefined();
  });
});

describe.skipIf(!which('podman'))('podman', () => {
  const probeFile = () => join(p.ws, 'state', 'container-engines.json');
  let engine: ContainerEngine;

  it('`rocmflow exec` probes the flags podman needs here, loads the image and runs the CLI in it: the traced text', () => {
    rmSync(probeFile(), { force: true });
    const args = cliCommand(traced.spec, { binDir: '/opt/llama/bin', model: '/models/model.gguf', cli: traced.cli }, false).slice(1);
    const r = rocmflow(p.ws, ['exec', '--target', 'cpu', '--engine', 'podman', '--entrypoint', traced.cli, '--models-dir', models, '--', ...args], { ROCMFLOW_CACHE_DIR: SHARED_CACHE });
    expect(r.stderr).not.toMatch(/MaxListenersExceededWarning/);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(traced.texts.cli);
    // what was probed is remembered, with the error behind each flag
    const probes = Object.values(json(probeFile())) as { global: string[]; run: string[]; reasons: string[] }[];
    expect(probes).toHaveLength(1);
    expect(probes[0]!.reasons.length).toBe([...probes[0]!.global, ...probes[0]!.run].filter((f) => f.startsWith('--')).length);
    for (const line of probes[0]!.reasons) expect(line).toMatch(/^--\S+.*: \S/);
    // the dry run shows the remembered flags
    const dry = rocmflow(p.ws, ['exec', '--target', 'cpu', '--engine', 'podman', '--dry-run', '--models-dir', models], { ROCMFLOW_CACHE_DIR: SHARED_CACHE });
    expect(dry.code).toBe(0);
    const line = dry.stdout.split('\n').find((l) => / run --rm /.test(l))!;
    for (const f of [...probes[0]!.global, ...probes[0]!.run]) expect(line).toContain(f);
    expect(line).toContain(`-v ${models}:/models:ro`);
    expect(line.trim().endsWith(NAME)).toBe(true);
  }, 600_000);

  it('loads the OCI and the docker archive as one image, by the name the report gives, created when llama.cpp was committed', async () => {
    const remembered = await cachedProbe(probeFile(), { name: 'podman', image: NAME, check: [SERVER, '--version'] });
    expect(remembered.cached).toBe(true);
    engine = remembered;
    const load = (archive: string) => sh(engine.bin, [...engine.global, 'load', '-i', join(images, archive)]);
    expect(load('minimal.oci.tar')).toContain(`Loaded image: ${NAME}`);
    expect(load('minimal.docker.tar')).toContain(`Loaded image: ${NAME}`);
    const listed = JSON.parse(sh(engine.bin, [...engine.global, 'images', '--format', 'json'])) as { Id: string; Names: string[]; Created: number }[];
    const ours = listed.filter((i) => i.Names?.some((n) => n.startsWith('localhost/rocmflow/')));
    expect(ours).toHaveLength(1);
    expect(ours[0]!.Names).toEqual([NAME]);
    expect(ours[0]!.Created).toBe(build.commitTime);
  }, 300_000);

  it('serves the traced requests from the minimal image with identical text, and llama-completion says the same', async () => {
    const runner = containerRunner({ engine, image: NAME, binds: [{ source: models, dest: '/models' }] });
    const r = await runWorkload({ spec: traced.spec, paths: { binDir: '/opt/llama/bin', model: '/models/model.gguf', cli: traced.cli }, runner, gpu: false });
    expect(textsOf(r)).toEqual(traced.texts);
    expect(r.server.cleanStop).toBe(true);
  }, 300_000);

  it('its entrypoint serves /models/model.gguf, on the port LLAMA_ARG_PORT gives', async () => {
    const port = await freePort();
    const argv = runArgv(engine, { image: NAME, args: [], binds: [{ source: models, dest: '/models' }], env: { LLAMA_ARG_PORT: String(port) } });
    const server = await LlamaServer.start({ argv, port, healthTimeoutMs: 120_000 });
    try {
      const props = (await (await fetch(`${server.baseUrl}/props`)).json()) as { model_path?: string };
      expect(props.model_path).toBe('/models/model.gguf');
      const out = await complete(server.baseUrl, { prompt: 'Once upon a time', nPredict: 4, seed: 1, stream: false });
      expect(out.text.length).toBeGreaterThan(0);
    } finally {
      await server.stop();
    }
  }, 300_000);

  it('on a host configured for the systemd cgroup manager without systemd running, the probe adds --cgroup-manager=cgroupfs', async () => {
    writeFileSync(join(tmp, 'containers.conf'), '[engine]\ncgroup_manager = "systemd"\n');
    process.env.CONTAINERS_CONF = join(tmp, 'containers.conf');
    try {
      const e = await probeEngine({ name: 'podman', archive: join(images, 'minimal.docker.tar'), image: NAME, check: [SERVER, '--version'] });
      expect(e.global).toContain('--cgroup-manager=cgroupfs');
      expect(e.reasons.find((r) => r.startsWith('--cgroup-manager=cgroupfs'))).toMatch(/systemd/);
    } finally {
      delete process.env.CONTAINERS_CONF;
    }
  }, 300_000);

  it.skipIf(process.getuid?.() !== 0)('on a store that sits on an overlayfs, the probe switches to the vfs driver and the image runs', async () => {
    const ov = join(tmp, 'ov');
    for (const d of ['lower', 'upper', 'work', 'mnt']) mkdirSync(join(ov, d), { recursive: true });
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${ov}/lower,upperdir=${ov}/upper,workdir=${ov}/work`, `${ov}/mnt`]);
    const global = ['--root', join(ov, 'mnt', 'root'), '--runroot', join(ov, 'run')];
    try {
      const e = await probeEngine({ name: 'podman', global, archive: join(images, 'minimal.docker.tar'), image: NAME, check: [SERVER, '--version'] });
      expect(e.global.slice(0, global.length)).toEqual(global);
      expect(e.global.join(' ')).toContain('--storage-driver vfs');
      expect(e.reasons.find((r) => r.startsWith('--storage-driver vfs'))).toMatch(/overlay/);
      expect(sh(e.bin, [...e.global, 'info', '--format', '{{.Store.GraphDriverName}}']).trim()).toBe('vfs');
      spawnSync(e.bin, [...e.global, 'system', 'reset', '--force'], { stdio: 'ignore' });
      // a store that podman already used with the failing default keeps it: the error says how to get out
      const used = ['--root', join(ov, 'mnt', 'used'), '--runroot', join(ov, 'run2')];
      spawnSync('podman', [...used, 'info'], { stdio: 'ignore' });
      await expect(probeEngine({ name: 'podman', global: used, archive: join(images, 'minimal.docker.tar'), image: NAME, check: [SERVER, '--version'] }))
        .rejects.toMatchObject({ code: 'E_ENGINE', message: expect.stringMatching(/database configuration mismatch .*podman system reset/) });
    } finally {
      execFileSync('umount', [`${ov}/mnt`]);
    }
  }, 300_000);
});

describe.skipIf(!DOCKERD || !which('docker'))("Debian's docker daemon (vfs, no bridge)", () => {
  let daemon: Daemon;
  let engine: ContainerEngine;
  beforeAll(async () => {
    daemon = await startDockerd();
    process.env.DOCKER_HOST = daemon.address;
  }, 120_000);
  afterAll(async () => {
    delete process.env.DOCKER_HOST;
    await daemon?.stop();
    if (daemon) rmSync(daemon.dir, { recursive: true, force: true });
  });

  it('loads the docker archive under the same name and serves the traced requests with identical text', async () => {
    engine = await probeEngine({ name: 'docker', archive: join(images, 'minimal.docker.tar'), image: NAME, check: [SERVER, '--version'] });
    const listed = sh('docker', ['images', '--format', '{{.Repository}}:{{.Tag}} {{.CreatedAt}}']);
    expect(listed).toContain(NAME);
    const runner = containerRunner({ engine, image: NAME, binds: [{ source: models, dest: '/models' }] });
    const r = await runWorkload({ spec: traced.spec, paths: { binDir: '/opt/llama/bin', model: '/models/model.gguf', cli: traced.cli }, runner, gpu: false });
    expect(textsOf(r)).toEqual(traced.texts);
  }, 300_000);
});
