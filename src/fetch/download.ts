/**
 * Streaming, resumable HTTP downloads. Bytes go to `<dest>.part` as they
 * arrive (never buffered whole); a later call resumes with a Range request
 * (guarded by If-Range, so a file that changed on the server restarts
 * instead of being spliced); the checksum is verified before the file is
 * renamed to `dest`, so `dest` existing means "complete and verified".
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RocmflowError } from '../errors.js';
import { hashInto, sha256File } from '../util/sha256-file.js';
import { netError, safeHost } from './net-error.js';

export interface DownloadOptions {
  url: string;
  /** Final path; the partial file is `dest + '.part'`. */
  dest: string;
  /** Expected hex SHA-256; a mismatch deletes the download and throws E_CHECKSUM. */
  sha256?: string;
  signal?: AbortSignal;
  /** Called as bytes arrive; `total` is undefined when the server does not say. */
  onProgress?(done: number, total: number | undefined): void;
  headers?: Record<string, string>;
  /** Give up when no bytes arrive for this long. @default 60000 */
  timeoutMs?: number;
  /** How many times an interrupted transfer is resumed within this call. @default 3 */
  retries?: number;
  /** Called before each retry, e.g. to log it. */
  onRetry?(error: RocmflowError, attempt: number): void;
  fetch?: typeof fetch;
}

export interface DownloadResult {
  path: string;
  sha256: string;
  size: number;
  /** True when this call started from bytes an earlier interrupted call left. */
  resumed: boolean;
  /** True when `dest` was already there and matched `sha256`. */
  cached: boolean;
}

/** What we remember about a partial download, to resume it safely. */
interface PartMeta {
  url: string;
  etag?: string;
  lastModified?: string;
  total?: number;
}

const RETRYABLE = new Set(['E_DOWNLOAD_INTERRUPTED', 'E_TIMEOUT', 'E_HTTP_5XX', 'E_RANGE_MISMATCH']);

/** Download `url` to `dest`: see the module comment. */
export async function download(opts: DownloadOptions): Promise<DownloadResult> {
  const { dest } = opts;
  const want = opts.sha256?.toLowerCase();
  if (want && !/^[0-9a-f]{64}$/.test(want)) throw new RocmflowError('E_BAD_SHA256', `sha256 for ${opts.url} is not 64 hex digits: ${opts.sha256}`, { exitCode: 2 });
  await mkdir(dirname(dest), { recursive: true });
  if (want && (await exists(dest))) {
    const have = await sha256File(dest);
    if (have === want) return { path: dest, sha256: have, size: (await stat(dest)).size, resumed: false, cached: true };
    await rm(dest, { force: true });
  }
  const retries = opts.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    try {
      return { ...(await attemptOnce(opts, want)), cached: false };
    } catch (e) {
      if (!(e instanceof RocmflowError) || !RETRYABLE.has(e.code) || attempt >= retries || opts.signal?.aborted) {
        if (e instanceof RocmflowError && e.code === 'E_HTTP_5XX') throw new RocmflowError('E_HTTP', e.message, { cause: e });
        throw e;
      }
      opts.onRetry?.(e, attempt + 1);
      await delay(Math.min(250 * 2 ** attempt, 4000), opts.signal);
    }
  }
}

