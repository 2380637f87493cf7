/**
 * `rocmflow server`, through the real CLI: a started server answers runs
 * with nothing to do, with the same events a run without it prints, and
 * declines (the CLI then runs) whenever anything changed: an input, an
 * environment variable a task reads, a JavaScript config's imported
 * module, a plugin's code. Each test has its own TMPDIR, so its own
 * socket directory and server.
 */
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO, rocmflow, states, workspace, type CliResult } from '../helpers/cli.js';

const { socketPath } = (await import(join(REPO, 'bin/server-client.js'))) as { socketPath(packageRoot: string): string };

const TASKS = `export default { tasks: [
  defineTask({
    name: 'count', outputs: ['n'],
    inputs: () => ({ files: ['data/*.txt'], env: ['GREETING'] }),
    async run(ctx) {
      const { readdirSync, writeFileSync } = await import('node:fs');
      writeFileSync(ctx.outDir + '/n', String(readdirSync(ctx.projectRoot + '/data').length) + (process.env.GREETING ?? ''));
      return { summary: ['counted'] };
    },
  }),
  defineTask({
    name: 'word', deps: ['count'], options: s.object({ word: s.optional(s.string()) }), outputs: ['w'],
    async run(ctx) { const { writeFileSync } = await import('node:fs'); writeFileSync(ctx.outDir + '/w', String(ctx.options.word)); },
  }),
] };`;

const started: { tmp: string; ws: string }[] = [];

afterEach(() => {
  for (const s of started.splice(0)) rocmflow(s.ws, ['server', 'stop'], env(s.tmp));
});

function env(tmp: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { TMPDIR: tmp, ROCMFLOW_NO_SERVER: '', GREETING: 'hi', ...extra };
}

/**
 * Files modified in the last two seconds are hashed on every run (their
 * stamps are not trusted yet: git's racy-clean rule), which the server
 * declines: the workspace's files are dated a minute back after each edit.
 */
function age(ws: string): void {
  const then = Date.now() / 1000 - 60;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      // not the state and the cache (their files are the store's blobs)
      if (e.name.startsWith('.') || e.name === 'cache') continue;
      if (e.isDirectory()) walk(join(d, e.name));
      utimesSync(join(d, e.name), then, then);
    }
  };
  walk(ws);
}

function edit(ws: string, file: string, content: string): void {
  writeFileSync(join(ws, file), content);
  const then = Date.now() / 1000 - 60;
  utimesSync(join(ws, file), then, then);
}

function setup(config?: string): { ws: string; tmp: string } {
  const ws = workspace({ tasks: TASKS, files: { 'data/a.txt': 'a', 'data/b.txt': 'b' }, config });
  const tmp = mkdtempSync(join(tmpdir(), 'rocmflow-srv-'));
  age(ws);
  return { ws, tmp };
}

function start(ws: string, tmp: string): void {
  const r = rocmflow(ws, ['server', 'start', '--idle-timeout', '5'], env(tmp));
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  started.push({ tmp, ws });
}

function status(ws: string, tmp: string): { running: boolean; requests?: number; served?: number; declined?: number; lastDeclined?: string } {
  return JSON.parse(rocmflow(ws, ['server', 'status', '--json'], env(tmp)).stdout);
}

/** The events of a run with what differs between any two runs (times, run ids) taken out. */
function comparable(r: CliResult): unknown[] {
  return r.events.map((e) => {
    const { ms: _ms, logDir: _l, ...rest } = e;
    return rest;
  });
}

