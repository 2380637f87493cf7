/**
 * base-root through the real CLI on small real roots: a directory root and
 * an OCI layout made with umoci (no debootstrap here: that is
 * scripts/amd-debian.sh); the record (os-release, dpkg packages with
 * versions) and its place in the keys of the tasks that run in the root;
 * bad sources named by key.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { baseRootSourceSchema } from '../../src/baseroot/types.js';
import { parseDpkgStatus, readOsRelease, rootPath } from '../../src/baseroot/inspect.js';
import { debootstrapPlan, rootId } from '../../src/baseroot/make.js';
import { which } from '../../src/util/which.js';
import { rocmflow } from '../helpers/cli.js';

const temps: string[] = [];
const temp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

const STATUS = (pkgs: [string, string][]) =>
  pkgs.map(([n, v]) => `Package: ${n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${v}\nDescription: x\n continued line\n`).join('\n') +
  '\nPackage: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n';

/** A small root: os-release, a dpkg status file, and an empty usr/. */
function smallRoot(dir: string, pkgs: [string, string][]): string {
  mkdirSync(join(dir, 'usr/lib'), { recursive: true });
  mkdirSync(join(dir, 'etc'), { recursive: true });
  mkdirSync(join(dir, 'var/lib/dpkg'), { recursive: true });
  writeFileSync(join(dir, 'etc/os-release'), 'PRETTY_NAME="Debian GNU/Linux forky/sid"\nNAME="Debian GNU/Linux"\nVERSION_CODENAME=forky\nID=debian\n');
  writeFileSync(join(dir, 'var/lib/dpkg/status'), STATUS(pkgs));
  writeFileSync(join(dir, 'usr/lib/data'), 'x'.repeat(1000));
  return dir;
}

describe('base root sources', () => {
  it('accept host, debootstrap, dir and oci, and name the key of a bad one', () => {
    expect(baseRootSourceSchema.parse('host', 'tasks.base-root.source')).toBe('host');
    expect(baseRootSourceSchema.parse({ debootstrap: { suite: 'sid', packages: ['hipcc'] } }, 'x')).toEqual({ debootstrap: { suite: 'sid', packages: ['hipcc'] } });
    expect(baseRootSourceSchema.parse({ dir: 'roots/sid' }, 'x')).toEqual({ dir: 'roots/sid' });
    expect(baseRootSourceSchema.parse({ oci: 'base.oci.tar', image: 'latest' }, 'x')).toEqual({ oci: 'base.oci.tar', image: 'latest' });
    expect(() => baseRootSourceSchema.parse({ debootstrap: { suite: 'sid', packages: ['-o=evil'] } }, 'tasks.base-root.source')).toThrow(/^tasks\.base-root\.source\.debootstrap: "-o=evil"/);
    expect(() => baseRootSourceSchema.parse({ debootstrap: { suite: 'sid', mirror: 'ftp://x' } }, 's')).toThrow(/s\.debootstrap\.mirror: expected an http/);
    expect(() => baseRootSourceSchema.parse({ dir: 'a', oci: 'b' }, 'tasks.base-root.source')).toThrow(/^tasks\.base-root\.source: expected "host"/);
    expect(() => baseRootSourceSchema.parse('ubuntu', 's')).toThrow(/^s: expected/);
  });

  it('make one debootstrap plan (and root directory) for one set of packages, in any order', () => {
    const a = debootstrapPlan({ suite: 'sid', packages: ['cmake', 'g++'] }, ['hipcc', 'cmake']);
    expect(a).toEqual({ suite: 'sid', mirror: 'http://deb.debian.org/debian', variant: 'minbase', components: ['main'], packages: ['cmake', 'g++', 'hipcc'] });
    const b = debootstrapPlan({ suite: 'sid', packages: ['hipcc', 'g++'] }, ['cmake']);
    expect(rootId({ debootstrap: a })).toBe(rootId({ debootstrap: b }));
    expect(rootId({ debootstrap: a })).toMatch(/^roots\/[0-9a-f]{20}$/);
    expect(rootId({ debootstrap: a })).not.toBe(rootId({ debootstrap: { ...a, suite: 'trixie' } }));
  });

  it('read installed packages and os-release from files, and refuse a cache location outside the cache', async () => {
    expect(parseDpkgStatus(STATUS([['zlib1g', '1:1.3'], ['hipcc', '7.0.2-1']]))).toEqual([
      { name: 'hipcc', version: '7.0.2-1', architecture: 'amd64' },
      { name: 'zlib1g', version: '1:1.3', architecture: 'amd64' },
    ]);
    const root = smallRoot(temp('rocmflow-root-'), []);
    expect(await readOsRelease(root)).toEqual({ id: 'debian', versionId: null, prettyName: 'Debian GNU/Linux forky/sid' });
    expect(rootPath({ location: { cache: 'roots/abc' } }, '/c', '/p')).toBe('/c/roots/abc');
    expect(rootPath({ location: { path: 'r' } }, '/c', '/p')).toBe('/p/r');
    expect(() => rootPath({ location: { cache: '../../etc' } }, '/c', '/p')).toThrow(/not inside the cache/);
  });
});

