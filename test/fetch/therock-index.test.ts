import { afterEach, describe, expect, it } from 'vitest';
import { compareVersions } from '../../src/fetch/compare-versions.js';
import { parseIndexPage } from '../../src/fetch/index-page.js';
import { listBuilds, listIndex, parseBuildName, selectBuild } from '../../src/fetch/therock-index.js';
import { startServer, type TestServer } from './helpers/server.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** The multi-arch page: the list is a JS literal with single quotes, extra fields and trailing commas. */
const MULTI_ARCH_PAGE = `<!DOCTYPE html><html><head><title>ROCm tarballs</title>
<script>
  // generated
  const files = [
    {"name": "therock-dist-linux-gfx1151-7.13.0a20260428.tar.gz", "mtime": 1777334400, "size": 2300000000},
    {'name': 'therock-dist-linux-gfx1151-7.13.0a20260430.tar.gz', mtime: 1777507200, arch: 'x86_64',},
    { name: "therock-dist-linux-gfx1151-7.12.0rc2.tar.gz", "mtime": 1776000000 },
    {"name": "therock-dist-linux-gfx1151-7.12.0.tar.gz", "mtime": 1776500000},
    {"name": "therock-dist-linux-gfx1151-7.12.0rc10.tar.gz", "mtime": 1776100000},
    {"name": "therock-dist-linux-gfx110X-all-7.13.0a20260430.tar.gz", "mtime": 1777507200},
    {"name": "therock-dist-linux-multiarch-7.13.0a20260430.tar.gz", "mtime": 1777507200},
    {"name": "therock-dist-windows-gfx1151-7.13.0a20260501.tar.gz", "mtime": 1777593600},
    {"name": "index.html", "mtime": 1777593600},
  ];
  render(files);
</script></head><body></body></html>`;

function s3Page(keys: string[], opts: { truncated?: boolean; token?: string } = {}): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>therock-nightly-tarball</Name><Prefix></Prefix>
<IsTruncated>${opts.truncated ? 'true' : 'false'}</IsTruncated>${opts.token ? `<NextContinuationToken>${opts.token}</NextContinuationToken>` : ''}
${keys.map((k, i) => `<Contents><Key>${k}</Key><LastModified>2026-04-${String(10 + i).padStart(2, '0')}T03:00:00.000Z</LastModified><ETag>&quot;x${i}&quot;</ETag><Size>${1000 + i}</Size><StorageClass>STANDARD</StorageClass></Contents>`).join('\n')}
</ListBucketResult>`;
}

describe('version order', () => {
  it('orders numerically, alpha < rc < release, nightlies by date', () => {
    const shuffled = ['7.12.0', '7.13.0a20260430', '7.11.0', '7.12.0rc2', '7.9.0', '7.12.0rc10', '7.13.0a20260428', '7.10.0', '7.12.0a20260101', 'garbage'];
    expect([...shuffled].sort(compareVersions)).toEqual([
      'garbage', '7.9.0', '7.10.0', '7.11.0', '7.12.0a20260101', '7.12.0rc2', '7.12.0rc10', '7.12.0', '7.13.0a20260428', '7.13.0a20260430',
    ]);
  });

  it('parses tarball names', () => {
    expect(parseBuildName('therock-dist-linux-gfx110X-all-7.13.0a20260430.tar.gz')).toEqual({ platform: 'linux', family: 'gfx110X-all', version: '7.13.0a20260430' });
    expect(parseBuildName('therock-dist-linux-gfx94X-dcgpu-7.12.0rc2.tar.gz')).toEqual({ platform: 'linux', family: 'gfx94X-dcgpu', version: '7.12.0rc2' });
    expect(parseBuildName('therock-dist-linux-multiarch-7.11.0.tar.gz')).toEqual({ platform: 'linux', family: 'multiarch', version: '7.11.0' });
    expect(parseBuildName('index.html')).toBeNull();
  });
});

describe('index pages', () => {
  it('reads the embedded files array', () => {
    const page = parseIndexPage(MULTI_ARCH_PAGE, 'https://mirror.example/tarball-multi-arch/');
    expect(page.format).toBe('files-array');
    expect(page.entries).toHaveLength(9);
    expect(page.entries[1]).toEqual({
      name: 'therock-dist-linux-gfx1151-7.13.0a20260430.tar.gz',
      url: 'https://mirror.example/tarball-multi-arch/therock-dist-linux-gfx1151-7.13.0a20260430.tar.gz',
      mtime: new Date(1777507200 * 1000).toISOString(),
      size: undefined,
    });
    expect(page.entries[0]!.size).toBe(2300000000);
  });

  it('reads an nginx autoindex page', () => {
    const html = `<html><body><h1>Index of /rocm/</h1><hr><pre><a href="../">../</a>
<a href="therock-dist-linux-gfx1151-7.11.0.tar.gz">therock-dist-linux-gfx1151-7.11.0.tar.gz</a>     30-Apr-2026 10:00    2345678
<a href="sub/">sub/</a>                                  30-Apr-2026 10:00       -
</pre></body></html>`;
    const page = parseIndexPage(html, 'http://127.0.0.1/rocm/');
    expect(page.format).toBe('autoindex');
    expect(page.entries).toEqual([
      { name: 'therock-dist-linux-gfx1151-7.11.0.tar.gz', url: 'http://127.0.0.1/rocm/therock-dist-linux-gfx1151-7.11.0.tar.gz', mtime: '2026-04-30T10:00:00.000Z', size: 2345678 },
    ]);
  });

  it('a hostile page: names that decode to paths are left out, and what cannot be read is one E_INDEX error', () => {
    const html = `<pre><a href="therock-dist-linux-gfx1151%2F..%2F..%2Fetc%2Fevil-9.9.9.tar.gz">x</a> 30-Apr-2026 10:00 1
