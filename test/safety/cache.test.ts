/**
 * Hostile and clumsy cache contents: outputs that leave their directory,
 * remote entries that would write through links, blobs that are not files,
 * corrupt blobs shared with workspace outputs, stray files in the store.
 * Real CLI, real shared-directory remote, real files in temp dirs.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, lutimesSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PLUGIN_API, rocmflow, states, workspace } from '../helpers/cli.js';

const BLOB_MTIME = 946684800;
const tmp = (p: string) => mkdtempSync(join(tmpdir(), `rocmflow-safety-${p}-`));

/** One task module shared by several workspaces (keys include the module's path). */
function sharedModule(body: string): string {
  const file = join(tmp('tasks'), 'tasks.ts');
  writeFileSync(file, `import { defineTask } from ${JSON.stringify(PLUGIN_API)};\n${body}`);
  return file;
}

function machine(tasks: string, remote: string | null): string {
  const dir = tmp('ws');
  const cache = remote ? `, cache: { remote: { url: ${JSON.stringify(`file://${remote}`)}, mode: 'read-write' } }` : '';
  writeFileSync(join(dir, 'rocmflow.config.ts'), `export default { target: 'cpu', plugins: [${JSON.stringify(tasks)}]${cache} };\n`);
  return dir;
}

const run = (ws: string, task: string) => rocmflow(ws, ['run', task, '--json', '--cache-dir', join(ws, 'local-cache')]);

/** The one blob file of the local cache holding `content`. */
function blobOf(cacheDir: string, size: number): string {
  const cas = join(cacheDir, 'cas');
  const all = readdirSync(cas).flatMap((d) => readdirSync(join(cas, d)).map((f) => join(cas, d, f)));
  const hits = all.filter((f) => lstatSync(f).size === size);
  expect(hits).toHaveLength(1);
  return hits[0]!;
}