describe('rocmflow server', () => {
  it('answers a run with nothing to do, with the events the CLI alone prints, and declines when an input or an env input changes', () => {
    const { ws, tmp } = setup();
    start(ws, tmp);
    const first = rocmflow(ws, ['run', 'word', '--json'], env(tmp));
    expect(states(first)).toEqual({ count: 'ran', word: 'ran' });
    expect(status(ws, tmp)).toMatchObject({ running: true, requests: 1, served: 0, declined: 1 });

    const served = rocmflow(ws, ['run', 'word', '--json'], env(tmp));
    expect(states(served)).toEqual({ count: 'fresh', word: 'fresh' });
    expect(status(ws, tmp)).toMatchObject({ requests: 2, served: 1 });
    const alone = rocmflow(ws, ['run', 'word', '--json'], env(tmp, { ROCMFLOW_NO_SERVER: '1' }));
    expect(comparable(served)).toEqual(comparable(alone));
    expect(status(ws, tmp)).toMatchObject({ requests: 2 });
    // the human output too (the reporter draws into the reply)
    const text = rocmflow(ws, ['run', 'word'], env(tmp));
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('fresh');
    expect(text.stdout).toContain('counted');
    expect(status(ws, tmp)).toMatchObject({ requests: 3, served: 2 });

    // an input's content: the server would have to hash it, so it declines, and the CLI runs
    edit(ws, 'data/a.txt', 'changed');
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp))).count).toBe('ran');
    expect(status(ws, tmp)).toMatchObject({ requests: 4, served: 2, declined: 2, lastDeclined: expect.stringContaining('count') });
    // a file added to the input glob
    edit(ws, 'data/c.txt', 'c');
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp))).count).toBe('ran');
    // an environment variable the task declares: the request's environment is the client's
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp, { GREETING: 'hello' }))).count).toBe('ran');
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp, { GREETING: 'hello' })))).toEqual({ count: 'fresh', word: 'fresh' });
    expect(status(ws, tmp)).toMatchObject({ requests: 7, served: 3, declined: 4 });
    // --force and --dry-run never reach it
    expect(states(rocmflow(ws, ['run', 'word', '--json', '--force'], env(tmp, { GREETING: 'hello' })))).toEqual({ count: 'ran', word: 'ran' });
    expect(rocmflow(ws, ['run', 'word', '--dry-run'], env(tmp, { GREETING: 'hello' })).code).toBe(0);
    expect(status(ws, tmp)).toMatchObject({ requests: 7 });
  });

  it('loads a JavaScript config and its imports again on every request, and a plugin\'s code', () => {
    const { ws, tmp } = setup();
    writeFileSync(join(ws, 'rocmflow.config.mjs'), `import { word } from './word.mjs';\nexport default { target: 'cpu', plugins: ['./tasks.ts'], tasks: { word: { word } } };\n`);
    rmSync(join(ws, 'rocmflow.config.ts'));
    edit(ws, 'word.mjs', `export const word = 'one';\n`);
    start(ws, tmp);
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp)))).toEqual({ count: 'ran', word: 'ran' });
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp)))).toEqual({ count: 'fresh', word: 'fresh' });
    expect(status(ws, tmp)).toMatchObject({ served: 1 });
    // the config's own import changes: a server that kept the module it first loaded would say fresh
    edit(ws, 'word.mjs', `export const word = 'two, a longer word';\n`);
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp)))).toEqual({ count: 'fresh', word: 'ran' });
    expect(status(ws, tmp)).toMatchObject({ served: 1, lastDeclined: expect.stringContaining('word') });
    // the plugin's code changes
    edit(ws, 'tasks.ts', `${readFileSync(join(ws, 'tasks.ts'), 'utf8')}\n// an edit\n`);
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp)))).toEqual({ count: 'ran', word: 'ran' });
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp)))).toEqual({ count: 'fresh', word: 'fresh' });
    expect(status(ws, tmp)).toMatchObject({ served: 2 });
  });

  it('answers a task with thousands of inputs (its state is kept parsed between requests) and declines once one of them changes', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 1500; i++) files[`many/d${i % 30}/f${i}.txt`] = `file ${i}`;
    const ws = workspace({
      tasks: `export default defineTask({ name: 'many', outputs: ['n'], inputs: () => ({ files: ['many'] }),
        async run(ctx) { const { readFileSync, writeFileSync } = await import('node:fs'); writeFileSync(ctx.outDir + '/n', readFileSync(ctx.projectRoot + '/many/d7/f7.txt')); } });`,
      files,
    });
    const tmp = mkdtempSync(join(tmpdir(), 'rocmflow-srv-'));
    age(ws);
    start(ws, tmp);
    expect(states(rocmflow(ws, ['run', 'many', '--json'], env(tmp)))).toEqual({ many: 'ran' });
    for (let i = 0; i < 3; i++) expect(states(rocmflow(ws, ['run', 'many', '--json'], env(tmp)))).toEqual({ many: 'fresh' });
    expect(status(ws, tmp)).toMatchObject({ requests: 4, served: 3 });
    edit(ws, 'many/d7/f7.txt', 'changed');
    const r = rocmflow(ws, ['run', 'many', '--json'], env(tmp));
    expect(states(r)).toEqual({ many: 'ran' });
    expect(readFileSync(join(ws, '.rocmflow/out/cpu/many/n'), 'utf8')).toBe('changed');
    expect(status(ws, tmp)).toMatchObject({ requests: 5, served: 3, lastDeclined: expect.stringContaining('1 input file(s) changed') });
    // the new state, not the one kept from before
    expect(states(rocmflow(ws, ['run', 'many', '--json'], env(tmp)))).toEqual({ many: 'fresh' });
    expect(status(ws, tmp)).toMatchObject({ requests: 6, served: 4 });
    // the same contents under a new ctime (a hard link made and removed): the CLI hashes the file, finds
    // the task fresh and records the new stamps, after which the server answers again (it declines a
    // state whose stamps are not the files' own: it does not write them)
    const { linkSync, unlinkSync } = await import('node:fs');
    linkSync(join(ws, 'many/d5/f5.txt'), join(ws, 'link'));
    unlinkSync(join(ws, 'link'));
    expect(states(rocmflow(ws, ['run', 'many', '--json'], env(tmp)))).toEqual({ many: 'fresh' });
    expect(status(ws, tmp)).toMatchObject({ requests: 7, served: 4, lastDeclined: expect.stringContaining('1 input file(s) changed') });
    expect(states(rocmflow(ws, ['run', 'many', '--json'], env(tmp)))).toEqual({ many: 'fresh' });
    expect(status(ws, tmp)).toMatchObject({ requests: 8, served: 5 });
    rmSync(join(ws, 'many/d3/f3.txt'));
    expect(states(rocmflow(ws, ['run', 'many', '--json'], env(tmp)))).toEqual({ many: 'ran' });
    expect(status(ws, tmp)).toMatchObject({ requests: 9, served: 5 });
  });

  it('declines what it could not see change (an npm package a config imports, a computed import), and follows the client\'s HOME and output', () => {
    const { ws, tmp } = setup();
    // a config that prints and reads HOME through os.homedir(), which reads the process's real environment
    writeFileSync(join(ws, 'rocmflow.config.ts'), `import { homedir } from 'node:os';\nconsole.log('config: loaded');\nconsole.error('config: a warning');\nexport default { target: 'cpu', plugins: ['./tasks.ts'], cacheDir: homedir() + '/cache' };\n`);
    mkdirSync(join(ws, 'home-a'));
    mkdirSync(join(ws, 'home-b'));
    age(ws);
    start(ws, tmp);
    const a = env(tmp, { HOME: join(ws, 'home-a') });
    expect(states(rocmflow(ws, ['run', 'word', '--json'], a))).toEqual({ count: 'ran', word: 'ran' });
    const served = rocmflow(ws, ['run', 'word', '--json'], a);
    expect(states(served)).toEqual({ count: 'fresh', word: 'fresh' });
    expect(status(ws, tmp)).toMatchObject({ served: 1 });
    // what the config printed reaches the client, as it does without a server
    expect(served.stdout.split('\n')[0]).toBe('config: loaded');
    expect(served.stderr).toBe('config: a warning\n');
    // another HOME: another cache, so nothing is fresh there
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp, { HOME: join(ws, 'home-b') })))).toEqual({ count: 'ran', word: 'ran' });
    expect(status(ws, tmp)).toMatchObject({ served: 1, lastDeclined: expect.stringContaining('no cache index') });
    // sources run through tsx are not the server's: the client does not ask
    expect(rocmflow(ws, ['run', 'word', '--json'], { ...a, ROCMFLOW_NO_BUILD_CACHE: '1' }).code).toBe(0);
    expect(status(ws, tmp)).toMatchObject({ requests: 3 });

    // an npm package imported by the config: Node would keep the first one it loaded
    mkdirSync(join(ws, 'node_modules/shared'), { recursive: true });
    writeFileSync(join(ws, 'node_modules/shared/package.json'), JSON.stringify({ name: 'shared', type: 'module', main: 'index.js' }));
    writeFileSync(join(ws, 'node_modules/shared/index.js'), `export const word = 'shared';\n`);
    edit(ws, 'rocmflow.config.ts', `import { homedir } from 'node:os';\nimport { word } from 'shared';\nexport default { target: 'cpu', plugins: ['./tasks.ts'], cacheDir: homedir() + '/cache', tasks: { word: { word } } };\n`);
    expect(states(rocmflow(ws, ['run', 'word', '--json'], a))).toEqual({ count: 'fresh', word: 'ran' });
    expect(states(rocmflow(ws, ['run', 'word', '--json'], a))).toEqual({ count: 'fresh', word: 'fresh' });
    expect(status(ws, tmp)).toMatchObject({ served: 1, lastDeclined: expect.stringContaining('imports the package shared') });
    // a computed import
    edit(ws, 'rocmflow.config.ts', `import { homedir } from 'node:os';\nconst m = './word' + '.mjs';\nconst { word } = await import(m);\nexport default { target: 'cpu', plugins: ['./tasks.ts'], cacheDir: homedir() + '/cache', tasks: { word: { word } } };\n`);
    edit(ws, 'word.mjs', `export const word = 'computed';\n`);
    expect(states(rocmflow(ws, ['run', 'word', '--json'], a))).toEqual({ count: 'fresh', word: 'ran' });
    expect(states(rocmflow(ws, ['run', 'word', '--json'], a))).toEqual({ count: 'fresh', word: 'fresh' });
    expect(status(ws, tmp)).toMatchObject({ served: 1, lastDeclined: expect.stringContaining('calls import(') });
  });

  it('declines a config that require()s a package, keeps state on globalThis, or imports what Node would not find; follows a file replaced with its old size and mtime', () => {
    const { ws, tmp } = setup();
    rmSync(join(ws, 'rocmflow.config.ts'));
    const config = (body: string) => edit(ws, 'rocmflow.config.mjs', `${body}\nexport default { target: 'cpu', plugins: ['./tasks.ts'], tasks: { word: { word } } };\n`);
    config(`import { word } from './word.mjs';`);
    edit(ws, 'word.mjs', `export const word = 'aaaa';\n`);
    start(ws, tmp);
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp)))).toEqual({ count: 'ran', word: 'ran' });
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp)))).toEqual({ count: 'fresh', word: 'fresh' });
    expect(status(ws, tmp)).toMatchObject({ served: 1 });
    // the same size, the old mtime (cp -p, rsync -a): the bundle's stamps must still see it
    const old = statSync(join(ws, 'word.mjs'));
    writeFileSync(join(ws, 'word.mjs'), `export const word = 'bbbb';\n`);
    utimesSync(join(ws, 'word.mjs'), old.atime, old.mtime);
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp)))).toEqual({ count: 'fresh', word: 'ran' });
    expect(readFileSync(join(ws, '.rocmflow/out/cpu/word/w'), 'utf8')).toBe('bbbb');

    // a package through createRequire: Node keeps it for the process's life
    mkdirSync(join(ws, 'node_modules/shared'), { recursive: true });
    writeFileSync(join(ws, 'node_modules/shared/package.json'), JSON.stringify({ name: 'shared', main: 'index.js' }));
    writeFileSync(join(ws, 'node_modules/shared/index.js'), `module.exports = { word: 'cjs' };\n`);
    config(`import { createRequire } from 'node:module';\nconst { word } = createRequire(import.meta.url)('shared');`);
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp)))).toEqual({ count: 'fresh', word: 'ran' });
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp)))).toEqual({ count: 'fresh', word: 'fresh' });
    expect(status(ws, tmp)).toMatchObject({ served: 1, lastDeclined: expect.stringContaining('CommonJS') });

    // state kept on globalThis from one request to the next
    config(`globalThis.rocmflowRuns = (globalThis.rocmflowRuns ?? 0) + 1;\nconst word = 'global';`);
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp)))).toEqual({ count: 'fresh', word: 'ran' });
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp)))).toEqual({ count: 'fresh', word: 'fresh' });
    expect(status(ws, tmp)).toMatchObject({ served: 1, lastDeclined: expect.stringContaining('globalThis (rocmflowRuns)') });

    // an import Node would not find as written (no extension): the CLI fails, and so must the run the server is asked
    edit(ws, 'wts.ts', `export const word: string = 'ts';\n`);
    config(`import { word } from './wts';`);
    const alone = rocmflow(ws, ['run', 'word', '--json'], env(tmp, { ROCMFLOW_NO_SERVER: '1' }));
    expect(alone.code).toBe(2);
    expect(rocmflow(ws, ['run', 'word', '--json'], env(tmp)).code).toBe(2);
    expect(status(ws, tmp)).toMatchObject({ served: 1, lastDeclined: expect.stringContaining('would not find as written') });
  });

  it('stops when a request leaves listeners on the process (a config that hooks it on load would, every time)', () => {
    const { ws, tmp } = setup();
    edit(ws, 'rocmflow.config.ts', `process.on('exit', () => {});\nexport default { target: 'cpu', plugins: ['./tasks.ts'] };\n`);
    start(ws, tmp);
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp)))).toEqual({ count: 'ran', word: 'ran' });
    expect(status(ws, tmp)).toEqual({ running: false });
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp)))).toEqual({ count: 'fresh', word: 'fresh' });
  });

  it('stops on request and when asked twice to start runs one; a socket directory another user could write is not used', () => {
    const { ws, tmp } = setup();
    start(ws, tmp);
    expect(rocmflow(ws, ['server', 'start'], env(tmp)).stdout).toContain('running already');
    expect(rocmflow(ws, ['server', 'stop'], env(tmp)).stdout).toContain('stopped');
    expect(status(ws, tmp)).toEqual({ running: false });
    const sock = withTmp(tmp, () => socketPath(REPO));
    expect(lstatSync(sock, { throwIfNoEntry: false })).toBeUndefined();

    // the directory made writable by others: the client does not connect, and no server starts there
    start(ws, tmp);
    chmodSync(join(sock, '..'), 0o777);
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp)))).toEqual({ count: 'ran', word: 'ran' });
    expect(states(rocmflow(ws, ['run', 'word', '--json'], env(tmp)))).toEqual({ count: 'fresh', word: 'fresh' });
    chmodSync(join(sock, '..'), 0o700);
    expect(status(ws, tmp)).toMatchObject({ requests: 0 });
  });

  it('refuses to start where its socket directory is not a private directory', () => {
    const { ws, tmp } = setup();
    const dir = withTmp(tmp, () => join(socketPath(REPO), '..'));
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o777);
    const r = rocmflow(ws, ['server', 'start'], env(tmp));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not a directory of this user's alone/);
  });
});

function withTmp<T>(tmp: string, f: () => T): T {
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  try {
    return f();
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
}

