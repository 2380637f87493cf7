import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { doctorCommand } from '../../src/cli/commands/doctor.js';
import { targetsCommand } from '../../src/cli/commands/targets.js';
import type { Command, CommandIO } from '../../src/cli/command.js';
import { cpuNode, fakeSysfs, rx7900, strixHalo } from '../gpu/fake-sysfs.js';
import { emptyPath, fakeNvidiaSmi, pathWith } from './fake-tools.js';

const REQUIRED = ['strace', 'bwrap', 'cmake', 'git', 'c++', 'tar', 'zstd'];

// a project without a config file: only the built-in targets
const noProject = mkdtempSync(join(tmpdir(), 'rocmflow-project-'));

async function run(cmd: Command, argv: string[], env: NodeJS.ProcessEnv = process.env, cwd = noProject) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CommandIO = { out: (l) => out.push(l), err: (l) => err.push(l), cwd, env, color: false, signal: new AbortController().signal };
  const code = await cmd.run(argv, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('rocmflow targets', () => {
  it('lists every target with its detection on a dGPU + iGPU host', async () => {
    const root = fakeSysfs([cpuNode, rx7900, strixHalo]);
    const r = await run(targetsCommand, ['--json', '--root', root], { PATH: emptyPath() });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    // both GPUs found: auto takes the one the system lists first (HIP device 0)
    expect(j.auto).toBe('gfx1100');
    expect(j.targets.map((t: { name: string; detected: boolean; deviceIndex: number | null }) => [t.name, t.detected, t.deviceIndex])).toEqual([
      ['gfx1100', true, 0], ['gfx1151', true, 1], ['cuda', false, null], ['cpu', true, null],
    ]);
    expect(j.targets[2].detection).toBe('nvidia-smi not found');
  });

  it('prints a table and the auto choice on this host', async () => {
    const r = await run(targetsCommand, []);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^TARGET\s+FAMILY\s+RUNTIME\s+DETECTED$/m);
    expect(r.out).toMatch(/^gfx1151\s+rocm\s+therock gfx1151\s+(yes|no)/m);
    expect(r.out).toMatch(/^cpu\s+cpu\s+none\s+yes/m);
    expect(r.out).toMatch(/^--target auto → \S+: /m);
  });

  it('a target added as one plugin file (gfx1201) is listed, detected and picked', async () => {
    const project = mkdtempSync(join(tmpdir(), 'rocmflow-project-'));
    const factory = join(import.meta.dirname, '../../src/gpu/amd-target.ts');
    writeFileSync(join(project, 'gfx1201.ts'), `import { amdTarget } from ${JSON.stringify(factory)};\nexport default amdTarget({ name: 'gfx1201', arch: 'gfx1201', family: 'gfx120X-all', description: 'AMD RDNA4 (gfx1201)' });\n`);
    writeFileSync(join(project, 'rocmflow.config.mjs'), `export default { plugins: ['./gfx1201.ts'], targets: { gfx1201: { device: 0 } } };\n`);
    const root = fakeSysfs([cpuNode, { ...rx7900, gfxTargetVersion: 120001, renderMinor: 128 }]);
    const r = await run(targetsCommand, ['--json', '--root', root], { PATH: emptyPath() }, project);
    const j = JSON.parse(r.out);
    expect(j.targets.map((t: { name: string }) => t.name)).toEqual(['gfx1100', 'gfx1151', 'gfx1201', 'cuda', 'cpu']);
    expect(j.targets[2]).toMatchObject({ runtime: 'therock gfx120X-all', detected: true, deviceIndex: 0, detection: 'gfx1201 (discrete) at KFD node 1: HIP device 0 of 1, /dev/dri/renderD128' });
    expect(j.auto).toBe('gfx1201');
    // the config's targets.<name> options reach detection (a fresh project: ESM caches the imported config)
    const project2 = mkdtempSync(join(tmpdir(), 'rocmflow-project-'));
    writeFileSync(join(project2, 'gfx1201.ts'), `import { amdTarget } from ${JSON.stringify(factory)};\nexport default amdTarget({ name: 'gfx1201', arch: 'gfx1201', family: 'gfx120X-all', description: 'AMD RDNA4 (gfx1201)' });\n`);
    writeFileSync(join(project2, 'rocmflow.config.mjs'), `export default { plugins: ['./gfx1201.ts'], targets: { gfx1201: { device: 'first' } } };\n`);
    // validated once, when the config loads: the file and the key, before any detection
    await expect(run(targetsCommand, ['--json', '--root', root], { PATH: emptyPath() }, project2)).rejects.toMatchObject({
      code: 'E_CONFIG', exitCode: 2, message: `${join(project2, 'rocmflow.config.mjs')}: targets.gfx1201.device: expected an integer`,
    });
  });

  it('an unknown option is a usage error', async () => {
    await expect(run(targetsCommand, ['--jsn'])).rejects.toMatchObject({ exitCode: 2, message: 'targets: unknown option --jsn (did you mean --json?)' });
  });
});

describe('rocmflow doctor', () => {
  it('exits 0 when everything --target auto needs is here (this machine: cpu)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rocmflow-noroot-'));
    const r = await run(doctorCommand, ['--root', root]);
    expect(r.out).toMatch(/^ {2}strace\s+ok\s+strace -- version \d/m);
    expect(r.out).toContain('Recommended: --target cpu');
    expect(r.out).toContain('Everything --target auto needs is present.');
    expect(r.code).toBe(0);
  });

  it('names each missing tool with how to install it, and exits 1', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rocmflow-noroot-'));
    const r = await run(doctorCommand, ['--root', root, '--json'], { PATH: pathWith(REQUIRED.filter((t) => t !== 'strace' && t !== 'bwrap')) });
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out);
    expect(j.problems).toEqual(['strace not found: apt install strace (dnf install strace)', 'bwrap not found: apt install bubblewrap (dnf install bubblewrap)']);
    expect(j.tools.find((t: { name: string }) => t.name === 'cmake')).toMatchObject({ found: true, version: expect.stringMatching(/^cmake version/) });
  });

  it('on a Strix Halo host recommends gfx1151 and needs /dev/kfd', async () => {
    const path = pathWith(REQUIRED);
    const withKfd = await run(doctorCommand, ['--root', fakeSysfs([cpuNode, strixHalo], { devKfd: true }), '--json'], { PATH: path });
    expect(JSON.parse(withKfd.out)).toMatchObject({ auto: { target: 'gfx1151' }, kfd: { exists: true, readWrite: true }, problems: [], amdGpus: [{ node: 1, arch: 'gfx1151', deviceIndex: 0, integrated: true, renderNode: '/dev/dri/renderD129' }] });
    expect(withKfd.code).toBe(0);
    const noKfd = await run(doctorCommand, ['--root', fakeSysfs([cpuNode, strixHalo])], { PATH: path });
    expect(noKfd.code).toBe(1);
    expect(noKfd.out).toContain('/dev/kfd missing: the amdgpu driver is not loaded');
  });

  it('lists NVIDIA GPUs and recommends cuda when nvidia-smi sees one', async () => {
    const path = `${pathWith(REQUIRED)}:${fakeNvidiaSmi('0, NVIDIA GeForce RTX 4090, 8.9, 24564, 0\n')}`;
    const r = await run(doctorCommand, ['--root', mkdtempSync(join(tmpdir(), 'rocmflow-noroot-'))], { PATH: path });
    expect(r.out).toContain('NVIDIA: NVIDIA GeForce RTX 4090 (compute 8.9) device 0');
    expect(r.out).toContain('Recommended: --target cuda');
    expect(r.code).toBe(0);
  });
});
