/**
 * The Bazel HTTP cache protocol: `GET/PUT/HEAD <base>[/<instance>]/ac/<key>`
 * and `.../cas/<sha256>`, as bazel-remote and nginx's WebDAV PUT serve it.
 * Bodies stream both ways (a file piped into the request, a response piped
 * into a file), so a multi-GB blob never sits in memory.
 */
import { createReadStream } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { BlobDownload, RemoteBackend } from './backend.js';
import { RemoteError, classifyNetError } from './remote-error.js';
import { OversizeBlob, streamToFile } from './stream-to-file.js';

/** Action entries are small JSON documents; anything larger is not one. */
const MAX_ENTRY_BYTES = 64 << 20;

export interface HttpBackendOptions {
  /** Base URL without credentials, e.g. `http://cache.lan:8080/rocmflow`. */
  base: URL;
  instance: string | null;
  /** `Authorization` header value, if any. */
  authorization: string | null;
  /** Idle (socket inactivity) timeout per request; a slow but moving transfer is not cut off. */
  timeoutMs: number;
  concurrency: number;
}

type Body = { file: string; size: number } | Buffer;

export class HttpBackend implements RemoteBackend {
  readonly description: string;
  private readonly o: HttpBackendOptions;
  private readonly agent: http.Agent;
  private readonly prefix: string;

  constructor(o: HttpBackendOptions) {
    this.o = o;
    const base = o.base.href.replace(/\/+$/, '');
    this.prefix = o.instance ? `${base}/${o.instance.split('/').map(encodeURIComponent).join('/')}` : base;
    this.description = this.prefix;
    const Agent = o.base.protocol === 'https:' ? https.Agent : http.Agent;
    // one socket per parallel transfer plus one for action entries
    this.agent = new Agent({ keepAlive: true, maxSockets: o.concurrency + 1 });
  }