function workspace(source: unknown): string {
  const ws = temp('rocmflow-ws-root-');
  writeFileSync(join(ws, 'rocmflow.config.ts'), `export default ${JSON.stringify({ target: 'cpu', stateDir: join(ws, 'state'), cacheDir: join(ws, 'cache'), tasks: { 'base-root': { source } } }, null, 2)};\n`);
  return ws;
}

describe('rocmflow run base-root', () => {
  it('records a directory root: os, packages with versions; a package upgrade changes the key', () => {
    const root = smallRoot(temp('rocmflow-dirroot-'), [['libamdhip64-6', '6.4.3-1'], ['cmake', '4.1.2-1']]);
    const ws = workspace({ dir: root });
    const r = rocmflow(ws, ['run', 'base-root', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rec = JSON.parse(readFileSync(join(ws, 'state/out/cpu/base-root/root.json'), 'utf8'));
    expect(rec.kind).toBe('dir');
    expect(rec.location).toEqual({ path: root });
    expect(rec.os.prettyName).toBe('Debian GNU/Linux forky/sid');
    expect(rec.packages).toEqual([
      { name: 'cmake', version: '4.1.2-1', architecture: 'amd64' },
      { name: 'libamdhip64-6', version: '6.4.3-1', architecture: 'amd64' },
    ]);
    expect(rec.size).toEqual({ bytes: 1000 + readFileSync(join(root, 'etc/os-release')).length + readFileSync(join(root, 'var/lib/dpkg/status')).length, files: 3 });
    expect(r.events.find((e) => e.type === 'task' && e.task === 'base-root')?.state).toBe('ran');
    // unchanged: fresh; a package upgraded in the root: runs again
    expect(rocmflow(ws, ['run', 'base-root', '--json']).events.find((e) => e.type === 'task' && e.task === 'base-root')?.state).toBe('fresh');
    writeFileSync(join(root, 'var/lib/dpkg/status'), STATUS([['libamdhip64-6', '6.4.4-1'], ['cmake', '4.1.2-1']]));
    const again = rocmflow(ws, ['explain', 'base-root', '--json']);
    expect(JSON.parse(again.stdout).state).toBe('run');
  });

  it('refuses a directory that is not a root, naming the key', () => {
    const ws = workspace({ dir: temp('rocmflow-notroot-') });
    const r = rocmflow(ws, ['run', 'base-root', '--json']);
    expect(r.code).not.toBe(0);
    const failed = r.events.find((e) => e.type === 'task' && e.task === 'base-root');
    expect(failed?.error).toMatch(/^tasks\.base-root\.source\.dir: .* is not a root directory \(no usr\/ in it\)$/);
  });

  it('unpacks an OCI layout with umoci into the cache, once', () => {
    if (!which('umoci')) return;
    const dir = temp('rocmflow-oci-');
    const layout = join(dir, 'layout');
    execFileSync('umoci', ['init', '--layout', layout]);
    execFileSync('umoci', ['new', '--image', `${layout}:base`]);
    execFileSync('umoci', ['unpack', '--image', `${layout}:base`, join(dir, 'bundle')]);
    smallRoot(join(dir, 'bundle/rootfs'), [['libc6', '2.43-1']]);
    execFileSync('umoci', ['repack', '--image', `${layout}:base`, join(dir, 'bundle')]);
    const ws = workspace({ oci: layout });
    const r = rocmflow(ws, ['run', 'base-root', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rec = JSON.parse(readFileSync(join(ws, 'state/out/cpu/base-root/root.json'), 'utf8'));
    expect(rec.kind).toBe('oci');
    expect(rec.location.cache).toMatch(/^roots\/[0-9a-f]{20}$/);
    expect(rec.packages).toEqual([{ name: 'libc6', version: '2.43-1', architecture: 'amd64' }]);
    const unpacked = join(ws, 'cache', rec.location.cache);
    expect(readFileSync(join(unpacked, 'usr/lib/data'), 'utf8')).toBe('x'.repeat(1000));
    expect(existsSync(`${unpacked}.done`)).toBe(true);
    // uncacheable (the root lives beside the cache): it runs again, reusing the unpacked root, with the same record
    const second = rocmflow(ws, ['run', 'base-root', '--json']);
    expect(second.code).toBe(0);
    expect(JSON.parse(readFileSync(join(ws, 'state/out/cpu/base-root/root.json'), 'utf8'))).toEqual(rec);
  });
});
