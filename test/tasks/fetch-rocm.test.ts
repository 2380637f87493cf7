/**
 * fetch-rocm's body (inputs, outputs, run) against a local TheRock-style
 * server: real index pages, real tarballs, real downloads and extraction.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import task from '../../tasks/fetch-rocm.js';
import { countFiles, fetchRuntime, runtimeInputs, runtimeOutputs, runtimeRoot } from '../../src/fetch/fetch-runtime.js';
import type { RuntimeSource } from '../../src/plugin/types.js';
import { startServer, type TestServer } from '../fetch/helpers/server.js';
import { makeTheRockTree, tarTree } from '../fetch/helpers/therock-tree.js';

let tmp: string;
let server: TestServer;
const tarballs: Record<string, Buffer> = {};
const NEW = 'therock-dist-linux-gfx1151-7.13.0a20260430.tar.gz';
const OLD = 'therock-dist-linux-gfx1151-7.12.0rc2.tar.gz';
const NEWER = 'therock-dist-linux-gfx1151-7.13.0a20260501.tar.gz';

function indexPage(names: string[]): string {
  return `<html><script>const files = [${names.map((n, i) => `{"name": "${n}", "mtime": ${1777000000 + i}}`).join(',\n')}];</script></html>`;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'rocmflow-fetch-task-'));
  for (const [name, version, top] of [[NEW, '7.13.0a20260430', 'therock'], [OLD, '7.12.0rc2', undefined], [NEWER, '7.13.0a20260501', undefined]] as const) {
    const tree = join(tmp, `tree-${version}`);
    makeTheRockTree(tree, { version, commit: `commit-${version}` });
    tarballs[name] = readFileSync(tarTree(tree, join(tmp, name), { compression: 'gz', topDir: top }));
  }
  server = await startServer({
    '/tarball/': { body: indexPage([OLD, NEW, 'therock-dist-linux-gfx110X-all-7.13.0a20260430.tar.gz']), contentType: 'text/html' },
    [`/tarball/${NEW}`]: { body: tarballs[NEW]! },
    [`/tarball/${OLD}`]: { body: tarballs[OLD]! },
    [`/tarball/${NEWER}`]: { body: tarballs[NEWER]! },
  });
});
afterAll(async () => {
  await server.close();
  rmSync(tmp, { recursive: true, force: true });
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const tarballGets = (name: string) => server.seen.filter((s) => s.path === `/tarball/${name}`).length;

describe('fetch-rocm: therock', () => {
  it('resolves the newest build at fingerprint time, fetches exactly that, and records it', async () => {
    const cacheDir = join(tmp, 'cache1');
    const source: RuntimeSource = { kind: 'therock', family: 'gfx1151', index: `${server.url}/tarball/` };
    const inputs = await runtimeInputs(source, { cacheDir });
    expect(inputs.params!.resolved).toMatchObject({ name: NEW, url: `${server.url}/tarball/${NEW}`, version: '7.13.0a20260430' });

    const out = join(tmp, 'out1');
    const rec = await fetchRuntime(source, out, { cacheDir });
    expect(rec).toMatchObject({
      kind: 'therock', name: NEW, url: `${server.url}/tarball/${NEW}`, family: 'gfx1151', version: '7.13.0a20260430',
      rocmVersion: '7.13.0a20260430', buildId: 'commit-7.13.0a20260430', size: tarballs[NEW]!.length, sha256: sha(tarballs[NEW]!), topDir: 'therock',
    });
    expect(rec.files).toBe(await countFiles(join(tmp, 'tree-7.13.0a20260430')));
    expect(JSON.parse(readFileSync(join(out, 'fetch.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(rec)));
    expect(readlinkSync(join(out, 'rocm/llvm'))).toBe('lib/llvm');
    expect(readFileSync(join(out, 'rocm/lib/libamdhip64.so.7')).subarray(1, 4).toString()).toBe('ELF');
    expect(await runtimeRoot(out)).toBe(join(out, 'rocm'));
    expect(readdirSync(out).sort()).toEqual(runtimeOutputs(source).sort());

    // a second fetch (a fresh output dir) reuses the verified download
    const before = tarballGets(NEW);
    const again = await fetchRuntime(source, join(tmp, 'out1b'), { cacheDir });
    expect(again.sha256).toBe(rec.sha256);
    expect(tarballGets(NEW)).toBe(before);
  });

  it('goes stale when a new nightly appears; run() fetches what the fingerprint named; an unreachable index reuses the last answer', async () => {
    const cacheDir = join(tmp, 'cache2');
    const source: RuntimeSource = { kind: 'therock', family: 'gfx1151', index: `${server.url}/tarball/` };
    const first = await runtimeInputs(source, { cacheDir });
    expect((first.params!.resolved as { name: string }).name).toBe(NEW);

    server.routes.set('/tarball/', { body: indexPage([OLD, NEW, NEWER]), contentType: 'text/html' });
    try {
      // the fingerprint was taken before the new nightly: run() must not switch under it
      const rec = await fetchRuntime(source, join(tmp, 'out2'), { cacheDir });
      expect(rec.name).toBe(NEW);
      const second = await runtimeInputs(source, { cacheDir });
      expect((second.params!.resolved as { name: string }).name).toBe(NEWER);
      expect(second.params).not.toEqual(first.params);

      server.routes.set('/tarball/', { body: '', status: 503 });
      const warnings: string[] = [];
      const offline = await runtimeInputs(source, { cacheDir, warn: (m) => warnings.push(m) });
      expect(offline.params).toEqual(second.params);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/HTTP 503.*using the build resolved at .*7\.13\.0a20260501/);
    } finally {
      server.routes.set('/tarball/', { body: indexPage([OLD, NEW, 'therock-dist-linux-gfx110X-all-7.13.0a20260430.tar.gz']), contentType: 'text/html' });
    }
  });

  it('fetches a pinned version; an unknown one lists what exists', async () => {
    const cacheDir = join(tmp, 'cache3');
    const rec = await fetchRuntime({ kind: 'therock', family: 'gfx1151', version: '7.12.0rc2', index: `${server.url}/tarball/` }, join(tmp, 'out3'), { cacheDir });
    expect(rec).toMatchObject({ name: OLD, version: '7.12.0rc2', rocmVersion: '7.12.0rc2', topDir: null, sha256: sha(tarballs[OLD]!) });
    const err = await runtimeInputs({ kind: 'therock', family: 'gfx1151', version: '6.0.0', index: `${server.url}/tarball/` }, { cacheDir }).catch((e) => e);
    expect(err.code).toBe('E_NO_BUILDS');
    expect(err.message).toContain('7.13.0a20260430, 7.12.0rc2');
  });
});

describe('fetch-rocm: url, dir, none', () => {
  it('url: verifies the sha256 before extracting', async () => {
    const url = `${server.url}/tarball/${OLD}`;
    const out = join(tmp, 'out-url');
    const rec = await fetchRuntime({ kind: 'url', url, sha256: sha(tarballs[OLD]!) }, out, { cacheDir: join(tmp, 'cache4') });
    expect(rec).toMatchObject({ kind: 'url', url, sha256: sha(tarballs[OLD]!), rocmVersion: '7.12.0rc2' });
    const bad = join(tmp, 'out-url-bad');
    const err = await fetchRuntime({ kind: 'url', url, sha256: '0'.repeat(64) }, bad, { cacheDir: join(tmp, 'cache5') }).catch((e) => e);
    expect(err.code).toBe('E_CHECKSUM');
    expect(existsSync(join(bad, 'rocm'))).toBe(false);
    expect(existsSync(join(bad, 'fetch.json'))).toBe(false);
    expect(readdirSync(join(tmp, 'cache5', 'downloads'))).toEqual([]);
  });

  it('dir: points at the install instead of copying it, and declares its files as inputs', async () => {
    const opt = join(tmp, 'opt-rocm-7.1.1');
    mkdirSync(join(opt, '.info'), { recursive: true });
    mkdirSync(join(opt, 'lib'));
    writeFileSync(join(opt, '.info/version'), '7.1.1-38\n');
    writeFileSync(join(opt, 'lib/libamdhip64.so.7'), 'x');
    symlinkSync(opt, join(tmp, 'rocm-link'));
    const source: RuntimeSource = { kind: 'dir', path: join(tmp, 'rocm-link') };
    const inputs = await runtimeInputs(source, { cacheDir: join(tmp, 'cache6') });
    expect(inputs.files).toEqual([join(tmp, 'rocm-link')]);
    const out = join(tmp, 'out-dir');
    const rec = await fetchRuntime(source, out, { cacheDir: join(tmp, 'cache6') });
    expect(rec).toMatchObject({ kind: 'dir', path: realpathSync(opt), version: '7.1.1', buildId: '7.1.1-38', files: 2 });
    expect(readdirSync(out).sort()).toEqual(['fetch.json', 'rocm.json']);
    expect(await runtimeRoot(out)).toBe(realpathSync(opt));
    await expect(fetchRuntime({ kind: 'dir', path: join(tmp, 'nope') }, join(tmp, 'out-nope'), { cacheDir: tmp })).rejects.toMatchObject({
      code: 'E_NO_SUCH_DIR', message: expect.stringContaining(join(tmp, 'nope')),
    });
  });

  it('none: only fetch.json', async () => {
    const out = join(tmp, 'out-none');
    const rec = await fetchRuntime({ kind: 'none' }, out, { cacheDir: tmp });
    expect(rec.kind).toBe('none');
    expect(readdirSync(out)).toEqual(['fetch.json']);
    expect(await runtimeRoot(out)).toBeNull();
  });
});

describe('the fetch-rocm task module', () => {
  it('validates its options with key paths', () => {
    expect(task.name).toBe('fetch-rocm');
    const parse = (v: unknown) => task.options!.parse(v, 'tasks.fetch-rocm');
    expect(parse({ source: { kind: 'url', url: 'https://x/y.tar.gz', sha256: 'A'.repeat(64) } })).toEqual({ source: { kind: 'url', url: 'https://x/y.tar.gz', sha256: 'a'.repeat(64) } });
    expect(() => parse({ source: { kind: 'url', url: 'https://x/y.tar.gz', sha256: 'abc' } })).toThrow('tasks.fetch-rocm.source.sha256: expected a sha256');
    expect(() => parse({ source: { kind: 'url', url: 'ftp://x/y.tar.gz', sha256: 'a'.repeat(64) } })).toThrow('tasks.fetch-rocm.source.url: expected an http(s) URL');
    expect(() => parse({ source: { kind: 'git' } })).toThrow('tasks.fetch-rocm.source.kind: expected one of');
    expect(() => parse({ source: { kind: 'therock', famly: 'gfx1151' } })).toThrow('tasks.fetch-rocm.source.family');
    expect(() => parse({ source: { kind: 'apt', packages: 'libhsa' } })).toThrow('tasks.fetch-rocm.source.packages');
  });
});