  async getEntry(key: string): Promise<Buffer | null> {
    const url = this.url('ac', key);
    const res = await this.send('GET', url);
    if (res.statusCode === 404) return drain(res, null);
    if (res.statusCode !== 200) throw statusError('GET', url, res);
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of res) {
        n += (c as Buffer).length;
        if (n > MAX_ENTRY_BYTES) {
          res.destroy();
          throw new RemoteError('http', `GET ${url}: action entry larger than ${MAX_ENTRY_BYTES} bytes`);
        }
        chunks.push(c as Buffer);
      }
    } catch (e) {
      throw classifyNetError(e, `GET ${url}`);
    }
    return Buffer.concat(chunks);
  }

  async putEntry(key: string, body: Buffer): Promise<void> {
    const url = this.url('ac', key);
    try {
      await this.expectStored('PUT', url, await this.send('PUT', url, body));
    } catch (e) {
      // bazel-remote checks /ac/ bodies are Bazel ActionResults unless told not to
      if (e instanceof RemoteError && e.kind === 'http' && / HTTP 400/.test(e.message))
        throw new RemoteError('http', `${e.message} (bazel-remote needs --disable_http_ac_validation for rocmflow's entries)`);
      throw e;
    }
  }

  async hasBlob(digest: string, size: number): Promise<boolean> {
    const url = this.url('cas', digest);
    const res = await this.send('HEAD', url);
    drain(res, null);
    if (res.statusCode === 404) return false;
    if (res.statusCode !== 200) throw statusError('HEAD', url, res);
    const len = res.headers['content-length'];
    // a truncated blob left by some other client must be replaced, not trusted
    return len === undefined || Number(len) === size;
  }

  async getBlob(digest: string, dest: string, size: number): Promise<BlobDownload | null> {
    const url = this.url('cas', digest);
    const res = await this.send('GET', url);
    if (res.statusCode === 404) return drain(res, null);
    if (res.statusCode !== 200) throw statusError('GET', url, res);
    if (res.headers['content-length'] !== undefined && Number(res.headers['content-length']) > size) {
      res.destroy();
      throw new OversizeBlob(size);
    }
    let got: BlobDownload;
    try {
      got = await streamToFile(res, dest, Number(res.headers['content-length'] ?? 0), size);
    } catch (e) {
      if (e instanceof OversizeBlob) {
        res.destroy();
        throw e;
      }
      const code = (e as NodeJS.ErrnoException).code;
      // local disk trouble is not the server's fault; say where it happened
      if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EACCES') throw new RemoteError('io', `writing ${dest}: ${code}`, { cause: e });
      throw classifyNetError(e, `GET ${url}`);
    }
    const len = res.headers['content-length'];
    if (len !== undefined && Number(len) !== got.bytes) throw new RemoteError('unreachable', `GET ${url}: connection closed after ${got.bytes} of ${len} bytes`);
    return got;
  }

  async putBlob(digest: string, file: string, size: number): Promise<void> {
    const url = this.url('cas', digest);
    await this.expectStored('PUT', url, await this.send('PUT', url, { file, size }));
  }

  close(): void {
    this.agent.destroy();
  }

  private url(space: 'ac' | 'cas', name: string): string {
    return `${this.prefix}/${space}/${name}`;
  }

  private async expectStored(method: string, url: string, res: IncomingMessage): Promise<void> {
    drain(res, null);
    // 200 (replaced, bazel-remote), 201 (created), 204 (replaced, nginx)
    if (res.statusCode !== 200 && res.statusCode !== 201 && res.statusCode !== 204) throw statusError(method, url, res);
  }

  /** Send a request; resolves with the response as soon as its headers arrive. */
  private async send(method: 'GET' | 'HEAD' | 'PUT', url: string, body?: Body): Promise<IncomingMessage> {
    try {
      return await this.sendOnce(method, url, body);
    } catch (e) {
      // a kept-alive socket the server closed while idle fails on reuse;
      // that is no sign of a dead server: retry once on a fresh socket
      if (!(e instanceof StaleSocket)) throw e;
      return this.sendOnce(method, url, body).catch((err) => {
        throw err instanceof StaleSocket ? err.error : err;
      });
    }
  }

  private sendOnce(method: 'GET' | 'HEAD' | 'PUT', url: string, body?: Body): Promise<IncomingMessage> {
    const where = `${method} ${url}`;
    const headers: Record<string, string | number> = {};
    if (this.o.authorization) headers.authorization = this.o.authorization;
    if (body) {
      headers['content-type'] = 'application/octet-stream';
      headers['content-length'] = Buffer.isBuffer(body) ? body.length : body.size;
    }
    const mod = this.o.base.protocol === 'https:' ? https : http;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = mod.request(url, { method, agent: this.agent, headers });
      const timeout = () => req.destroy(new RemoteError('timeout', `${where}: no data for ${this.o.timeoutMs} ms`));
      req.setTimeout(this.o.timeoutMs, timeout);
      req.on('error', (e) => {
        const code = (e as NodeJS.ErrnoException).code;
        if (req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) reject(new StaleSocket(classifyNetError(e, where)));
        else reject(e instanceof RemoteError ? e : classifyNetError(e, where));
      });
      req.on('response', (res) => {
        // the idle timeout keeps watching while the body streams in
        res.setTimeout(this.o.timeoutMs, () => res.destroy(new RemoteError('timeout', `${where}: no data for ${this.o.timeoutMs} ms`)));
        resolve(res);
      });
      if (!body) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        const src = createReadStream(body.file, { highWaterMark: 1 << 20 });
        src.on('error', (e) => req.destroy(new RemoteError('io', `reading ${body.file}: ${(e as Error).message}`)));
        src.pipe(req);
      }
    });
  }
}

class StaleSocket extends Error {
  constructor(readonly error: RemoteError) {
    super(error.message);
  }
}

function drain<T>(res: IncomingMessage, value: T): T {
  res.resume();
  return value;
}

function statusError(method: string, url: string, res: IncomingMessage): RemoteError {
  res.resume();
  const status = res.statusCode ?? 0;
  const text = `${method} ${url}: HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`;
  if (status === 401 || status === 403) return new RemoteError('denied', text);
  return new RemoteError('http', text);
}
