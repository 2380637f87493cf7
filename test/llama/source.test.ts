import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { expandInputs } from '../../src/fingerprint/walk.js';
import { PINNED_LLAMA_COMMIT, prepareSource, resolveSource, sourceInputs, sourceSpecSchema } from '../../src/llama/source.js';
import { llamaBundle, llamaSource } from '../helpers/llama.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), `rocmflow-${p}-`));
const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], { cwd, encoding: 'utf8' }).trim();

let bundle: string;
let bundleHead: string;
beforeAll(async () => {
  bundle = await llamaBundle();
  bundleHead = execFileSync('git', ['bundle', 'list-heads', bundle], { encoding: 'utf8' }).split('\n').find((l) => l.endsWith(' HEAD'))!.split(' ')[0]!;
}, 900_000);

describe('bundle source', () => {
  it('is the commit the default source is pinned to', () => {
    expect(bundleHead).toBe(PINNED_LLAMA_COMMIT);
  });

  it('resolves and checks out the bundle HEAD', async () => {
    const cacheDir = tmp('cache');
    const dest = join(tmp('src'), 'llama.cpp');
    const r = await resolveSource({ bundle }, { cacheDir });
    expect(r.commit).toBe(bundleHead);
    expect(r.params).toMatchObject({ kind: 'bundle', commit: bundleHead });
    const p = await prepareSource({ bundle }, { cacheDir, dest });
    expect(p.commit).toBe(bundleHead);
    expect(p.commitTime).toBe(Number(git(dest, 'show', '-s', '--format=%ct', bundleHead)));
    expect(git(dest, 'rev-parse', 'HEAD')).toBe(bundleHead);
    expect(statSync(join(dest, 'CMakeLists.txt')).isFile()).toBe(true);
    expect(p.describe.length).toBeGreaterThan(0);
  });

  it('a missing bundle or ref is a clear error', async () => {
    await expect(resolveSource({ bundle: '/nonexistent/x.bundle' }, { cacheDir: tmp('c') })).rejects.toMatchObject({
      code: 'E_SOURCE', message: 'llama.cpp source: bundle /nonexistent/x.bundle does not exist',
    });
    await expect(resolveSource({ bundle, ref: 'no-such-branch' }, { cacheDir: tmp('c') })).rejects.toThrow(/no ref "no-such-branch" \(has .*HEAD/);
  });
});

describe('git source', () => {
  let repo: string;
  let first: string;
  let second: string;
  beforeAll(() => {
    repo = tmp('repo');
    git(repo, 'init', '-q', '-b', 'main');
    writeFileSync(join(repo, 'CMakeLists.txt'), 'project(v1)\n');
    git(repo, 'add', '.');
    // a known committer time: the images' `created` comes from it
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.org', 'commit', '-q', '-m', 'one'], { cwd: repo, env: { ...process.env, GIT_COMMITTER_DATE: '2024-05-06T07:08:09Z' } });
    git(repo, 'tag', '-a', 'v1', '-m', 'v1');
    first = git(repo, 'rev-parse', 'HEAD');
    writeFileSync(join(repo, 'CMakeLists.txt'), 'project(v2)\n');
    git(repo, 'commit', '-q', '-am', 'two');
    second = git(repo, 'rev-parse', 'HEAD');
  });

  it('resolves an annotated tag to its commit and checks it out shallow', async () => {
    const url = `file://${repo}`;
    const r = await resolveSource({ git: url, ref: 'v1' }, { cacheDir: tmp('c') });
    expect(r.commit).toBe(first);
    const dest = join(tmp('src'), 'x');
    const p = await prepareSource({ git: url, ref: 'v1' }, { cacheDir: tmp('c'), dest });
    expect(p.commit).toBe(first);
    expect(p.commitTime).toBe(Date.parse('2024-05-06T07:08:09Z') / 1000);
    expect(readFileSync(join(dest, 'CMakeLists.txt'), 'utf8')).toBe('project(v1)\n');
    expect(git(dest, 'rev-parse', '--is-shallow-repository')).toBe('true');
  });

  it('takes a commit as is, a branch and HEAD by ls-remote', async () => {
    const url = `file://${repo}`;
    expect((await resolveSource({ git: url, ref: first }, { cacheDir: tmp('c') })).commit).toBe(first);
    expect((await resolveSource({ git: url, ref: 'main' }, { cacheDir: tmp('c') })).commit).toBe(second);
    expect((await resolveSource({ git: url }, { cacheDir: tmp('c') })).commit).toBe(second);
    const dest = join(tmp('src'), 'x');
    await prepareSource({ git: url, ref: first }, { cacheDir: tmp('c'), dest });
    expect(readFileSync(join(dest, 'CMakeLists.txt'), 'utf8')).toBe('project(v1)\n');
  });

  it('an unknown ref or unreachable URL is a clear error', async () => {
    await expect(resolveSource({ git: `file://${repo}`, ref: 'nope' }, { cacheDir: tmp('c') })).rejects.toMatchObject({
      code: 'E_SOURCE', message: `llama.cpp source file://${repo}: no ref "nope"`,
    });
    await expect(resolveSource({ git: 'file:///nonexistent/repo', ref: 'main' }, { cacheDir: tmp('c') })).rejects.toThrow(/^llama\.cpp source file:\/\/\/nonexistent\/repo: git ls-remote failed/);
  });
});

describe('path source', () => {
  it('fingerprints a clean checkout by its commit and uses it in place', async () => {
    const dir = await llamaSource();
    const r = await resolveSource({ path: dir }, { cacheDir: tmp('c') });
    expect(r.commit).toBe(bundleHead);
    expect(r.params.state).toBe('clean');
    const p = await prepareSource({ path: dir }, { cacheDir: tmp('c'), dest: join(tmp('unused'), 'x') });
    expect(p.dir).toBe(dir);
  });

  it('a dirty change or an untracked file changes the fingerprint', async () => {
    const repo = tmp('dirty');
    git(repo, 'init', '-q');
    writeFileSync(join(repo, 'CMakeLists.txt'), 'a\n');
    git(repo, 'add', '.');
    git(repo, 'commit', '-q', '-m', 'a');
    const state = async () => (await resolveSource({ path: repo }, { cacheDir: tmp('c') })).params.state;
    expect(await state()).toBe('clean');
    writeFileSync(join(repo, 'CMakeLists.txt'), 'b\n');
    const dirty1 = await state();
    expect(dirty1).toMatch(/^dirty:[0-9a-f]{64}$/);
    writeFileSync(join(repo, 'new.c'), 'int x;\n');
    const dirty2 = await state();
    expect(dirty2).not.toBe(dirty1);
    writeFileSync(join(repo, 'new.c'), 'int y;\n');
    expect(await state()).not.toBe(dirty2);
  });

  it('a plain directory is fingerprinted by its files', async () => {
    const dir = tmp('plain');
    writeFileSync(join(dir, 'CMakeLists.txt'), 'x\n');
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src/a.c'), '1');
    const a = await resolveSource({ path: dir }, { cacheDir: tmp('c') });
    expect(a.commit).toBeNull();
    writeFileSync(join(dir, 'src/a.c'), '2');
    const b = await resolveSource({ path: dir }, { cacheDir: tmp('c') });
    expect(b.params.state).not.toBe(a.params.state);
  });

  it('a plain directory is declared to the engine as its files: not read by inputs(), its build dirs and .git left out', async () => {
    const dir = tmp('plain-inputs');
    writeFileSync(join(dir, 'CMakeLists.txt'), 'x\n');
    for (const d of ['src/build-helpers', 'build', 'build-cuda', '.git']) mkdirSync(join(dir, d), { recursive: true });
    writeFileSync(join(dir, 'src/a.c'), '1');
    writeFileSync(join(dir, 'src/build-helpers/b.c'), '2');
    writeFileSync(join(dir, 'build/a.o'), 'o');
    writeFileSync(join(dir, 'build-cuda/a.o'), 'o');
    writeFileSync(join(dir, 'build.sh'), 'a file, not a build directory');
    writeFileSync(join(dir, '.git/HEAD'), 'not a repository');
    const r = await sourceInputs({ path: dir }, { cacheDir: tmp('c') });
    expect(r.params).toEqual({ kind: 'path', path: dir, commit: null, state: 'files' });
    expect(r.files).toEqual(['CMakeLists.txt', 'build.sh', 'src'].map((n) => join(dir, n)));
    const keys = expandInputs(r.files, tmp('project'), 'build-llama').map((e) => e.key.replace(/^<outside:\d+>\//, ''));
    expect(keys.sort()).toEqual(['CMakeLists.txt', 'build.sh', 'src/a.c', 'src/build-helpers/b.c']);
  });

  it('a git checkout and a pinned source are declared by their commit, with no files', async () => {
    const dir = await llamaSource();
    const r = await sourceInputs({ path: dir }, { cacheDir: tmp('c') });
    expect(r).toEqual({ params: { kind: 'path', path: dir, commit: bundleHead, state: 'clean' }, files: [] });
    expect(await sourceInputs({ npm: 'node-llama-cpp@3.22.1' }, { cacheDir: tmp('c') })).toEqual({ params: { kind: 'npm', package: 'node-llama-cpp@3.22.1' }, files: [] });
  });

  it('a directory without CMakeLists.txt is refused', async () => {
    const dir = tmp('empty');
    await expect(resolveSource({ path: dir }, { cacheDir: tmp('c') })).rejects.toThrow(`llama.cpp source path ${dir}: no CMakeLists.txt there`);
  });
});

describe('npm source', () => {
  it('fetches node-llama-cpp with npm pack, uses its bundle, and caches it', async () => {
    const cacheDir = tmp('npm-cache');
    const r = await resolveSource({ npm: 'node-llama-cpp@3.22.1' }, { cacheDir });
    expect(r.commit).toBe(bundleHead);
    expect(r.bundle).toMatch(/sources\/npm\/node-llama-cpp-3\.22\.1\/gitRelease\.bundle$/);
    const mtime = statSync(r.bundle!).mtimeMs;
    const again = await resolveSource({ npm: 'node-llama-cpp@3.22.1' }, { cacheDir });
    expect(again.bundle).toBe(r.bundle);
    expect(statSync(r.bundle!).mtimeMs).toBe(mtime);
    expect(r.params).toEqual({ kind: 'npm', package: 'node-llama-cpp@3.22.1', commit: bundleHead });
  }, 300_000);
});

describe('source option schema', () => {
  it('accepts the four shapes and names the key of a bad one', () => {
    expect(sourceSpecSchema.parse({ npm: 'node-llama-cpp@3.22.1' }, 'tasks.build-llama.source')).toEqual({ npm: 'node-llama-cpp@3.22.1' });
    expect(() => sourceSpecSchema.parse({ git: 42 }, 'tasks.build-llama.source')).toThrow(/tasks\.build-llama\.source/);
    expect(() => sourceSpecSchema.parse('llama.cpp', 'tasks.build-llama.source')).toThrow(/tasks\.build-llama\.source/);
  });
});