<a href="therock-dist-linux-gfx1151-7.11.0.tar.gz">ok</a> 30-Apr-2026 10:00 2</pre>`;
    expect(parseIndexPage(html, 'http://127.0.0.1/rocm/').entries.map((e) => e.name)).toEqual(['therock-dist-linux-gfx1151-7.11.0.tar.gz']);
    for (const bad of ['<pre><a href="&#x110000;">x</a></pre>', '<pre><a href="http://[x">x</a></pre>'])
      expect(() => parseIndexPage(bad, 'http://127.0.0.1/rocm/')).toThrow(expect.objectContaining({ code: 'E_INDEX', message: expect.stringContaining('index page http://127.0.0.1/rocm/: cannot be read') }));
  });
});

describe('listBuilds over HTTP', () => {
  it('lists a family newest first from the multi-arch page, and picks newest or pinned', async () => {
    server = await startServer({ '/tarball-multi-arch/': { body: MULTI_ARCH_PAGE, contentType: 'text/html' } });
    const builds = await listBuilds({ index: `${server.url}/tarball-multi-arch/`, family: 'gfx1151' });
    expect(builds.map((b) => b.version)).toEqual(['7.13.0a20260430', '7.13.0a20260428', '7.12.0', '7.12.0rc10', '7.12.0rc2']);
    expect(builds[0]!.url).toBe(`${server.url}/tarball-multi-arch/therock-dist-linux-gfx1151-7.13.0a20260430.tar.gz`);
    expect(selectBuild(builds)!.version).toBe('7.13.0a20260430');
    expect(selectBuild(builds, '7.12.0rc2')!.name).toBe('therock-dist-linux-gfx1151-7.12.0rc2.tar.gz');
    expect(selectBuild(builds, '6.0.0')).toBeUndefined();
    // the index URL without its trailing slash still resolves files inside it
    const again = await listBuilds({ index: `${server.url}/tarball-multi-arch`, family: 'gfx110X-all' });
    expect(again.map((b) => b.url)).toEqual([`${server.url}/tarball-multi-arch/therock-dist-linux-gfx110X-all-7.13.0a20260430.tar.gz`]);
  });

  it('names the families that exist when the wanted one is missing', async () => {
    server = await startServer({ '/tarball/': { body: MULTI_ARCH_PAGE, contentType: 'text/html' } });
    const err = await listBuilds({ index: `${server.url}/tarball/`, family: 'gfx1201' }).catch((e) => e);
    expect(err.code).toBe('E_NO_BUILDS');
    expect(err.message).toBe(`no TheRock builds for family "gfx1201" at ${server.url}/tarball/; families there: gfx110X-all, gfx1151, multiarch`);
  });

  it('follows S3 XML pagination (continuation tokens and markers)', async () => {
    const page1 = s3Page(['therock-dist-linux-gfx1151-7.10.0.tar.gz', 'therock-dist-linux-gfx1151-7.11.0rc1.tar.gz'], { truncated: true, token: 'tok/2+=' });
    const page2 = s3Page(['therock-dist-linux-gfx1151-7.11.0.tar.gz', 'therock-dist-linux-gfx1150-7.11.0.tar.gz'], { truncated: true });
    const page3 = s3Page(['therock-dist-linux-gfx1151-7.9.0.tar.gz']);
    server = await startServer({});
    server.routes.set('/bucket/?prefix=therock-dist-linux', { body: page1, contentType: 'application/xml' });
    server.routes.set('/bucket/?prefix=therock-dist-linux&list-type=2&continuation-token=tok%2F2%2B%3D', { body: page2, contentType: 'application/xml' });
    server.routes.set(
      '/bucket/?prefix=therock-dist-linux&marker=therock-dist-linux-gfx1150-7.11.0.tar.gz',
      { body: page3, contentType: 'application/xml' },
    );
    const builds = await listBuilds({ index: `${server.url}/bucket/?prefix=therock-dist-linux`, family: 'gfx1151' });
    expect(builds.map((b) => b.version)).toEqual(['7.11.0', '7.11.0rc1', '7.10.0', '7.9.0']);
    expect(builds[0]).toMatchObject({ url: `${server.url}/bucket/therock-dist-linux-gfx1151-7.11.0.tar.gz`, size: 1000, mtime: '2026-04-10T03:00:00.000Z' });
    expect(server.seen).toHaveLength(3);
    const all = await listIndex({ index: `${server.url}/bucket/?prefix=therock-dist-linux` });
    expect(all.map((b) => b.family).sort()).toEqual(['gfx1150', 'gfx1151', 'gfx1151', 'gfx1151', 'gfx1151']);
  });

  it('reports an unreachable index and HTTP errors', async () => {
    server = await startServer({});
    await expect(listBuilds({ index: `${server.url}/nope/`, family: 'gfx1151' })).rejects.toMatchObject({ code: 'E_HTTP', message: expect.stringContaining('404') });
    const port = new URL(server.url).port;
    await server.close();
    server = undefined;
    await expect(listBuilds({ index: `http://127.0.0.1:${port}/tarball/`, family: 'gfx1151' })).rejects.toMatchObject({
      code: 'E_UNREACHABLE', message: expect.stringMatching(/^cannot reach 127\.0\.0\.1:\d+: /),
    });
    await expect(listBuilds({ index: 'ftp://x/', family: 'gfx1151' })).rejects.toMatchObject({ code: 'E_BAD_URL' });
  });
});
