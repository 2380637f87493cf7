/**
 * Config mistakes are reported when the config loads, naming the file and
 * the key: unknown task and target names (with the nearest ones), options
 * for a task or target that takes none, bad target options, two tasks or
 * targets with one name, an empty cache directory, a size that is not one.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cacheCommand } from '../../src/cli/commands/cache.js';
import { runCommand } from '../../src/cli/commands/run.js';
import { targetsCommand } from '../../src/cli/commands/targets.js';
import type { Command, CommandIO } from '../../src/cli/command.js';
import { cpuNode, fakeSysfs, rx7900 } from '../gpu/fake-sysfs.js';
import { emptyPath } from './fake-tools.js';

async function run(cmd: Command, argv: string[], cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CommandIO = { out: (l) => out.push(l), err: (l) => err.push(l), cwd, env: { ...process.env, PATH: emptyPath() }, color: false, signal: new AbortController().signal };
  const code = await cmd.run(argv, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** A fresh project (ESM caches an imported config by path) with these files. */
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'rocmflow-config-'));
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  return dir;
}

const config = (dir: string) => join(dir, 'rocmflow.config.mjs');

describe('target options are validated once, at load, with the file and the key', () => {
  it('a typo in targets.<name> fails `targets` (it printed a table and exited 0)', async () => {
    const dir = project({ 'rocmflow.config.mjs': `export default { targets: { gfx1151: { rocwmma: true } } };\n` });
    await expect(run(targetsCommand, ['--json'], dir)).rejects.toMatchObject({
      code: 'E_CONFIG', exitCode: 2, message: `${config(dir)}: targets.gfx1151.rocwmma: unknown key (did you mean "rocwmmaFlashAttention"?)`,
    });
  });

  it('and fails `run --dry-run` before any plan is printed', async () => {
    const dir = project({ 'rocmflow.config.mjs': `export default { target: 'cpu', targets: { cpu: { native: 'yes' } } };\n` });
    await expect(run(runCommand, ['--dry-run', '--json'], dir)).rejects.toMatchObject({
      code: 'E_CONFIG', message: `${config(dir)}: targets.cpu.native: expected true or false`,
    });
  });

  it('options for a target that is not there name the nearest target', async () => {
    const dir = project({ 'rocmflow.config.mjs': `export default { targets: { gfx1115: { uma: true } } };\n` });
    await expect(run(targetsCommand, [], dir)).rejects.toThrow(`${config(dir)}: targets.gfx1115: no such target (did you mean "gfx1100" or "gfx1151"?); targets: cpu, cuda, gfx1100, gfx1151`);
  });

  it('a target plugin importing only rocmflow/plugin, for an arch rocmflow does not know, gets its options parsed', async () => {
    const dir = project({
      'gfx1250.ts': [
        `import { amdTarget, KNOWN_AMD_ARCHES, type AmdTargetOptions } from 'rocmflow/plugin';`,
        `const known: readonly string[] = KNOWN_AMD_ARCHES;`,
        `if (known.includes('gfx1250')) throw new Error('this test wants an arch rocmflow does not know');`,
        `export default amdTarget({ name: 'gfx1250', arch: 'gfx1250', family: 'gfx125X-all', description: 'a future arch', extraArches: ['gfx1251'] });`,
      ].join('\n'),
      'rocmflow.config.mjs': `export default { plugins: ['./gfx1250.ts'], targets: { gfx1250: { device: 0, uma: true } } };\n`,
    });
    const root = fakeSysfs([cpuNode, { ...rx7900, gfxTargetVersion: 120500, renderMinor: 128 }]);
    const r = await run(targetsCommand, ['--json', '--root', root], dir);
    const j = JSON.parse(r.out);
    expect(j.targets.find((t: { name: string }) => t.name === 'gfx1250')).toMatchObject({ runtime: 'therock gfx125X-all', detected: true, deviceIndex: 0 });
    expect(j.auto).toBe('gfx1250');
  });

  it('amdTarget refuses an arch that is not one', async () => {
    const dir = project({
      'bad.ts': `import { amdTarget } from 'rocmflow/plugin';\nexport default amdTarget({ name: 'rx9070', arch: 'RX 9070', family: 'gfx120X-all', description: 'x' });\n`,
      'rocmflow.config.mjs': `export default { plugins: ['./bad.ts'] };\n`,
    });
    await expect(run(targetsCommand, [], dir)).rejects.toThrow(/plugin \.\/bad\.ts: cannot load: amdTarget\("rx9070"\): arch: expected an LLVM AMD GPU arch such as "gfx1201"/);
  });
});

