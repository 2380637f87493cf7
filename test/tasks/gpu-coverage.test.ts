/**
 * gpu-coverage through the real CLI and engine: a ROCm directory (TheRock's
 * layout, fetch-rocm's `dir` source) with rocBLAS kernel files and a HIP
 * library made of the fat-binary fixtures; the findings reach the summary,
 * the `--json` events and coverage.json, and `strict` turns a miss into a
 * failed task before build-llama.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rocmflow, states } from '../helpers/cli.js';
import { fixture } from '../fatbin/helpers.js';

let dir: string;
let rocm: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rocmflow-coverage-'));
  rocm = join(dir, 'rocm');
  mkdirSync(join(rocm, 'lib/rocblas/library'), { recursive: true });
  for (const a of ['gfx1100', 'gfx1101']) for (const f of [`TensileLibrary_lazy_${a}.dat`, `Kernels.so-000-${a}.hsaco`]) writeFileSync(join(rocm, 'lib/rocblas/library', f), f);
  copyFileSync(fixture('libtiny-hip.so'), join(rocm, 'lib/librocblas.so.4'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ws(target: string, strict: boolean): string {
  const w = mkdtempSync(join(dir, 'ws-'));
  writeFileSync(join(w, 'rocmflow.config.ts'), `export default { target: ${JSON.stringify(target)}, tasks: { 'fetch-rocm': { source: { kind: 'dir', path: ${JSON.stringify(rocm)} } }, 'gpu-coverage': { strict: ${strict} } } };\n`);
  return w;
}

describe('the gpu-coverage task', () => {
  it('gfx1151: warns for the kernel directory, names what it has, and reports the list in --json', () => {
    const w = ws('gfx1151', false);
    const r = rocmflow(w, ['run', 'gpu-coverage', '--json', '--cache-dir', join(w, 'cache')]);
    expect(r.code, r.stderr).toBe(0);
    expect(states(r)).toMatchObject({ 'fetch-rocm': 'ran', 'gpu-coverage': 'ran' });
    const warn = r.events.filter((e) => e.type === 'warning' && e.task === 'gpu-coverage').map((e) => e.message);
    expect(warn).toContainEqual('rocblas: kernel directory /opt/rocm/lib/rocblas/library has no files for gfx1151 (it has gfx1100, gfx1101)');
    const summary = r.events.find((e) => e.type === 'summary');
    expect(summary.lines).toContainEqual(expect.stringMatching(/^coverage before the build: 1 of 2 kernel directories and fat binaries have no gfx1151 code/));
    const expected = [
      { library: '/opt/rocm/lib/librocblas.so.4', directory: null, kind: 'fatbin', format: 'hip', arches: ['gfx1100', 'gfx1151'], missing: false, coveredBy: ['gfx1151'] },
      { library: 'rocblas', directory: '/opt/rocm/lib/rocblas/library', kind: 'kernels', arches: ['gfx1100', 'gfx1101'], missing: true, coveredBy: [], files: 4, neutralFiles: 0 },
    ];
    expect(summary.facts['gpu-coverage']).toEqual({ target: 'gfx1151', coverage: expected });
    expect(r.events.find((e) => e.type === 'task' && e.task === 'gpu-coverage').facts.coverage).toEqual(expected);
    const outDir = readdirOut(w);
    expect(JSON.parse(readFileSync(join(outDir, 'coverage.json'), 'utf8')).coverage).toEqual(expected);

    // a second run is fresh, and still carries the facts
    const again = rocmflow(w, ['run', 'gpu-coverage', '--json', '--cache-dir', join(w, 'cache')]);
    expect(states(again)['gpu-coverage']).toBe('fresh');
    expect(again.events.find((e) => e.type === 'summary').facts['gpu-coverage'].coverage).toEqual(expected);

    // another workspace with the same cache: restored from the cache, facts included
    const other = ws('gfx1151', false);
    const restored = rocmflow(other, ['run', 'gpu-coverage', '--json', '--cache-dir', join(w, 'cache')]);
    expect(states(restored)['gpu-coverage']).toBe('cached');
    expect(restored.events.find((e) => e.type === 'task' && e.task === 'gpu-coverage').facts.coverage).toEqual(expected);
  });

  it('strict: the miss fails the task and build-llama never starts', () => {
    const w = ws('gfx1151', true);
    const r = rocmflow(w, ['run', 'build-llama', '--json', '--cache-dir', join(w, 'cache')]);
    expect(r.code).not.toBe(0);
    const failed = r.events.find((e) => e.type === 'task' && e.task === 'gpu-coverage');
    expect(failed).toMatchObject({ state: 'failed' });
    expect(failed.error).toMatch(/1 of 2 GPU libraries and kernel directories before the build have no code for gfx1151 \(tasks\.gpu-coverage\.strict\)/);
    expect(failed.details).toEqual(['rocblas: kernel directory /opt/rocm/lib/rocblas/library has no files for gfx1151 (it has gfx1100, gfx1101)']);
    expect(states(r)['build-llama']).toBe('skipped');
  });

  it('gfx1100 under strict: covered, one line', () => {
    const w = ws('gfx1100', true);
    const r = rocmflow(w, ['run', 'gpu-coverage', '--json', '--cache-dir', join(w, 'cache')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.events.find((e) => e.type === 'summary').lines).toContain('coverage before the build: gfx1100 covered by all 2 kernel directories and fat binaries of 2 libraries');
  });
});

describe('gpu-coverage with a distribution\'s ROCm in the base root', () => {
  it('finds Debian\'s rocBLAS under /usr/lib/x86_64-linux-gnu of the base root, before the build', () => {
    // Debian's layout: no /opt/rocm tree (fetch-rocm none), the libraries and kernel files in the root's multiarch directory
    const root = join(dir, 'debian-root');
    const lib = join(root, 'usr/lib/x86_64-linux-gnu');
    mkdirSync(join(lib, 'rocblas/4.4.1/library'), { recursive: true });
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc/os-release'), 'PRETTY_NAME="Debian GNU/Linux forky/sid"\nID=debian\n');
    for (const f of ['TensileLibrary_lazy_gfx1100.dat', 'Kernels.so-000-gfx1100.hsaco', 'TensileLibrary_Type_HH_fallback.dat']) writeFileSync(join(lib, 'rocblas/4.4.1/library', f), f);
    copyFileSync(fixture('libtiny-hip.so'), join(lib, 'librocblas.so.4.4'));
    const w = mkdtempSync(join(dir, 'ws-'));
    writeFileSync(join(w, 'rocmflow.config.ts'), `export default { target: 'gfx1151', tasks: { 'base-root': { source: { dir: ${JSON.stringify(root)} } }, 'fetch-rocm': { source: { kind: 'none' } } } };\n`);
    const r = rocmflow(w, ['run', 'gpu-coverage', '--json', '--cache-dir', join(w, 'cache')]);
    expect(r.code, r.stderr).toBe(0);
    const warn = r.events.filter((e) => e.type === 'warning' && e.task === 'gpu-coverage').map((e) => e.message);
    expect(warn).toEqual(['rocblas: kernel directory /usr/lib/x86_64-linux-gnu/rocblas/4.4.1/library has no files for gfx1151 (it has gfx1100, and 1 arch-neutral files)']);
    const facts = r.events.find((e) => e.type === 'summary').facts['gpu-coverage'].coverage;
    expect(facts).toContainEqual(expect.objectContaining({ library: '/usr/lib/x86_64-linux-gnu/librocblas.so.4.4', kind: 'fatbin', missing: false }));
    expect(facts).toContainEqual(expect.objectContaining({ directory: '/usr/lib/x86_64-linux-gnu/rocblas/4.4.1/library', missing: true, neutralFiles: 1 }));
  });
});

/** gpu-coverage's output directory in workspace `w`, from where coverage.json landed. */
function readdirOut(w: string): string {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name === 'coverage.json') found.push(d);
    }
  };
  walk(w);
  expect(found.length).toBe(1);
  return found[0]!;
}
