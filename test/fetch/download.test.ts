import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { download } from '../../src/fetch/download.js';
import { startServer, type TestServer } from './helpers/server.js';

const BODY = randomBytes(3 * 1024 * 1024 + 123);
const SHA = createHash('sha256').update(BODY).digest('hex');
let tmp: string;
let server: TestServer;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'rocmflow-download-'));
});
afterEach(async () => server?.close());
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const dir = () => mkdtempSync(join(tmp, 'd-'));

describe('download', () => {
  it('streams a file to dest, verifies it and reports progress', async () => {
    server = await startServer({ '/t.tar.gz': { body: BODY } });
    const d = dir();
    const seen: [number, number | undefined][] = [];
    const r = await download({ url: `${server.url}/t.tar.gz`, dest: join(d, 't.tar.gz'), sha256: SHA, onProgress: (a, b) => seen.push([a, b]) });
    expect(r).toMatchObject({ sha256: SHA, size: BODY.length, resumed: false, cached: false });
    expect(readFileSync(join(d, 't.tar.gz')).equals(BODY)).toBe(true);
    expect(seen.at(-1)).toEqual([BODY.length, BODY.length]);
    expect(seen.length).toBeGreaterThan(2);
    expect(readdirSync(d)).toEqual(['t.tar.gz']);
    // a second call finds the verified file and does not ask the server
    const n = server.seen.length;
    expect((await download({ url: `${server.url}/t.tar.gz`, dest: join(d, 't.tar.gz'), sha256: SHA })).cached).toBe(true);
    expect(server.seen.length).toBe(n);
  });

  it('refuses a checksum mismatch and leaves nothing in place', async () => {
    server = await startServer({ '/t.tar.gz': { body: BODY } });
    const d = dir();
    const wrong = 'f'.repeat(64);
    const err = await download({ url: `${server.url}/t.tar.gz`, dest: join(d, 't.tar.gz'), sha256: wrong }).catch((e) => e);
    expect(err.code).toBe('E_CHECKSUM');
    expect(err.message).toContain(wrong);
    expect(err.message).toContain(SHA);
    expect(err.message).toContain(`${server.url}/t.tar.gz`);
    expect(readdirSync(d)).toEqual([]);
  });

  it('resumes an interrupted download with a Range request', async () => {
    server = await startServer({ '/t.tar.gz': { body: BODY, dropAfter: 1_000_000, etag: '"v1"' } });
    const d = dir();
    const dest = join(d, 't.tar.gz');
    const err = await download({ url: `${server.url}/t.tar.gz`, dest, sha256: SHA, retries: 0 }).catch((e) => e);
    expect(err.code).toBe('E_DOWNLOAD_INTERRUPTED');
    expect(existsSync(dest)).toBe(false);
    const partSize = statSync(dest + '.part').size;
    expect(partSize).toBeGreaterThan(0);
    expect(partSize).toBeLessThan(BODY.length);

    const r = await download({ url: `${server.url}/t.tar.gz`, dest, sha256: SHA });
    expect(r).toMatchObject({ sha256: SHA, size: BODY.length, resumed: true });
    const last = server.seen.at(-1)!;
    expect(last.headers.range).toBe(`bytes=${partSize}-`);
    expect(last.headers['if-range']).toBe('"v1"');
    expect(createHash('sha256').update(readFileSync(dest)).digest('hex')).toBe(SHA);
    expect(readdirSync(d)).toEqual(['t.tar.gz']);
  });

  it('retries and resumes within one call', async () => {
    server = await startServer({ '/t.tar.gz': { body: BODY, dropAfter: 700_000, dropTimes: 2 } });
    const d = dir();
    const retries: string[] = [];
    const r = await download({ url: `${server.url}/t.tar.gz`, dest: join(d, 't.tar.gz'), sha256: SHA, onRetry: (e) => retries.push(e.code) });
    expect(r.sha256).toBe(SHA);
    expect(retries).toEqual(['E_DOWNLOAD_INTERRUPTED', 'E_DOWNLOAD_INTERRUPTED']);
    expect(server.seen.map((s) => s.headers.range ?? null)).toEqual([null, expect.stringMatching(/^bytes=\d+-$/), expect.stringMatching(/^bytes=\d+-$/)]);
  });

  it('restarts from zero when the server ignores Range', async () => {
    server = await startServer({ '/t.tar.gz': { body: BODY, ranges: false } });
    const d = dir();
    const dest = join(d, 't.tar.gz');
    writeFileSync(dest + '.part', BODY.subarray(0, 5000));
    writeFileSync(dest + '.part.json', JSON.stringify({ url: `${server.url}/t.tar.gz` }));
    const r = await download({ url: `${server.url}/t.tar.gz`, dest, sha256: SHA });
    expect(server.seen[0]!.headers.range).toBe('bytes=5000-');
    expect(r).toMatchObject({ sha256: SHA, size: BODY.length, resumed: false });
    expect(readFileSync(dest).equals(BODY)).toBe(true);
  });

  it('restarts when the file changed on the server (If-Range)', async () => {
    server = await startServer({ '/t.tar.gz': { body: BODY, etag: '"v2"' } });
    const d = dir();
    const dest = join(d, 't.tar.gz');
    writeFileSync(dest + '.part', Buffer.alloc(5000, 1));
    writeFileSync(dest + '.part.json', JSON.stringify({ url: `${server.url}/t.tar.gz`, etag: '"v1"' }));
    const r = await download({ url: `${server.url}/t.tar.gz`, dest, sha256: SHA });
    expect(r.sha256).toBe(SHA);
    expect(server.seen[0]!.headers['if-range']).toBe('"v1"');
  });

  it('says which host cannot be reached', async () => {
    server = await startServer({});
    const port = new URL(server.url).port;
    await server.close();
    const d = dir();
    const err = await download({ url: `http://127.0.0.1:${port}/x.tar.gz`, dest: join(d, 'x'), retries: 0 }).catch((e) => e);
    expect(err.code).toBe('E_UNREACHABLE');
    expect(err.message).toMatch(new RegExp(`^cannot reach 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    const dns = await download({ url: 'http://no-such-host.invalid/x.tar.gz', dest: join(d, 'y'), retries: 0, timeoutMs: 20_000 }).catch((e) => e);
    expect(dns.code).toMatch(/^E_(UNREACHABLE|TIMEOUT)$/);
    expect(dns.message).toContain('no-such-host.invalid');
    expect(readdirSync(d)).toEqual([]);
  });

  it('reports HTTP errors and stalls', async () => {
    server = await startServer({ '/gone': { body: '', status: 410 }, '/slow': { body: BODY, stall: true } });
    const d = dir();
    await expect(download({ url: `${server.url}/missing.tar.gz`, dest: join(d, 'a') })).rejects.toMatchObject({ code: 'E_HTTP', message: expect.stringContaining('HTTP 404') });
    await expect(download({ url: `${server.url}/gone`, dest: join(d, 'b') })).rejects.toMatchObject({ code: 'E_HTTP', message: expect.stringContaining('410') });
    const t0 = Date.now();
    const err = await download({ url: `${server.url}/slow`, dest: join(d, 'c'), timeoutMs: 500, retries: 0 }).catch((e) => e);
    expect(err.code).toBe('E_TIMEOUT');
    expect(err.message).toContain('127.0.0.1');
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('stops when cancelled and keeps the part for later', async () => {
    server = await startServer({ '/slow': { body: BODY, stall: true } });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('cancelled by test')), 300);
    const d = dir();
    await expect(download({ url: `${server.url}/slow`, dest: join(d, 'c'), signal: ac.signal })).rejects.toThrow('cancelled by test');
  });
});