describe('outputs stay inside the task output directory', () => {
  it('a function-form output that climbs out is refused before anything is removed', () => {
    const victim = tmp('victim');
    writeFileSync(join(victim, 'keep'), 'precious');
    const ws = workspace({
      tasks: `export default defineTask({ name: 'esc', outputs: () => ['../../../../../../../../../..${victim}'], async run(ctx) { await ctx.$\`true\`; } });`,
    });
    const r = rocmflow(ws, ['run', 'esc', '--json']);
    expect(r.code).toBe(1);
    const failed = r.events.find((e) => e.type === 'task' && e.task === 'esc');
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatch(/task esc: output .* is not a relative path inside the task's output directory/);
    expect(readFileSync(join(victim, 'keep'), 'utf8')).toBe('precious');
  });

  it('function-form outputs are normalised (a/./b/ and a/../b are the same rule as a list)', () => {
    const ws = workspace({
      tasks: `export default defineTask({ name: 'n', outputs: () => ['./d/./f/', 'x/../y'], async run(ctx) { await ctx.$\`mkdir -p d && echo 1 > d/f && echo 2 > y\`; } });`,
    });
    const r = rocmflow(ws, ['run', 'n', '--json']);
    expect(r.code, r.stdout).toBe(0);
    expect(states(rocmflow(ws, ['run', 'n', '--json']))).toEqual({ n: 'fresh' });
  });
});

describe('hostile remote action entries are misses, never writes through links', () => {
  const tasks = sharedModule(`export default defineTask({ name: 'w', outputs: ['out'], async run(ctx) { await ctx.$\`echo cached-bytes > out\`; } });`);
  const share = tmp('share');
  const a = machine(tasks, share);
  const first = run(a, 'w');
  const acDir = join(share, 'ac');
  const original = () => readdirSync(acDir).map((k) => ({ file: join(acDir, k), doc: JSON.parse(readFileSync(join(acDir, k), 'utf8')) }))[0]!;

  const victimDir = tmp('victim');
  const victim = join(victimDir, 'file');
  const cases: [string, (blob: { sha256: string; size: number }) => unknown[]][] = [
    ['a symlink to an outside file, then a file of the same name', (b) => [
      { path: 'out', type: 'symlink', mode: 0o777, target: victim },
      { path: 'out', type: 'file', mode: 0o777, size: b.size, sha256: b.sha256 },
    ]],
    ['a file below a symlink listed after it', (b) => [
      { path: 'out/file', type: 'file', mode: 0o644, size: b.size, sha256: b.sha256 },
      { path: 'out', type: 'symlink', mode: 0o777, target: victimDir },
    ]],
    ['a symlink then a directory of the same name', (b) => [
      { path: 'out', type: 'symlink', mode: 0o777, target: victimDir },
      { path: 'out', type: 'dir', mode: 0o777 },
      { path: 'out/file', type: 'file', mode: 0o644, size: b.size, sha256: b.sha256 },
    ]],
    ['a path outside the declared outputs', (b) => [{ path: 'other', type: 'file', mode: 0o644, size: b.size, sha256: b.sha256 }]],
  ];
  for (const [name, entries] of cases)
    it(name, () => {
      expect(first.code, first.stderr).toBe(0);
      writeFileSync(victim, 'victim\n');
      chmodSync(victim, 0o600);
      const { file, doc } = original();
      const blob = doc.entry.manifest.entries.find((e: any) => e.type === 'file');
      const hostile = { ...doc, entry: { ...doc.entry, manifest: { entries: entries(blob) } } };
      writeFileSync(file, JSON.stringify(hostile));
      try {
        const b = machine(tasks, share);
        const r = run(b, 'w');
        expect(r.code, r.stdout + r.stderr).toBe(0);
        expect(states(r)).toEqual({ w: 'ran' });
        const warnings = r.events.filter((e) => e.type === 'warning').map((e) => e.message);
        expect(warnings.filter((m) => /refused/.test(m)), warnings.join('\n')).toHaveLength(1);
        expect(readFileSync(victim, 'utf8')).toBe('victim\n');
        expect(statSync(victim).mode & 0o777).toBe(0o600);
        expect(readdirSync(victimDir)).toEqual(['file']);
        expect(readFileSync(join(b, '.rocmflow/out/cpu/w/out'), 'utf8')).toBe('cached-bytes\n');
      } finally {
        writeFileSync(file, JSON.stringify(doc));
      }
    });
});

describe('modes in a remote action entry', () => {
  it('a setuid file and a world-writable directory are restored without those bits', () => {
    const tasks = sharedModule(`export default defineTask({ name: 'm', outputs: ['out'], async run(ctx) { await ctx.$\`echo payload > out\`; } });`);
    const share = tmp('share');
    expect(run(machine(tasks, share), 'm').code).toBe(0);
    const acDir = join(share, 'ac');
    const file = join(acDir, readdirSync(acDir)[0]!);
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    const blob = doc.entry.manifest.entries.find((e: any) => e.type === 'file');
    // one blob under two modes: whichever exec bit it is pulled with, one of the two is a copy whose mode restore sets
    doc.entry.manifest.entries = [
      { path: 'out', type: 'dir', mode: 0o1777 },
      { path: 'out/a', type: 'file', mode: 0o666, size: blob.size, sha256: blob.sha256 },
      { path: 'out/f', type: 'file', mode: 0o6777, size: blob.size, sha256: blob.sha256 },
    ];
    writeFileSync(file, JSON.stringify(doc));
    const b = machine(tasks, share);
    const r = run(b, 'm');
    expect(states(r), r.stderr).toEqual({ m: 'cached' });
    const out = join(b, '.rocmflow/out/cpu/m/out');
    expect(statSync(out).mode & 0o7777).toBe(0o755);
    for (const f of ['a', 'f']) {
      expect(statSync(join(out, f)).mode & 0o7022, f).toBe(0);
      expect(readFileSync(join(out, f), 'utf8')).toBe('payload\n');
    }
    expect(statSync(join(out, 'f')).mode & 0o111).not.toBe(0);
    // and the restored outputs count as fresh on the next run
    expect(states(run(b, 'm'))).toEqual({ m: 'fresh' });
  });
});

describe('local blobs', () => {
  it('a blob replaced by a symlink with the same size and mtime is evicted and the task reruns', () => {
    const ws = workspace({ tasks: `export default defineTask({ name: 'b', outputs: ['o'], async run(ctx) { await ctx.$\`echo task-output > o\`; } });` });
    expect(rocmflow(ws, ['run', 'b', '--json']).code).toBe(0);
    const blob = blobOf(join(ws, 'cache'), 12);
    // a symlink's size is its target's length: "/etc//passwd" has the blob's 12
    rmSync(blob);
    symlinkSync('/etc//passwd', blob);
    lutimesSync(blob, BLOB_MTIME, BLOB_MTIME);
    expect(lstatSync(blob).size).toBe(12);
    rmSync(join(ws, '.rocmflow/out/cpu/b/o'));
    const r = rocmflow(ws, ['run', 'b', '--json']);
    expect(r.code, r.stdout).toBe(0);
    expect(states(r)).toEqual({ b: 'ran' });
    expect(r.events.some((e) => e.type === 'warning' && /not a regular file/.test(e.message))).toBe(true);
    expect(readFileSync(join(ws, '.rocmflow/out/cpu/b/o'), 'utf8')).toBe('task-output\n');
    expect(lstatSync(blob).isFile()).toBe(true);
  });

  it('cache verify evicting a corrupt blob makes the outputs sharing its inode stale', () => {
    const ws = workspace({ tasks: `export default defineTask({ name: 'c', outputs: ['o'], async run(ctx) { await ctx.$\`echo good-bytes > o\`; } });` });
    expect(rocmflow(ws, ['run', 'c', '--json']).code).toBe(0);
    const blob = blobOf(join(ws, 'cache'), 11);
    const out = join(ws, '.rocmflow/out/cpu/c/o');
    expect(lstatSync(out).ino).toBe(lstatSync(blob).ino);
    // bit rot: same size, same mtime, other bytes
    chmodSync(blob, 0o644);
    writeFileSync(blob, 'BAD!-bytes\n');
    chmodSync(blob, 0o444);
    utimesSync(blob, BLOB_MTIME, BLOB_MTIME);
    const v = rocmflow(ws, ['cache', 'verify']);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/1 corrupt/);
    const r = rocmflow(ws, ['run', 'c', '--json']);
    expect(states(r)).toEqual({ c: 'ran' });
    expect(readFileSync(out, 'utf8')).toBe('good-bytes\n');
  });

  it('a stray file in cache/cas is named in one warning; stats, verify and gc still work', () => {
    const ws = workspace({ tasks: `export default defineTask({ name: 's', outputs: ['o'], async run(ctx) { await ctx.$\`echo s > o\`; } });` });
    expect(rocmflow(ws, ['run', 's', '--json']).code).toBe(0);
    const stray = join(ws, 'cache/cas/notes.txt');
    writeFileSync(stray, 'hello');
    mkdirSync(join(ws, 'cache/cas/zz'));
    for (const args of [['cache', 'stats'], ['cache', 'verify'], ['cache', 'gc', '--max-size', '1G']]) {
      const r = rocmflow(ws, args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      const lines = r.stderr.trim().split('\n');
      expect(lines.filter((l) => l.includes(stray))).toHaveLength(1);
      expect(lines.every((l) => l.startsWith('warning: '))).toBe(true);
    }
    expect(existsSync(stray)).toBe(true);
  });
});