describe('task options', () => {
  it('a misspelt task name is an error with the nearest name (it was ignored)', async () => {
    const dir = project({ 'rocmflow.config.mjs': `export default { target: 'cpu', tasks: { 'biuld-llama': { cmakeFlags: [] } } };\n` });
    await expect(run(runCommand, ['--dry-run', '--json'], dir)).rejects.toMatchObject({
      code: 'E_CONFIG', exitCode: 2, message: expect.stringContaining(`${config(dir)}: tasks.biuld-llama: no such task (did you mean "build-llama"?)`),
    });
  });

  it('options for a task that takes none are an error (they were ignored)', async () => {
    // every built-in task takes options; a plugin task without a schema takes none
    const dir = project({
      'hello.ts': `import { defineTask } from 'rocmflow/plugin';\nexport default defineTask({ name: 'hello', outputs: ['x'], async run(ctx) { await ctx.$\`touch x\`; return { summary: [] }; } });\n`,
      'rocmflow.config.mjs': `export default { target: 'cpu', plugins: ['./hello.ts'], tasks: { hello: { device: 1 } } };\n`,
    });
    await expect(run(targetsCommand, [], dir)).rejects.toThrow(`${config(dir)}: tasks.hello: task "hello" takes no options`);
  });
});

describe('one name, one task or target', () => {
  const task = (name: string, extra = '') => `defineTask({ name: '${name}', ${extra} outputs: ['x'], async run() {} })`;

  it('a plugin task named like a built-in is refused, naming both', async () => {
    const dir = project({
      'p.ts': `import { defineTask } from 'rocmflow/plugin';\nexport default ${task('model')};\n`,
      'rocmflow.config.mjs': `export default { plugins: ['./p.ts'] };\n`,
    });
    await expect(run(targetsCommand, [], dir)).rejects.toThrow('plugin ./p.ts: task "model": a built-in task has this name (tasks/model.ts); rename it, or set override: true to replace the built-in on purpose');
  });

  it('with override: true it replaces the built-in, with a warning', async () => {
    const dir = project({
      'p.ts': `import { defineTask } from 'rocmflow/plugin';\nexport default ${task('model', 'override: true,')};\n`,
      'rocmflow.config.mjs': `export default { plugins: ['./p.ts'] };\n`,
    });
    const r = await run(targetsCommand, ['--json'], dir);
    expect(r.code).toBe(0);
    expect(r.err).toBe('warning: plugin ./p.ts: task "model" replaces the built-in one (tasks/model.ts), as its override: true says');
  });

  it('two plugins with one task name, or one plugin twice, are refused', async () => {
    const two = project({
      'a.ts': `import { defineTask } from 'rocmflow/plugin';\nexport default ${task('lint')};\n`,
      'b.ts': `import { defineTask } from 'rocmflow/plugin';\nexport default ${task('lint')};\n`,
      'rocmflow.config.mjs': `export default { plugins: ['./a.ts', './b.ts'] };\n`,
    });
    await expect(run(targetsCommand, [], two)).rejects.toThrow('plugin ./b.ts: task "lint": the name is taken already by plugin ./a.ts; two tasks cannot share a name');
    const one = project({
      'a.ts': `import { defineTask } from 'rocmflow/plugin';\nexport default { tasks: [${task('lint')}, ${task('lint')}] };\n`,
      'rocmflow.config.mjs': `export default { plugins: ['./a.ts'] };\n`,
    });
    await expect(run(targetsCommand, [], one)).rejects.toThrow('plugin ./a.ts: task "lint": the name is taken already by plugin ./a.ts');
  });

  it('a target named like a built-in is refused too', async () => {
    const dir = project({
      't.ts': `import { amdTarget } from 'rocmflow/plugin';\nexport default amdTarget({ name: 'gfx1100', arch: 'gfx1100', family: 'gfx110X-all', description: 'mine' });\n`,
      'rocmflow.config.mjs': `export default { plugins: ['./t.ts'] };\n`,
    });
    await expect(run(targetsCommand, [], dir)).rejects.toThrow('plugin ./t.ts: target "gfx1100": a built-in target has this name (plugins/gfx1100.ts)');
  });
});

describe('directory and size flags', () => {
  it("--cache-dir '' is refused (it put the cache in the project root)", async () => {
    const dir = project({});
    await expect(run(cacheCommand, ['stats', '--cache-dir', ''], dir)).rejects.toMatchObject({ exitCode: 2, message: "--cache-dir: empty cache directory; give a directory, or leave it out for the default" });
    const cfg = project({ 'rocmflow.config.mjs': `export default { cacheDir: '' };\n` });
    await expect(run(cacheCommand, ['stats'], cfg)).rejects.toThrow(`${config(cfg)}: cacheDir: empty cache directory`);
  });

  it('gc --max-size garbage says the value is not a size (it said the value was missing)', async () => {
    const dir = project({});
    await expect(run(cacheCommand, ['gc', '--max-size', 'garbage', '--cache-dir', join(dir, 'c')], dir)).rejects.toMatchObject({
      exitCode: 2, message: 'cache gc: --max-size "garbage" is not a size (e.g. 20G, 500MB, 1.5GiB)',
    });
  });
});
