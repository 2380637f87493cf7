/** Bad input gets one clear line naming the file, key or task, and exit code 2. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rocmflow, workspace } from '../helpers/cli.js';

const TASKS = `export default { tasks: [
  defineTask({ name: 'build-thing', options: s.object({ cmakeFlags: s.optional(s.array(s.string())) }), outputs: ['x'], async run(ctx) { await ctx.$\`touch x\`; } }),
  defineTask({ name: 'pack-thing', deps: ['build-thing'], outputs: ['y'], async run(ctx) { await ctx.$\`touch y\`; } }),
]};`;

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

describe('errors', () => {
  it('an invalid task option names the config file and the key path', () => {
    const ws = workspace({ tasks: TASKS, config: `export default { target: 'cpu', plugins: ['./tasks.ts'], tasks: { 'build-thing': { cmakeFlags: ['-DA=1', 7] } } };` });
    const r = rocmflow(ws, ['run', 'build-thing']);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(`rocmflow: ${join(ws, 'rocmflow.config.ts')}: tasks.build-thing.cmakeFlags: expected an array of strings (item 1 is number 7)`);
  });

  it('an invalid top-level key is named, with a suggestion', () => {
    const ws = workspace({ tasks: TASKS, config: `export default { target: 'cpu', plugins: ['./tasks.ts'], cachDir: '/tmp/x' };` });
    const r = rocmflow(ws, ['run', 'build-thing']);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toContain('rocmflow.config.ts: cachDir: unknown key (did you mean "cacheDir"?)');
  });

  it('an unknown task suggests the nearest names', () => {
    const ws = workspace({ tasks: TASKS });
    const r = rocmflow(ws, ['run', 'build-thnig']);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toMatch(/unknown task "build-thnig" \(did you mean "build-thing"\?\)/);
  });

  it('an unknown target suggests the nearest names', () => {
    const ws = workspace({ tasks: TASKS });
    const r = rocmflow(ws, ['run', 'build-thing', '--target', 'gfx1115']);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toMatch(/unknown target "gfx1115" \(did you mean "gfx11(00|51)" or "gfx11(00|51)"\?\)/);
  });

  it('a dependency cycle is printed', () => {
    const ws = workspace({
      tasks: `export default { tasks: [
        defineTask({ name: 'a', deps: ['c'], outputs: [], async run() {} }),
        defineTask({ name: 'b', deps: ['a'], outputs: [], async run() {} }),
        defineTask({ name: 'c', deps: ['b'], outputs: [], async run() {} }),
      ]};`,
    });
    const r = rocmflow(ws, ['run', 'c']);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe('rocmflow: dependency cycle: c → b → a → c');
  });

  it('a wrongly shaped plugin gets an error naming the plugin and the field', () => {
    const ws = workspace({ tasks: `export default { tasks: [{ name: 'x', outputs: ['o'], run: 'not a function' }] };` });
    const r = rocmflow(ws, ['run', 'x']);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe('rocmflow: plugin ./tasks.ts: task "x".run: expected a function');
    writeFileSync(join(ws, 'bad-target.ts'), `export default { name: 'gfx9999', family: 'rocm', description: 'x', detect: async () => ({ found: false, description: '' }), cmakeFlags: () => [], env: () => ({}), runtime: { kind: 'ftp' }, devices: [], keep: [], drop: [], hostProvided: [] };`);
    writeFileSync(join(ws, 'rocmflow.config.ts'), `export default { plugins: ['./bad-target.ts'] };`);
    const r2 = rocmflow(ws, ['graph']);
    expect(r2.code).toBe(2);
    expect(oneLine(r2.stderr)).toContain('plugin ./bad-target.ts: target "gfx9999".runtime.kind: expected one of');
  });

  it('a config that does not load names the file; unknown options and commands are usage errors', () => {
    const ws = workspace({ tasks: TASKS, config: `export default { target: ;` });
    const r = rocmflow(ws, ['run', 'build-thing']);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toContain(`${join(ws, 'rocmflow.config.ts')}: cannot load config`);
    const r2 = rocmflow(ws, ['run', '--forse']);
    expect(r2.code).toBe(2);
    expect(oneLine(r2.stderr)).toBe('rocmflow: run: unknown option --forse (did you mean --force?)');
    const r3 = rocmflow(ws, ['rnu']);
    expect(r3.code).toBe(2);
    expect(oneLine(r3.stderr)).toContain('unknown command "rnu" (did you mean "run"?)');
  });
});