async function attemptOnce(opts: DownloadOptions, want: string | undefined): Promise<Omit<DownloadResult, 'cached'>> {
  const { url, dest } = opts;
  const part = dest + '.part';
  const metaPath = dest + '.part.json';
  let have = 0;
  let meta: PartMeta | undefined;
  if (await exists(part)) {
    meta = await readJson<PartMeta>(metaPath);
    if (meta?.url === url) have = (await stat(part)).size;
    else await rm(part, { force: true });
  }

  const headers: Record<string, string> = { 'accept-encoding': 'identity', ...opts.headers };
  if (have > 0) {
    headers.range = `bytes=${have}-`;
    const validator = meta?.etag && !meta.etag.startsWith('W/') ? meta.etag : meta?.lastModified;
    if (validator) headers['if-range'] = validator;
  }

  const timeoutMs = opts.timeoutMs ?? 60_000;
  const idle = new AbortController();
  const timer = setTimeout(() => idle.abort(), timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, idle.signal]) : idle.signal;
  const timedOut = () => new RocmflowError('E_TIMEOUT', `no data from ${safeHost(url)} for ${Math.round(timeoutMs / 1000)}s (${url})`);

  try {
    let res: Response;
    try {
      res = await (opts.fetch ?? fetch)(url, { headers, signal, redirect: 'follow' });
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (idle.signal.aborted) throw timedOut();
      throw netError(e, url) ?? e;
    }

    if (res.status === 416 && have > 0) {
      await res.body?.cancel();
      // the part may already hold the whole file (a crash between the last byte and the rename)
      const total = Number(/\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1]);
      if (total === have) return finish(opts, want, part, metaPath, have, have > 0);
      await rm(part, { force: true });
      throw new RocmflowError('E_RANGE_MISMATCH', `server refused to resume ${url}; restarting`);
    }
    if (!res.ok) {
      await res.body?.cancel();
      const msg = `GET ${url}: HTTP ${res.status} ${res.statusText}`.trimEnd();
      throw new RocmflowError(res.status >= 500 ? 'E_HTTP_5XX' : 'E_HTTP', msg);
    }

    let append = false;
    let total: number | undefined;
    if (res.status === 206) {
      const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!cr || Number(cr[1]) !== have) {
        await res.body?.cancel();
        await rm(part, { force: true });
        throw new RocmflowError('E_RANGE_MISMATCH', `server answered ${url} with an unexpected range (${res.headers.get('content-range')}); restarting`);
      }
      append = true;
      total = cr[3] === '*' ? undefined : Number(cr[3]);
    } else {
      // 200: no range support, or If-Range said the file changed: start over
      have = 0;
      const len = res.headers.get('content-length');
      total = len && !res.headers.get('content-encoding') ? Number(len) : undefined;
    }
    await writeFile(metaPath, JSON.stringify({ url, etag: res.headers.get('etag') ?? undefined, lastModified: res.headers.get('last-modified') ?? undefined, total } satisfies PartMeta));

    const hash = createHash('sha256');
    if (append) await hashInto(hash, part);
    const fh = await open(part, append ? 'a' : 'w');
    let done = have;
    try {
      opts.onProgress?.(done, total);
      if (res.body) {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          timer.refresh();
          await fh.write(chunk);
          hash.update(chunk);
          done += chunk.length;
          opts.onProgress?.(done, total);
        }
      }
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (idle.signal.aborted) throw timedOut();
      const why = netError(e, url)?.message ?? String((e as Error)?.message ?? e);
      throw new RocmflowError('E_DOWNLOAD_INTERRUPTED', `download of ${url} interrupted after ${done} bytes: ${why}`, { cause: e });
    } finally {
      await fh.close();
    }
    if (total !== undefined && done !== total)
      throw new RocmflowError('E_DOWNLOAD_INTERRUPTED', `download of ${url} ended after ${done} of ${total} bytes`);
    return finish(opts, want, part, metaPath, done, append, hash.digest('hex'));
  } finally {
    clearTimeout(timer);
  }
}

async function finish(opts: DownloadOptions, want: string | undefined, part: string, metaPath: string, size: number, resumed: boolean, digest?: string) {
  const got = digest ?? (await sha256File(part));
  if (want && got !== want) {
    await rm(part, { force: true });
    await rm(metaPath, { force: true });
    throw new RocmflowError('E_CHECKSUM', `checksum mismatch for ${opts.url}: expected sha256 ${want}, got ${got}`);
  }
  await rename(part, opts.dest);
  await rm(metaPath, { force: true });
  return { path: opts.dest, sha256: got, size, resumed };
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

async function readJson<T>(p: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(p, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });
}
