/**
 * The config's forms and where the search finds them, through the real CLI:
 * each config names the plugin file and sets an option that the task
 * writes into its output, so a run shows which config it loaded.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rocmflow, states, workspace } from '../helpers/cli.js';

const TASKS = `export default defineTask({
  name: 'say', options: s.object({ word: s.optional(s.string()) }), outputs: ['word'],
  inputs: (ctx) => ({ params: { word: ctx.options.word ?? null } }),
  async run(ctx) { const { writeFile } = await import('node:fs/promises'); await writeFile(ctx.outDir + '/word', String(ctx.options.word)); },
});`;

/** A workspace holding only the tasks file: each test writes the config it is about. */
function bare(): string {
  const ws = workspace({ tasks: TASKS });
  rmSync(join(ws, 'rocmflow.config.ts'));
  return ws;
}

function said(ws: string, cwd = ws, args: string[] = []): string {
  const r = rocmflow(cwd, ['run', 'say', '--json', ...args]);
  expect(r.stderr).toBe('');
  expect(states(r).say).toMatch(/ran|fresh/);
  const root = r.events.find((e) => e.type === 'summary')?.logDir.split('/.rocmflow/')[0] ?? ws;
  return readFileSync(join(root, '.rocmflow/out/cpu/say/word'), 'utf8');
}

describe('a task with options and no inputs()', () => {
  it('reruns when its options change: they are its params', () => {
    const ws = workspace({
      tasks: `export default defineTask({
        name: 'say', options: s.object({ word: s.optional(s.string()) }), outputs: ['word'],
        async run(ctx) { const { writeFile } = await import('node:fs/promises'); await writeFile(ctx.outDir + '/word', String(ctx.options.word)); },
      });`,
    });
    const config = (word: string) => writeFileSync(join(ws, 'rocmflow.config.ts'), `export default { target: 'cpu', plugins: ['./tasks.ts'], tasks: { say: { word: '${word}' } } };`);
    config('one');
    expect(states(rocmflow(ws, ['run', 'say', '--json'])).say).toBe('ran');
    expect(states(rocmflow(ws, ['run', 'say', '--json'])).say).toBe('fresh');
    config('two');
    const r = rocmflow(ws, ['run', 'say', '--json', '--explain']);
    expect(states(r).say).toBe('ran');
    expect(readFileSync(join(ws, '.rocmflow/out/cpu/say/word'), 'utf8')).toBe('two');
  });
});

describe('config files: code, JSON, YAML and package.json', () => {
  it('reads .rocmflowrc.yaml, .rocmflowrc.json, a bare .rocmflowrc and a "rocmflow" key in package.json', () => {
    const ws = bare();
    writeFileSync(join(ws, '.rocmflowrc.yaml'), "target: cpu\nplugins: ['./tasks.ts']\ntasks:\n  say:\n    word: yaml\n");
    expect(said(ws)).toBe('yaml');
    rmSync(join(ws, '.rocmflowrc.yaml'));
    writeFileSync(join(ws, '.rocmflowrc.json'), JSON.stringify({ target: 'cpu', plugins: ['./tasks.ts'], tasks: { say: { word: 'json' } } }));
    expect(said(ws)).toBe('json');
    rmSync(join(ws, '.rocmflowrc.json'));
    writeFileSync(join(ws, '.rocmflowrc'), JSON.stringify({ target: 'cpu', plugins: ['./tasks.ts'], tasks: { say: { word: 'bare' } } }));
    expect(said(ws)).toBe('bare');
    rmSync(join(ws, '.rocmflowrc'));
    writeFileSync(join(ws, 'package.json'), JSON.stringify({ name: 'p', rocmflow: { target: 'cpu', plugins: ['./tasks.ts'], tasks: { say: { word: 'pkg' } } } }));
    expect(said(ws)).toBe('pkg');
  });

  it('a package.json without the key does not stop the search; in one directory the code config wins; the nearest directory wins', () => {
    const ws = bare();
    writeFileSync(join(ws, 'rocmflow.config.ts'), `export default { target: 'cpu', plugins: ['./tasks.ts'], tasks: { say: { word: 'code' } } };`);
    writeFileSync(join(ws, '.rocmflowrc.json'), JSON.stringify({ target: 'cpu', plugins: ['./tasks.ts'], tasks: { say: { word: 'json' } } }));
    const sub = join(ws, 'sub');
    mkdirSync(sub);
    writeFileSync(join(sub, 'package.json'), JSON.stringify({ name: 'no-config-here' }));
    expect(said(ws, sub)).toBe('code');
    writeFileSync(join(sub, '.rocmflowrc.yml'), "target: cpu\nplugins: ['../tasks.ts']\ntasks: { say: { word: nearer } }\n");
    expect(said(ws, sub)).toBe('nearer');
  });

  it('--config names a YAML file; bad YAML and a bad key get one line naming the file', () => {
    const ws = bare();
    writeFileSync(join(ws, 'other.yml'), "target: cpu\nplugins: ['./tasks.ts']\ntasks: { say: { word: other } }\n");
    expect(said(ws, ws, ['--config', 'other.yml'])).toBe('other');

    writeFileSync(join(ws, '.rocmflowrc.yaml'), 'target: cpu\nplugins: [./tasks.ts\n');
    const r = rocmflow(ws, ['run', 'say']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`${join(ws, '.rocmflowrc.yaml')}: cannot load config`);

    writeFileSync(join(ws, '.rocmflowrc.yaml'), "target: cpu\nplugins: ['./tasks.ts']\njbos: 3\n");
    const r2 = rocmflow(ws, ['run', 'say']);
    expect(r2.code).toBe(2);
    expect(r2.stderr.trim().split('\n')).toHaveLength(1);
    expect(r2.stderr).toContain('.rocmflowrc.yaml');
    expect(r2.stderr).toContain('jbos');
  });

  it('a data config is data: $import of another file and YAML aliases are refused, and the other file is not echoed', () => {
    const ws = bare();
    writeFileSync(join(ws, 'secret.yaml'), 'sekrit-line-one: 1\n');
    writeFileSync(join(ws, '.rocmflowrc.json'), JSON.stringify({ target: 'cpu', $import: './secret.yaml' }));
    const r = rocmflow(ws, ['run', 'say']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`rocmflow: ${join(ws, '.rocmflowrc.json')}: $import: not supported; rocmflow reads one config file`);
    rmSync(join(ws, '.rocmflowrc.json'));
    writeFileSync(join(ws, 'package.json'), JSON.stringify({ name: 'p', rocmflow: { $import: './secret.yaml' } }));
    const r2 = rocmflow(ws, ['run', 'say']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain(`${join(ws, 'package.json')}: $import: not supported`);
    expect(r2.stderr + r.stderr).not.toContain('sekrit');
    rmSync(join(ws, 'package.json'));
    // ten levels of aliases would be 2^10 copies of the innermost list once walked
    const lines = ['l0: &l0 [x, x]', ...Array.from({ length: 10 }, (_, i) => `l${i + 1}: &l${i + 1} [*l${i}, *l${i}]`), 'target: cpu'];
    writeFileSync(join(ws, '.rocmflowrc.yaml'), lines.join('\n') + '\n');
    const r3 = rocmflow(ws, ['run', 'say']);
    expect(r3.code).toBe(2);
    expect(r3.stderr.trim()).toBe(`rocmflow: ${join(ws, '.rocmflowrc.yaml')}: l1[0]: a YAML alias or repeated node; write the value out`);
  });
});
