/**
 * Two "machines" (workspaces with their own local caches) sharing results
 * through a real nginx with WebDAV PUT, driven through the real CLI.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rocmflow, rocmflowAsync } from '../helpers/cli.js';
import {
  bodiesRun, counterFile, eventsOf, outcome, outputTree, pipelineWorkspace, runPipeline, sharedTasks,
} from './fixture.js';
import { freePort, startNginx, type Nginx } from './nginx.js';
import { FOLLOW_FROM } from '../../src/cache/remote/stream-to-file.js';

const TASKS = ['gen', 'big', 'sum', 'same'];
const servers: Nginx[] = [];

async function nginx(opts?: { limitRate?: string }): Promise<Nginx> {
  const n = await startNginx(opts);
  servers.push(n);
  return n;
}

afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
});

function sameOutputs(a: string, b: string): void {
  for (const t of TASKS) expect(outputTree(b, t), t).toEqual(outputTree(a, t));
}

/** Blob files on the server, by digest. */
function serverBlobs(n: Nginx): string[] {
  const dir = join(n.root, 'cache/cas');
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** One warning, naming the blob as tampered with (or longer than its entry says): the download was refused. */
function expectRefused(r: ReturnType<typeof runPipeline>, digest: string): void {
  expect(r.code, r.stderr).toBe(0);
  const warnings = eventsOf(r, 'warning');
  expect(warnings).toHaveLength(1);
  expect(warnings[0].message).toContain(digest);
  expect(warnings[0].message).toMatch(/tampered|is longer than the \d+ bytes its entry gives; refused/);
}

describe('remote cache over HTTP (nginx WebDAV)', () => {
  it('a second machine runs the pipeline with zero task bodies executed and bit-identical outputs', async () => {
    const n = await nginx();
    const counter = counterFile();
    // big.bin is above FOLLOW_FROM: its pull is hashed by the following thread
    const tasks = sharedTasks({ counter, bigBytes: 20 << 20 });
    const a = pipelineWorkspace({ tasks, remote: { url: n.url } });
    const b = pipelineWorkspace({ tasks, remote: { url: n.url } });

    const ra = runPipeline(a);
    expect(ra.code, ra.stderr).toBe(0);
    expect(outcome(ra)).toEqual({ gen: 'ran', big: 'ran', sum: 'ran', same: 'ran' });
    expect(bodiesRun(counter).sort()).toEqual([...TASKS].sort());
    expect(existsSync(join(n.root, 'cache/ac'))).toBe(true);

    const rb = runPipeline(b);
    expect(rb.code, rb.stderr).toBe(0);
    expect(outcome(rb)).toEqual({ gen: 'cached/remote', big: 'cached/remote', sum: 'cached/remote', same: 'cached/remote' });
    expect(eventsOf(rb, 'warning')).toEqual([]);
    // no body ran on B: the counter still holds A's four lines only
    expect(bodiesRun(counter)).toHaveLength(4);
    sameOutputs(a, b);
    // the executable bit and the symlink survived the round trip
    expect(statSync(join(b, '.rocmflow/out/cpu/gen/bin/tool')).mode & 0o111).not.toBe(0);
    expect(readFileSync(join(b, '.rocmflow/out/cpu/gen/link'), 'utf8')).toBe('apple\nfig\npear\n');

    // the remote hits filled B's local cache: with the server gone and B's
    // outputs deleted, everything restores locally
    await n.kill();
    rmSync(join(b, '.rocmflow/out'), { recursive: true, force: true });
    const rb2 = runPipeline(b);
    expect(rb2.code, rb2.stderr).toBe(0);
    expect(outcome(rb2)).toEqual({ gen: 'cached/local', big: 'cached/local', sum: 'cached/local', same: 'cached/local' });
    sameOutputs(a, b);
  });

  it('rejects a tampered blob on the server and reruns the task', async () => {
    const n = await nginx();
    const counter = counterFile();
    const tasks = sharedTasks({ counter });
    const a = pipelineWorkspace({ tasks, remote: { url: n.url } });
    const b = pipelineWorkspace({ tasks, remote: { url: n.url } });
    expect(runPipeline(a).code).toBe(0);

    const dataDigest = outputTree(a, 'gen')['data.txt']!.split(':')[2]!;
    const blob = join(n.root, 'cache/cas', dataDigest);
    expect(existsSync(blob)).toBe(true);
    writeFileSync(blob, 'apple\nfig\npear\nPLUS A BACKDOOR\n');

    const rb = runPipeline(b);
    expectRefused(rb, dataDigest);
    // gen reran; its outputs equal A's, so everything downstream still hits
    expect(outcome(rb)).toEqual({ gen: 'ran', big: 'cached/remote', sum: 'cached/remote', same: 'cached/remote' });
    expect(bodiesRun(counter).filter((x) => x === 'gen')).toHaveLength(2);
    expect(readFileSync(join(b, '.rocmflow/out/cpu/gen/data.txt'), 'utf8')).toBe('apple\nfig\npear\n');
    // B uploaded its own result: the server's copy (another size) was replaced
    expect(readFileSync(blob, 'utf8')).toBe('apple\nfig\npear\n');
  });

  it('rejects a large blob altered in place on the server (same size), and reruns the task', async () => {
    const n = await nginx();
    const counter = counterFile();
    const tasks = sharedTasks({ counter, bigBytes: 24 << 20 });
    const a = pipelineWorkspace({ tasks, remote: { url: n.url } });
    const b = pipelineWorkspace({ tasks, remote: { url: n.url } });
    expect(runPipeline(a).code).toBe(0);

    const bigDigest = outputTree(a, 'big')['big.bin']!.split(':')[2]!;
    const blob = join(n.root, 'cache/cas', bigDigest);
    const size = statSync(blob).size;
    expect(size).toBeGreaterThan(FOLLOW_FROM);
    // a few bytes in the middle: the length, and so the size check, still match
    const fd = openSync(blob, 'r+');
    writeSync(fd, Buffer.from('TAMPERED'), 0, 8, Math.floor(size / 2));
    closeSync(fd);

    const rb = runPipeline(b);
    expectRefused(rb, bigDigest);
    expect(outcome(rb)).toEqual({ gen: 'cached/remote', big: 'ran', sum: 'cached/remote', same: 'cached/remote' });
    sameOutputs(a, b);
    // nothing of the refused download stayed behind
    expect(readdirSync(join(b, 'local-cache/tmp'))).toEqual([]);
  });

  it('treats an entry signed with another key as a miss, with one warning', async () => {
    const n = await nginx();
    const counter = counterFile();
    const tasks = sharedTasks({ counter });
    const a = pipelineWorkspace({ tasks, remote: { url: n.url } });
    const b = pipelineWorkspace({ tasks, remote: { url: n.url, mode: 'read' } });
    const c = pipelineWorkspace({ tasks, remote: { url: n.url, mode: 'read' } });
    expect(runPipeline(a, { ROCMFLOW_REMOTE_CACHE_KEY: 'team-secret-one' }).code).toBe(0);
    const stored = JSON.parse(readFileSync(join(n.root, 'cache/ac', readdirSync(join(n.root, 'cache/ac'))[0]!), 'utf8'));
    expect(stored.signature).toMatchObject({ alg: 'hmac-sha256', value: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(JSON.stringify(stored)).not.toContain('team-secret-one');

    const rb = runPipeline(b, { ROCMFLOW_REMOTE_CACHE_KEY: 'another-secret' });
    expect(rb.code, rb.stderr).toBe(0);
    expect(outcome(rb)).toEqual({ gen: 'ran', big: 'ran', sum: 'ran', same: 'ran' });
    const warnings = eventsOf(rb, 'warning');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].message).toMatch(/signed with another key/);

    // the right key: every entry verifies
    const rc = runPipeline(c, { ROCMFLOW_REMOTE_CACHE_KEY: 'team-secret-one' });
    expect(outcome(rc)).toEqual({ gen: 'cached/remote', big: 'cached/remote', sum: 'cached/remote', same: 'cached/remote' });
    expect(eventsOf(rc, 'warning')).toEqual([]);
  });

  it('a server that is down before the run gives one warning and a successful local run', async () => {
    const n = await nginx();
    const counter = counterFile();
    const tasks = sharedTasks({ counter });
    const a = pipelineWorkspace({ tasks, remote: { url: n.url } });
    await n.kill();
    const ra = runPipeline(a);
    expect(ra.code, ra.stderr).toBe(0);
    expect(outcome(ra)).toEqual({ gen: 'ran', big: 'ran', sum: 'ran', same: 'ran' });
    const warnings = eventsOf(ra, 'warning');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].message).toContain(n.url);
    expect(warnings[0].message).toMatch(/ECONNREFUSED/);
  });

  it('a server killed mid-download gives one warning and a successful local run', async () => {
    // 20 MB/s per download: the 48 MB blob takes over two seconds to fetch
    const n = await nginx({ limitRate: '20m' });
    const counter = counterFile();
    const tasks = sharedTasks({ counter, bigBytes: 48 << 20 });
    const a = pipelineWorkspace({ tasks, remote: { url: n.url } });
    const b = pipelineWorkspace({ tasks, remote: { url: n.url, concurrency: 1 } });
    expect(runPipeline(a).code).toBe(0);

    const run = rocmflowAsync(b, ['run', 'sum', 'same', '--json', '--cache-dir', join(b, 'local-cache')]);
    // kill the server once B's download of the big blob is under way
    const tmp = join(b, 'local-cache/tmp');
    const deadline = Date.now() + 30_000;
    for (;;) {
      const partial = existsSync(tmp) && readdirSync(tmp).some((f) => statSync(join(tmp, f), { throwIfNoEntry: false })?.size! > 1 << 20);
      if (partial) break;
      if (Date.now() > deadline) throw new Error('the big download never started');
      await new Promise((r) => setTimeout(r, 20));
    }
    await n.kill();
    const rb = await run.done;
    expect(rb.code, rb.stderr).toBe(0);
    const o = outcome(rb);
    expect(o.gen).toBe('cached/remote');
    expect(o.big).toBe('ran');
    expect(o.sum).toBe('ran');
    const warnings = eventsOf(rb, 'warning');
    expect(warnings, JSON.stringify(warnings)).toHaveLength(1);
    expect(warnings[0].message).toContain(n.url);
    sameOutputs(a, b);
    // the partial download left nothing behind
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('a blob body longer than its entry says is cut off and refused: a server cannot fill the disk', async () => {
    const n = await nginx();
    const counter = counterFile();
    const tasks = sharedTasks({ counter });
    const a = pipelineWorkspace({ tasks, remote: { url: n.url } });
    expect(runPipeline(a).code).toBe(0);
    // entries as nginx has them; every blob an endless chunked body
    let sent = 0;
    const server = createHttpServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url!, 'http://x').pathname).replace(/^\/cache\//, '');
      if (req.method === 'GET' && path.startsWith('cas/')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(1 << 20, 0x41);
        const pump = () => {
          while (!res.destroyed && res.write(chunk)) sent += chunk.length;
          if (!res.destroyed) res.once('drain', pump);
        };
        pump();
        return;
      }
      const file = join(n.root, 'cache', path);
      if (req.method === 'GET' && path.startsWith('ac/') && existsSync(file)) res.end(readFileSync(file));
      else res.writeHead(404).end();
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      const b = pipelineWorkspace({ tasks, remote: { url: `http://127.0.0.1:${port}/cache`, mode: 'read' } });
      const rb = await rocmflowAsync(b, ['run', 'sum', 'same', '--json', '--cache-dir', join(b, 'local-cache')]).done;
      expect(rb.code, rb.stderr).toBe(0);
      const warnings = eventsOf(rb, 'warning').map((w) => w.message);
      expect(warnings.length).toBeGreaterThan(0);
      for (const w of warnings) expect(w).toMatch(/blob [0-9a-f]{64} is longer than the \d+ bytes its entry gives; refused/);
      expect(Object.values(outcome(rb)).every((o) => o === 'ran')).toBe(true);
      sameOutputs(a, b);
      // each download stopped near its blob's size, and nothing of them stayed behind
      expect(sent).toBeLessThan(64 << 20);
      expect(readdirSync(join(b, 'local-cache/tmp'))).toEqual([]);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('a server that accepts connections but never answers times out: one warning, local run', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => sockets.push(s));
    const port = await freePort();
    await new Promise<void>((r) => silent.listen(port, '127.0.0.1', r));
    try {
      const counter = counterFile();
      const a = pipelineWorkspace({ tasks: sharedTasks({ counter }), remote: { url: `http://127.0.0.1:${port}/cache`, timeoutMs: 300 } });
      const t0 = Date.now();
      const ra = runPipeline(a);
      expect(ra.code, ra.stderr).toBe(0);
      expect(outcome(ra)).toEqual({ gen: 'ran', big: 'ran', sum: 'ran', same: 'ran' });
      const warnings = eventsOf(ra, 'warning');
      expect(warnings).toHaveLength(1);
      expect(warnings[0].message).toMatch(/no data for 300 ms/);
      // the breaker stopped further attempts: no per-task timeouts piled up
      expect(Date.now() - t0).toBeLessThan(20_000);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('never prints credentials from the URL; sends them as basic auth', async () => {
    const n = await nginx();
    const counter = counterFile();
    const url = n.url.replace('http://', 'http://alice:s3cr3t-pw@');
    const a = pipelineWorkspace({ tasks: sharedTasks({ counter }), remote: { url } });
    const ra = runPipeline(a);
    expect(ra.code).toBe(0);
    expect(ra.stdout + ra.stderr).not.toContain('s3cr3t-pw');
    const stats = rocmflow(a, ['cache', 'stats', '--cache-dir', join(a, 'local-cache')]);
    expect(stats.stdout).toContain(n.url);
    expect(stats.stdout).not.toContain('s3cr3t');
    // nginx logs the basic-auth user
    expect(readFileSync(join(n.root, '../logs/access.log'), 'utf8')).toMatch(/ alice \[/);
  });

  it('cache push uploads results a run did not, and cache pull fetches what the plan needs', async () => {
    const n = await nginx();
    const counter = counterFile();
    const tasks = sharedTasks({ counter, bigBytes: 1 << 20 });
    // auto without CI: runs read but do not write
    const a = pipelineWorkspace({ tasks, remote: { url: n.url, mode: 'auto' } });
    const b = pipelineWorkspace({ tasks, remote: { url: n.url, mode: 'auto' } });
    const env = { CI: '' };
    expect(runPipeline(a, env).code).toBe(0);
    expect(existsSync(join(n.root, 'cache/ac'))).toBe(false);

    const push = rocmflow(a, ['cache', 'push', 'sum', 'same', '--json', '--cache-dir', join(a, 'local-cache')], env);
    expect(push.code, push.stderr).toBe(0);
    const pushed = JSON.parse(push.stdout.trim());
    expect(pushed).toMatchObject({ ok: true, entriesUp: 4, entries: 4, errors: 0 });
    expect(pushed.bytesUp).toBeGreaterThan(1 << 20);
    expect(readdirSync(join(n.root, 'cache/ac'))).toHaveLength(4);
    // pushing again uploads no blob: HEAD finds them all
    const again = JSON.parse(rocmflow(a, ['cache', 'push', '--all', '--json', '--cache-dir', join(a, 'local-cache')], env).stdout.trim());
    expect(again).toMatchObject({ blobsUp: 0, entriesUp: 4 });
    expect(again.blobsSkipped).toBeGreaterThan(0);

    const pull = rocmflow(b, ['cache', 'pull', 'sum', '--cache-dir', join(b, 'local-cache')], env);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout).toMatch(/pulled 3 results/);
    expect(pull.stdout).toMatch(/3 of 3 tasks are now fresh or cached locally/);
    // the results are local now: a run with the server gone restores them all
    await n.kill();
    const rb = runPipeline(b, env);
    expect(rb.code).toBe(0);
    expect(outcome(rb), rb.stdout + pull.stdout).toMatchObject({ gen: 'cached/local', big: 'cached/local', sum: 'cached/local' });
    expect(bodiesRun(counter).filter((x) => x !== 'same')).toEqual(['gen', 'big', 'sum']);
    sameOutputs(a, b);
  });

  it('cache push refuses a read-only remote and names the setting', async () => {
    const n = await nginx();
    const a = pipelineWorkspace({ tasks: sharedTasks({ counter: counterFile() }), remote: { url: n.url, mode: 'read' } });
    const r = rocmflow(a, ['cache', 'push', '--all', '--cache-dir', join(a, 'local-cache')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/mode is "read".*cache\.remote\.mode/);
    const bad = pipelineWorkspace({ tasks: sharedTasks({ counter: counterFile() }), remote: { url: 's3://bucket/x' } });
    const rb = runPipeline(bad);
    expect(rb.code).toBe(2);
    expect(rb.stderr).toMatch(/cache\.remote\.url: unsupported scheme "s3:"/);
  });
});
