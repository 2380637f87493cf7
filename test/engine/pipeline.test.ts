/**
 * The engine end to end: the real CLI on a temp workspace with a small
 * pipeline of real shell tasks. Each task body appends its name to a
 * counter file outside the workspace, so "ran" is proven, not reported.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { PLUGIN_API, rocmflow, states, workspace } from '../helpers/cli.js';

export const PIPELINE = `
const count = (name: string) => { if (process.env.COUNTER) require('node:fs').appendFileSync(process.env.COUNTER, name + '\\n'); };
export default { tasks: [
  defineTask({
    name: 'gen', description: 'concatenate the sources',
    inputs: () => ({ files: ['src'] }),
    outputs: ['gen.txt'],
    async run(ctx) { count('gen'); await ctx.$\`cat \${ctx.projectRoot}/src/*.txt > gen.txt\`; },
  }),
  defineTask({
    name: 'compile', deps: ['gen'],
    options: s.object({ flags: s.optional(s.array(s.string())) }),
    inputs: (ctx) => ({ params: { flags: ctx.options.flags ?? [] }, env: ['COMPILE_MODE'] }),
    outputs: ['bin', 'build.json'],
    async run(ctx) {
      count('compile');
      await ctx.$\`mkdir -p bin/empty && tr a-z A-Z < \${ctx.deps.gen.outDir}/gen.txt > bin/tool && chmod 755 bin/tool && ln -s tool bin/tool-link\`;
      require('node:fs').writeFileSync(ctx.outDir + '/build.json', JSON.stringify({ flags: ctx.options.flags ?? [], mode: process.env.COMPILE_MODE ?? null }));
      return { summary: ['compiled with ' + (ctx.options.flags ?? []).join(' ')] };
    },
  }),
  defineTask({
    name: 'pack', deps: ['compile'],
    outputs: ['pack.tar'],
    async run(ctx) { count('pack'); await ctx.$\`tar --sort=name --mtime=@0 --owner=0 --group=0 -cf pack.tar -C \${ctx.deps.compile.outDir} bin\`; },
  }),
  defineTask({
    name: 'other',
    inputs: () => ({ files: ['other/**/*.cfg'] }),
    outputs: ['other.txt'],
    async run(ctx) { count('other'); await ctx.$\`cat \${ctx.projectRoot}/other/a.cfg > other.txt\`; },
  }),
]};
`;

function treeDigest(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    const p = join(dir, rel);
    const st = lstatSync(p);
    if (st.isSymbolicLink()) out[rel] = `link:${readlinkSync(p)}`;
    else if (st.isDirectory()) {
      out[rel] = `dir:${(st.mode & 0o777).toString(8)}`;
      for (const n of readdirSync(p).sort()) walk(rel ? `${rel}/${n}` : n);
    } else out[rel] = `file:${(st.mode & 0o555).toString(8)}:${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
  };
  walk('');
  return out;
}

let ws: string;
let counter: string;
const ran = () => (existsSync(counter) ? readFileSync(counter, 'utf8').split('\n').filter(Boolean) : []);
const ALL = ['pack', 'other'];
const run = (args: string[], env: NodeJS.ProcessEnv = {}) => rocmflow(ws, [...args, '--json'], { COUNTER: counter, ...env });

beforeEach(() => {
  ws = workspace({ tasks: PIPELINE, files: { 'src/a.txt': 'alpha\n', 'src/b.txt': 'beta\n', 'other/a.cfg': 'x=1\n' } });
  counter = join(ws, '..', `${ws.split('/').pop()}.counter`);
});

describe('run', () => {
  it('runs everything once, then nothing: the second run is all fresh', () => {
    const first = run(['run', ...ALL]);
    expect(first.code, first.stderr).toBe(0);
    expect(states(first)).toEqual({ gen: 'ran', compile: 'ran', pack: 'ran', other: 'ran' });
    expect(ran().sort()).toEqual(['compile', 'gen', 'other', 'pack']);
    const second = run(['run', ...ALL]);
    expect(second.code).toBe(0);
    expect(states(second)).toEqual({ gen: 'fresh', compile: 'fresh', pack: 'fresh', other: 'fresh' });
    expect(ran()).toHaveLength(4);
    const summary = second.events.at(-1);
    expect(summary).toMatchObject({ type: 'summary', ok: true, counts: { fresh: 4, ran: 0 } });
    expect(summary.lines).toEqual(['compiled with ']);
  });

  it('touching one input reruns exactly its dependents', () => {
    expect(run(['run', ...ALL]).code).toBe(0);
    writeFileSync(join(ws, 'other/a.cfg'), 'x=2\n');
    const r = run(['run', ...ALL]);
    expect(states(r)).toEqual({ gen: 'fresh', compile: 'fresh', pack: 'fresh', other: 'ran' });
    writeFileSync(join(ws, 'src/b.txt'), 'BETA changed\n');
    const r2 = run(['run', ...ALL]);
    expect(states(r2)).toEqual({ gen: 'ran', compile: 'ran', pack: 'ran', other: 'fresh' });
    expect(ran().filter((x) => x === 'other')).toHaveLength(2);
  });

  it('a file matching an input glob that appears later makes the task stale', () => {
    expect(run(['run', 'other']).code).toBe(0);
    writeFileSync(join(ws, 'other/b.cfg'), 'y=1\n');
    expect(states(run(['run', 'other']))).toEqual({ other: 'ran' });
    writeFileSync(join(ws, 'other/notes.txt'), 'not matched\n');
    expect(states(run(['run', 'other']))).toEqual({ other: 'fresh' });
  });

  it('an unchanged output of a rerun task leaves its dependents fresh', () => {
    expect(run(['run', ...ALL]).code).toBe(0);
    // same content, new mtime: gen reruns only if its input digest changed; it did not
    writeFileSync(join(ws, 'src/a.txt'), 'alpha\n');
    expect(states(run(['run', ...ALL]))).toEqual({ gen: 'fresh', compile: 'fresh', pack: 'fresh', other: 'fresh' });
  });

  it("a task's key covers the modules it imports: editing a helper reruns exactly the task that imports it", () => {
    writeFileSync(join(ws, 'rocmflow.config.ts'), `export default { target: 'cpu', plugins: ['./tasks.ts', './extra.ts'] };\n`);
    writeFileSync(join(ws, 'helper.ts'), `export const greeting = (n: string) => 'hello ' + n;\n`);
    writeFileSync(join(ws, 'extra.ts'), [
      `import { defineTask } from ${JSON.stringify(PLUGIN_API)};`,
      `import { greeting } from './helper.ts';`,
      `export default defineTask({ name: 'extra', outputs: ['x.txt'], async run(ctx) { require('node:fs').writeFileSync(ctx.outDir + '/x.txt', greeting('x')); } });`,
    ].join('\n'));
    expect(run(['run', ...ALL, 'extra']).code).toBe(0);
    expect(states(run(['run', ...ALL, 'extra']))).toEqual({ gen: 'fresh', compile: 'fresh', pack: 'fresh', other: 'fresh', extra: 'fresh' });
    writeFileSync(join(ws, 'helper.ts'), `export const greeting = (n: string) => 'hello again ' + n;\n`);
    const r = run(['run', ...ALL, 'extra']);
    expect(states(r)).toEqual({ gen: 'fresh', compile: 'fresh', pack: 'fresh', other: 'fresh', extra: 'ran' });
    expect(r.events.find((e) => e.type === 'start' && e.task === 'extra')?.reason).toBe('task code');
  });

  it('--explain and `explain` name the changed file, param and env value', () => {
    expect(run(['run', ...ALL]).code).toBe(0);
    writeFileSync(join(ws, 'src/a.txt'), 'ALPHA\n');
    const ex = rocmflow(ws, ['explain', 'gen']);
    expect(ex.code).toBe(0);
    expect(ex.stdout).toMatch(/gen \(target cpu\) would run/);
    expect(ex.stdout).toContain('file src/a.txt (changed)');
    const r = rocmflow(ws, ['run', 'gen', '--explain'], { COUNTER: counter });
    expect(r.stdout).toContain('file src/a.txt (changed)');

    writeFileSync(join(ws, 'rocmflow.config.ts'), `export default { target: 'cpu', plugins: ['./tasks.ts'], tasks: { compile: { flags: ['-O3'] } } };\n`);
    const ex2 = rocmflow(ws, ['explain', 'compile', '--json']);
    const j = JSON.parse(ex2.stdout);
    expect(j.state).toBe('run');
    expect(j.changes).toContainEqual({ field: 'param flags', before: '(nothing removed)', after: 'added -O3' });
    const ex3 = rocmflow(ws, ['explain', 'compile'], { COMPILE_MODE: 'fast' });
    expect(ex3.stdout).toContain('env COMPILE_MODE: (unset) → fast');
  });

  it('--force X reruns X and its dependents only; --force alone reruns all', () => {
    expect(run(['run', ...ALL]).code).toBe(0);
    const r = run(['run', 'pack', '--force', 'compile']);
    expect(states(r)).toEqual({ gen: 'fresh', compile: 'ran', pack: 'ran' });
    const r2 = run(['run', 'pack', 'other', '--force']);
    expect(states(r2)).toEqual({ gen: 'ran', compile: 'ran', pack: 'ran', other: 'ran' });
  });

  it('deleted outputs are restored bit-identically from the cache without running', () => {
    expect(run(['run', ...ALL]).code).toBe(0);
    const out = join(ws, '.rocmflow/out/cpu');
    const before = treeDigest(out);
    rmSync(out, { recursive: true });
    const r = run(['run', ...ALL]);
    expect(states(r)).toEqual({ gen: 'cached', compile: 'cached', pack: 'cached', other: 'cached' });
    expect(r.events.filter((e) => e.type === 'task').every((e) => e.source === 'local')).toBe(true);
    expect(treeDigest(out)).toEqual(before);
    expect(lstatSync(join(out, 'compile/bin/tool')).mode & 0o111).not.toBe(0);
    expect(readlinkSync(join(out, 'compile/bin/tool-link'))).toBe('tool');
    expect(lstatSync(join(out, 'compile/bin/empty')).isDirectory()).toBe(true);
    expect(ran()).toHaveLength(4);
  });

  it('a changed output on disk is noticed: restored from the cache, not left as is', () => {
    expect(run(['run', ...ALL]).code).toBe(0);
    const f = join(ws, '.rocmflow/out/cpu/gen/gen.txt');
    rmSync(f);
    writeFileSync(f, 'tampered\n');
    const r = run(['run', 'gen']);
    expect(states(r)).toEqual({ gen: 'cached' });
    expect(readFileSync(f, 'utf8')).toBe('alpha\nbeta\n');
  });

  it('files named like an object\'s built-in keys (__proto__, constructor) are inputs and outputs like any other', () => {
    // at the top of the project and of the output directory, a path is the bare name: the key itself
    const odd = workspace({
      tasks: `export default defineTask({
        name: 'odd', inputs: () => ({ files: ['__proto__', 'constructor'] }), outputs: ['__proto__', 'constructor'],
        async run(ctx) { await ctx.$\`cp \${ctx.projectRoot}/__proto__ __proto__ && cp \${ctx.projectRoot}/constructor constructor\`; },
      });`,
      files: { ['__proto__']: 'one\n', constructor: 'two\n' },
    });
    const go = () => rocmflow(odd, ['run', 'odd', '--json']);
    expect(states(go())).toEqual({ odd: 'ran' });
    expect(states(go())).toEqual({ odd: 'fresh' });
    // an edited input of that name is a new key
    writeFileSync(join(odd, '__proto__'), 'ONE\n');
    expect(states(go())).toEqual({ odd: 'ran' });
    expect(readFileSync(join(odd, '.rocmflow/out/cpu/odd/__proto__'), 'utf8')).toBe('ONE\n');
    writeFileSync(join(odd, 'constructor'), 'TWO\n');
    expect(states(go())).toEqual({ odd: 'ran' });
    expect(states(go())).toEqual({ odd: 'fresh' });
    // an output of that name changed on disk is noticed and restored
    const out = join(odd, '.rocmflow/out/cpu/odd/__proto__');
    rmSync(out);
    writeFileSync(out, 'tampered\n');
    expect(states(go())).toEqual({ odd: 'cached' });
    expect(readFileSync(out, 'utf8')).toBe('ONE\n');

    // `explain` says a new file named toString was added, not changed
    writeFileSync(join(odd, 'tasks.ts'), readFileSync(join(odd, 'tasks.ts'), 'utf8').replace(`files: ['__proto__', 'constructor']`, `files: ['__proto__', 'constructor', 'to*']`));
    expect(states(go())).toEqual({ odd: 'ran' });
    writeFileSync(join(odd, 'toString'), 'three\n');
    const ex = rocmflow(odd, ['explain', 'odd']);
    expect(ex.stdout).toContain('file toString (added)');
  });

  it('--dry-run says what would happen and runs nothing', () => {
    expect(run(['run', 'gen']).code).toBe(0);
    writeFileSync(join(ws, 'other/a.cfg'), 'x=3\n');
    const r = rocmflow(ws, ['run', ...ALL, '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/fresh\s+gen/);
    expect(r.stdout).toMatch(/would run\s+compile\s+\(no previous run\)/);
    expect(r.stdout).toMatch(/would run\s+pack\s+\(dependency compile will run\)/);
    expect(ran()).toEqual(['gen']);
  });

  it('the first failure cancels the rest and the summary names what was skipped', () => {
    const ws2 = workspace({
      tasks: `export default { tasks: [
        defineTask({ name: 'slow', outputs: ['x'], async run(ctx) { await ctx.$\`sleep 20; touch x\`; } }),
        defineTask({ name: 'bad', outputs: ['y'], async run(ctx) { await ctx.$\`sleep 0.5; echo broken >&2; exit 3\`; } }),
        defineTask({ name: 'after', deps: ['bad'], outputs: ['z'], async run(ctx) { await ctx.$\`touch z\`; } }),
      ]};`,
    });
    const t0 = Date.now();
    const r = rocmflow(ws2, ['run', 'slow', 'after', '--json', '-j', '4']);
    expect(r.code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(states(r)).toEqual({ bad: 'failed', slow: 'skipped', after: 'skipped' });
    const bad = r.events.find((e) => e.task === 'bad' && e.type === 'task');
    expect(bad.error).toMatch(/exit code: 3|exit code 3|code: 3/);
    const summary = r.events.at(-1);
    expect(summary).toMatchObject({ type: 'summary', ok: false, failed: ['bad'] });
    expect(summary.skipped.sort()).toEqual(['after', 'slow']);
    // nothing recorded for the failed task: it runs again
    expect(states(rocmflow(ws2, ['run', 'bad', '--json']))).toEqual({ bad: 'failed' });
  });

  it('an uncacheable task always reruns', () => {
    const ws2 = workspace({
      tasks: `export default defineTask({ name: 'now', inputs: () => ({ uncacheable: 'reads the clock' }), outputs: ['t'], async run(ctx) { await ctx.$\`date +%s%N > t\`; } });`,
    });
    expect(states(rocmflow(ws2, ['run', 'now', '--json']))).toEqual({ now: 'ran' });
    expect(states(rocmflow(ws2, ['run', 'now', '--json']))).toEqual({ now: 'ran' });
  });

  it('a declared output that was not created fails the task and names it', () => {
    const ws2 = workspace({ tasks: `export default defineTask({ name: 'liar', outputs: ['made', 'never'], async run(ctx) { await ctx.$\`touch made\`; } });` });
    const r = rocmflow(ws2, ['run', 'liar']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('task liar: declared output never was not created');
  });

  it('graph prints text, dot and mermaid', () => {
    expect(rocmflow(ws, ['graph', 'pack']).stdout).toContain('compile  ← gen');
    expect(rocmflow(ws, ['graph', 'pack', '--format', 'dot']).stdout).toContain('"gen" -> "compile";');
    expect(rocmflow(ws, ['graph', 'pack', '--format', 'mermaid']).stdout).toContain('compile --> pack');
  });

  it('cache ls, stats and gc', () => {
    expect(run(['run', ...ALL]).code).toBe(0);
    rmSync(join(ws, '.rocmflow/out'), { recursive: true });
    expect(run(['run', ...ALL]).code).toBe(0);
    const ls = rocmflow(ws, ['cache', 'ls', '--json']);
    expect(ls.stdout.trim().split('\n')).toHaveLength(4);
    const st = JSON.parse(rocmflow(ws, ['cache', 'stats', '--json']).stdout);
    expect(st).toMatchObject({ entries: 4, localHits: 4 });
    // image layer records (trim-runtime's layer memo) point into the store: gc keeps those whose blob it keeps
    const layers = join(ws, 'cache', 'layers');
    mkdirSync(join(layers, 'not-a-record'), { recursive: true });
    const shard = readdirSync(join(ws, 'cache', 'cas'))[0]!;
    const stored = readdirSync(join(ws, 'cache', 'cas', shard))[0]!;
    const record = (digest: string) => JSON.stringify({ digest, diffId: `sha256:${'b'.repeat(64)}`, size: 1, uncompressedSize: 1 });
    writeFileSync(join(layers, `${'1'.repeat(64)}.json`), record(`sha256:${stored}`));
    writeFileSync(join(layers, `${'2'.repeat(64)}.json`), record(`sha256:${'c'.repeat(64)}`));
    writeFileSync(join(layers, `${'3'.repeat(64)}.json`), 'not json');
    const keep = rocmflow(ws, ['cache', 'gc', '--max-size', '1G']);
    expect(keep.stdout).toContain('and 3 image layer records whose blob is gone');
    expect(readdirSync(layers)).toEqual([`${'1'.repeat(64)}.json`]);
    const gc = rocmflow(ws, ['cache', 'gc', '--max-size', '0']);
    expect(gc.code).toBe(0);
    expect(JSON.parse(rocmflow(ws, ['cache', 'stats', '--json']).stdout)).toMatchObject({ entries: 0, blobs: 0 });
    expect(readdirSync(layers)).toEqual([]);
    // outputs still on disk are fresh; deleted ones now rerun
    rmSync(join(ws, '.rocmflow/out/cpu/other'), { recursive: true });
    expect(states(run(['run', ...ALL]))).toMatchObject({ gen: 'fresh', other: 'ran' });
  });
});
