/**
 * rocmflow as users get it: `npm pack` of this checkout (which builds dist/:
 * compiled JavaScript and .d.ts), installed into an empty project from the
 * tarball, with only the npm registry to install from. One install serves
 * every case: the CLI through npx with an empty config, a gfx1201 target
 * plugin of the project's own that imports only `rocmflow/plugin`, `rocm
 * list` for it against a TheRock index served on 127.0.0.1, and a strict
 * type check of the project.
 *
 * Cost: the tarball's build (tsc) and one `npm install --prefer-offline`
 * (the packages come from npm's cache after this checkout's `npm ci`).
 * Install scripts are skipped and the sqlite3 binding this checkout already
 * built (the same version, from the same lockfile) is copied in, so the
 * test does not compile SQLite again. `run trim-runtime --target cpu` from
 * the installed package builds llama.cpp: scripts/package-e2e.sh does that.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { startServer, type TestServer } from '../fetch/helpers/server.js';

const version = (pkg: string) => JSON.parse(readFileSync(join(REPO, 'node_modules', pkg, 'package.json'), 'utf8')).version as string;

let project: string;
let server: TestServer;

/** Run a command of the project through npx, as a user's shell would (the test's server keeps serving meanwhile). */
function npx(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('npx', ['--no-install', ...args], {
    cwd: project,
    // nothing of this checkout's test environment
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', ROCMFLOW_CACHE_DIR: join(project, 'cache') },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

beforeAll(async () => {
  const packDir = mkdtempSync(join(tmpdir(), 'rocmflow-pack-'));
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: REPO, encoding: 'utf8', maxBuffer: 64 << 20 }));
  const tarball = join(packDir, packed[0].filename);
  const files: string[] = packed[0].files.map((f: { path: string }) => f.path);
  // compiled JavaScript and types only: no TypeScript sources, tests or scripts
  expect(files).toContain('dist/src/plugin/index.d.ts');
  expect(files).toContain('dist/src/cli/bin.js');
  expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);

  project = mkdtempSync(join(tmpdir(), 'rocmflow-user-'));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'my-gpu-project', private: true, type: 'module' }, null, 2));
  execFileSync('npm', ['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', tarball, `typescript@${version('typescript')}`, `@types/node@${version('@types/node')}`], {
    cwd: project, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000,
  });
  expect(version('sqlite3')).toBe(JSON.parse(readFileSync(join(project, 'node_modules/sqlite3/package.json'), 'utf8')).version);
  cpSync(join(REPO, 'node_modules/sqlite3/build'), join(project, 'node_modules/sqlite3/build'), { recursive: true });

  // the walk-through of plugins/README.md: a target of the project's own, and a config naming it
  writeFileSync(join(project, 'gfx1201.ts'), `import { amdTarget } from 'rocmflow/plugin';

export default amdTarget({
  name: 'gfx1201',
  arch: 'gfx1201',
  family: 'gfx120X-all',
  description: 'AMD RDNA4 (gfx1201: RX 9070 series) with TheRock ROCm',
});
`);
  writeFileSync(join(project, 'rocmflow.config.ts'), `import { defineConfig } from 'rocmflow';

export default defineConfig({
  plugins: ['./gfx1201.ts'],
  targets: { gfx1201: { rocwmmaFlashAttention: true } },
});
`);
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
    // as `tsc --init` writes it: declaration files of packages are not checked (zx's name fs-extra types it does not install)
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', types: ['node'], skipLibCheck: true },
    include: ['*.ts'],
  }, null, 2));

  const page = `<script>const files = [{name: 'therock-dist-linux-gfx120X-all-7.13.0a20260501.tar.gz', mtime: 1777593600, size: 2500000000}, {name: 'therock-dist-linux-gfx1151-7.13.0a20260501.tar.gz', mtime: 1777593600, size: 2400000000}];</script>`;
  server = await startServer({ '/tarball/': { body: page, contentType: 'text/html' } });
}, 900_000);

afterAll(() => server?.close());

describe('the installed package', () => {
  it('runs from its compiled files: the TypeScript sources are not there', async () => {
    const pkg = join(project, 'node_modules/rocmflow');
    expect(readdirSync(pkg).sort()).toEqual(['README.md', 'bin', 'dist', 'docs', 'node_modules', 'package.json', 'plugins'].filter((f) => existsSync(join(pkg, f))));
    expect(existsSync(join(pkg, 'src'))).toBe(false);
  });

  it('`npx rocmflow targets` lists the project plugin target beside the built-ins', async () => {
    const r = await npx(['rocmflow', 'targets', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.targets.map((t: { name: string }) => t.name)).toEqual(['gfx1100', 'gfx1151', 'gfx1201', 'cuda', 'cpu']);
    expect(j.targets[2]).toMatchObject({ family: 'rocm', arch: 'gfx1201', runtime: 'therock gfx120X-all' });
  });

  it('`rocm list --target gfx1201` finds its TheRock family in a local index', async () => {
    const r = await npx(['rocmflow', 'rocm', 'list', '--target', 'gfx1201', '--index', `${server.url}/tarball/`, '--json']);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ family: 'gfx120X-all', version: '7.13.0a20260501', name: 'therock-dist-linux-gfx120X-all-7.13.0a20260501.tar.gz' })]);
  });

  it('`run --dry-run` plans the whole pipeline from the defaults with an empty task config', async () => {
    const cpu = await npx(['rocmflow', 'run', 'trim-runtime', '--target', 'cpu', '--dry-run', '--json']);
    expect(cpu.stderr).toBe('');
    expect(cpu.code).toBe(0);
    const plan = cpu.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    expect(plan.filter((e) => e.type === 'dry-run').map((e) => e.task)).toEqual(['detect-target', 'base-root', 'fetch-rocm', 'gpu-coverage', 'build-llama', 'model', 'numerics-reference', 'strace-trace', 'snapshot-rocm', 'trim-runtime']);
  });

  it('a typo in the plugin target options is an error naming the config file and key', async () => {
    writeFileSync(join(project, 'bad.config.ts'), `import { defineConfig } from 'rocmflow';\nexport default defineConfig({ plugins: ['./gfx1201.ts'], targets: { gfx1201: { rocwmma: true } } });\n`);
    const r = await npx(['rocmflow', 'targets', '--config', 'bad.config.ts']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`rocmflow: ${join(project, 'bad.config.ts')}: targets.gfx1201.rocwmma: unknown key (did you mean "rocwmmaFlashAttention"?)`);
  });

  it('the project type-checks under tsc --strict --noUncheckedIndexedAccess (rocmflow\'s types included)', async () => {
    const r = await npx(['tsc', '--strict', '--noUncheckedIndexedAccess', '--noEmit', '-p', '.']);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
