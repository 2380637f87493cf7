/**
 * A 1 GB blob round trip through the remote cache: push into a real nginx
 * (WebDAV PUT) on loopback, then pull into an empty local cache. Each
 * direction runs in its own child process so its peak RSS (maxRSS) is the
 * remote cache's alone. Beside the pull, `curl` downloads the same blob and
 * `sync` makes it durable: what the disk and server allow with no rocmflow
 * in the way. Prints Markdown table rows; fails above 200 MB.
 *
 *   node bin/run-ts.js bench/remote-blob.ts [--size-mb 1024]
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ActionEntry } from '../src/cache/action-entry.js';
import { ContentStore } from '../src/cache/content-store.js';
import { createRemote } from '../src/cache/remote/create.js';
import { sha256File } from '../src/util/sha256-file.js';
import { startNginx } from '../test/remote/nginx.js';

const LIMIT_MB = 200;
const args = process.argv.slice(2);

interface ChildReport {
  ms: number;
  bytes: number;
  maxRssMB: number;
  ok: boolean;
}

function entryFor(digest: string, size: number): ActionEntry {
  return {
    v: 1, key: createHash('sha256').update(`bench ${digest}`).digest('hex'), task: 'bench-blob', target: 'cpu',
    manifest: { entries: [{ path: 'blob.bin', type: 'file', mode: 0o644, size, sha256: digest }] },
    summary: [], durationMs: 0, createdAt: new Date(0).toISOString(), rocmflowVersion: 'bench',
  };
}

/** One direction, in this (child) process. */
async function child(dir: 'push' | 'pull', url: string, cacheDir: string, digest: string, size: number): Promise<void> {
  const remote = createRemote(
    { url, mode: 'read-write', instance: null, timeoutMs: 30_000, concurrency: 4, requireSignature: false },
    { env: {}, warn: (m) => process.stderr.write(`warning: ${m}\n`) },
  );
  const store = new ContentStore(cacheDir);
  const entry = entryFor(digest, size);
  const t0 = performance.now();
  let ok: boolean;
  if (dir === 'push') {
    await remote.push(entry.key, entry, store);
    ok = remote.stats().errors === 0 && remote.stats().bytesUp >= size;
  } else {
    const got = await remote.pull(entry.key, store);
    ok = got !== null && store.has(digest);
  }
  const ms = performance.now() - t0;
  remote.close();
  const st = remote.stats();
  const report: ChildReport = { ms, bytes: dir === 'push' ? st.bytesUp : st.bytesDown, maxRssMB: process.resourceUsage().maxRSS / 1024, ok };
  process.stdout.write(JSON.stringify(report) + '\n');
}

/** A file of `size` bytes that does not compress or repeat in whole blocks. */
function writeBlob(path: string, size: number): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(1 << 20);
  try {
    for (let off = 0, n = 0; off < size; off += chunk.length, n++) {
      const seed = createHash('sha256').update(String(n)).digest();
      for (let i = 0; i < chunk.length; i += 32) seed.copy(chunk, i, 0, Math.min(32, chunk.length - i));
      chunk.writeUInt32LE(n, 0);
      writeSync(fd, chunk, 0, Math.min(chunk.length, size - off));
    }
  } finally {
    closeSync(fd);
  }
}

function runChild(dir: 'push' | 'pull', url: string, cacheDir: string, digest: string, size: number): ChildReport {
  const r = spawnSync(process.execPath, [resolve('bin/run-ts.js'), resolve(import.meta.filename), '--child', dir, url, cacheDir, digest, String(size)], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`${dir} child failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

async function main(): Promise<number> {
  const sizeMB = Number(args[args.indexOf('--size-mb') + 1] ?? 1024) || 1024;
  const size = sizeMB * 1024 * 1024;
  const work = mkdtempSync(join(tmpdir(), 'rocmflow-bench-remote-'));
  const nginx = await startNginx();
  try {
    const src = join(work, 'blob.bin');
    writeBlob(src, size);
    const digest = await sha256File(src);
    // the pushing machine has the blob in its local store, as after a task ran
    const pushCache = join(work, 'push-cache');
    mkdirSync(pushCache);
    new ContentStore(pushCache).ingest(src, digest, false);
    const push = runChild('push', nginx.url, pushCache, digest, size);
    const pull = runChild('pull', nginx.url, join(work, 'pull-cache'), digest, size);
    // the same download with no rocmflow in it, made as durable as a pull
    // makes its blob (written, then fsync'd before it counts): the disk's own bound
    const curlTo = join(work, 'curl.bin');
    const hasCurl = spawnSync('sh', ['-c', 'command -v curl']).status === 0;
    const c0 = performance.now();
    const curl = hasCurl ? spawnSync('sh', ['-c', 'curl -sf -o "$1" "$2" && sync "$1"', 'sh', curlTo, `${nginx.url.replace(/\/$/, '')}/cas/${digest}`]) : null;
    const curlMs = performance.now() - c0;
    if (curl && curl.status !== 0) throw new Error(`curl of the pushed blob failed: ${curl.stderr}`);
    rmSync(curlTo, { force: true });
    const rate = (r: ChildReport) => `${(r.bytes / 1e6 / (r.ms / 1000)).toFixed(0)} MB/s`;
    const gb = (size / 2 ** 30).toFixed(2);
    const method =
      'nginx WebDAV PUT on 127.0.0.1; each direction in its own process (`process.resourceUsage().maxRSS`); pull time includes streaming SHA-256 and the store\'s digest check';
    console.log('| benchmark | size | push | pull | `curl -o FILE && sync FILE` | peak RSS push | peak RSS pull | method |');
    console.log('|---|---|---|---|---|---|---|---|');
    console.log(
      `| remote cache blob round trip | ${gb} GiB | ${rate(push)} (${(push.ms / 1000).toFixed(1)} s) | ${rate(pull)} (${(pull.ms / 1000).toFixed(1)} s) | ${curl ? `${rate({ bytes: size, ms: curlMs } as ChildReport)} (${(curlMs / 1000).toFixed(1)} s)` : 'no curl here'} | ${push.maxRssMB.toFixed(0)} MB | ${pull.maxRssMB.toFixed(0)} MB | ${method} |`,
    );
    const ok = push.ok && pull.ok && push.maxRssMB < LIMIT_MB && pull.maxRssMB < LIMIT_MB;
    if (!push.ok || !pull.ok) console.error('round trip failed: see warnings above');
    else if (!ok) console.error(`peak RSS above ${LIMIT_MB} MB`);
    return ok ? 0 : 1;
  } finally {
    await nginx.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

if (args[0] === '--child') await child(args[1] as 'push' | 'pull', args[2]!, args[3]!, args[4]!, Number(args[5]));
else process.exitCode = await main();
