import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import cpu from '../../plugins/cpu.js';
import gfx1151 from '../../plugins/gfx1151.js';
import { buildLlama, buildLlamaOptionsSchema, type BuildInfo } from '../../src/llama/build.js';
import { readRunpath } from '../../src/llama/install.js';
import type { Progress, ResolvedTarget } from '../../src/plugin/types.js';
import { llamaBundle } from '../helpers/llama.js';

const cpuTarget: ResolvedTarget = { name: 'cpu', definition: cpu, detection: null, options: {} };

function dirs() {
  const base = mkdtempSync(join(tmpdir(), 'rocmflow-build-'));
  for (const d of ['out', 'work', 'cache']) mkdirSync(join(base, d));
  return { base, outDir: join(base, 'out'), workDir: join(base, 'work'), cacheDir: join(base, 'cache') };
}

describe('buildLlama: a real CPU build from the node-llama-cpp bundle', () => {
  let info: BuildInfo;
  let outDir: string;
  let bundleHead: string;
  const updates: { done: number; total?: number }[] = [];
  let finished = false;

  beforeAll(async () => {
    const bundle = await llamaBundle();
    bundleHead = execFileSync('git', ['bundle', 'list-heads', bundle], { encoding: 'utf8' }).split('\n').find((l) => l.endsWith(' HEAD'))!.split(' ')[0]!;
    const d = dirs();
    outDir = d.outDir;
    const progress: Progress = {
      start: () => ({ update: (done, total) => updates.push({ done, total }), done: () => { finished = true; } }),
    };
    const options = buildLlamaOptionsSchema.parse({ source: { bundle }, targets: ['llama-completion'] }, 'tasks.build-llama');
    info = await buildLlama({ target: cpuTarget, options, ...d, progress });
  }, 1_500_000);

  it('records the exact commit, the flags and the tools', () => {
    expect(info.commit).toBe(bundleHead);
    const onDisk = JSON.parse(readFileSync(join(outDir, 'build-info.json'), 'utf8'));
    expect(onDisk.commit).toBe(bundleHead);
    expect(onDisk.flags).toContain('-DGGML_NATIVE=OFF');
    expect(onDisk.flags).toContain('-DBUILD_SHARED_LIBS=ON');
    expect(onDisk.tools.cmake).toMatch(/^cmake version \d/);
    expect(onDisk.tools['C++ compiler']).toBeTruthy();
    expect(onDisk.ccache).toBe(existsSync('/usr/bin/ccache'));
  });

  it('keeps the full build log and reports progress', () => {
    const log = readFileSync(join(outDir, 'build.log'), 'utf8');
    expect(log).toContain('$ cmake -S');
    expect(log).toMatch(/\[\d+\/\d+\]|\[\s*\d+%\]/);
    expect(updates.length).toBeGreaterThan(5);
    const last = updates[updates.length - 1]!;
    expect(last.done).toBe(last.total);
    expect(finished).toBe(true);
  });

  it('installs executables and libraries side by side with RUNPATH $ORIGIN only', async () => {
    const bin = join(outDir, 'llama/bin');
    expect(statSync(join(bin, 'llama-completion')).mode & 0o111).not.toBe(0);
    expect(info.installed.libraries.some((l) => /libllama\.so/.test(l))).toBe(true);
    expect(info.installed.libraries.some((l) => /libggml-cpu\.so/.test(l))).toBe(true);
    expect(info.installed.absoluteRunpaths).toEqual([]);
    expect(await readRunpath(join(bin, 'llama-completion'))).toEqual(['$ORIGIN']);
  });

  it('runs when the directory is moved elsewhere (relocatable)', () => {
    const moved = join(mkdtempSync(join(tmpdir(), 'rocmflow-moved-')), 'opt-llama');
    cpSync(join(outDir, 'llama'), moved, { recursive: true, verbatimSymlinks: true });
    const exe = join(moved, 'bin/llama-completion');
    const env = { PATH: '/usr/bin:/bin' };
    const ldd = execFileSync('ldd', [exe], { encoding: 'utf8', env });
    expect(ldd).toMatch(new RegExp(`libllama\\.so\\S* => ${moved}/bin/libllama\\.so`));
    const out = execFileSync(exe, ['--version'], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    const both = out + execFileSync('sh', ['-c', `"${exe}" --version 2>&1`], { encoding: 'utf8', env });
    expect(both).toContain(bundleHead.slice(0, 7));
  });
});

describe('buildLlama: missing toolchain', () => {
  it('names the missing C++ compiler', async () => {
    const d = dirs();
    const options = buildLlamaOptionsSchema.parse({ source: { bundle: '/nonexistent.bundle' } }, 'tasks.build-llama');
    await expect(buildLlama({ target: cpuTarget, options, ...d, env: { ...process.env, CXX: '/nonexistent/c++' } })).rejects.toMatchObject({
      code: 'E_MISSING_TOOL',
      message: expect.stringMatching(/^C\+\+ compiler not found: apt install g\+\+/),
    });
    expect(readFileSync(join(d.outDir, 'build.log'), 'utf8')).toContain('C++ compiler not found');
  });

  it('a ROCm target without a fetched ROCm says to run fetch-rocm', async () => {
    const d = dirs();
    const options = buildLlamaOptionsSchema.parse({}, 'tasks.build-llama');
    const target: ResolvedTarget = { name: 'gfx1151', definition: gfx1151, detection: null, options: {} };
    await expect(buildLlama({ target, options, ...d })).rejects.toMatchObject({ code: 'E_MISSING_TOOL', message: expect.stringMatching(/fetch-rocm/) });
  });

  it('a ROCm root without its compiler names the HIP compiler', async () => {
    const d = dirs();
    const rocm = join(d.base, 'rocm');
    mkdirSync(join(rocm, 'lib'), { recursive: true });
    const options = buildLlamaOptionsSchema.parse({}, 'tasks.build-llama');
    const target: ResolvedTarget = { name: 'gfx1151', definition: gfx1151, detection: null, options: {} };
    await expect(buildLlama({ target, options, ...d, runtimeRoot: rocm })).rejects.toMatchObject({
      code: 'E_MISSING_TOOL',
      message: expect.stringMatching(/^HIP compiler \(lib\/llvm\/bin\/clang or bin\/hipcc under .*rocm\) not found/),
    });
  });

  it('rejects bad options with the key path', () => {
    expect(() => buildLlamaOptionsSchema.parse({ cmakeFlags: '-DX=1' }, 'tasks.build-llama')).toThrow('tasks.build-llama.cmakeFlags: expected an array of strings');
    expect(() => buildLlamaOptionsSchema.parse({ source: { git: 1 } }, 'tasks.build-llama')).toThrow(/tasks\.build-llama\.source/);
    expect(() => buildLlamaOptionsSchema.parse({ buildTyp: 'Release' }, 'tasks.build-llama')).toThrow(/buildTyp: unknown key \(did you mean "buildType"\?\)/);
  });
});
