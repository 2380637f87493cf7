/**
 * A real HTTP server on 127.0.0.1 for the fetch tests: serves bytes with
 * optional Range support, can drop the connection after N bytes, stall, or
 * answer with a status; records every request's path and headers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Route {
  body: Buffer | string;
  contentType?: string;
  /** Honour Range requests. @default true */
  ranges?: boolean;
  status?: number;
  /** Destroy the socket after this many body bytes, for the first `dropTimes` requests. */
  dropAfter?: number;
  dropTimes?: number;
  /** Send headers, then nothing. */
  stall?: boolean;
  etag?: string;
}

export interface SeenRequest {
  path: string;
  headers: IncomingMessage['headers'];
}

export interface TestServer {
  url: string;
  routes: Map<string, Route>;
  seen: SeenRequest[];
  close(): Promise<void>;
}

export async function startServer(routes: Record<string, Route> = {}): Promise<TestServer> {
  const map = new Map(Object.entries(routes));
  const seen: SeenRequest[] = [];
  const drops = new Map<string, number>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    seen.push({ path, headers: req.headers });
    const route = map.get(path) ?? map.get(path.split('?')[0]!);
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    if (route.status && route.status !== 200) {
      res.writeHead(route.status).end();
      return;
    }
    const body = Buffer.isBuffer(route.body) ? route.body : Buffer.from(route.body);
    const headers: Record<string, string | number> = { 'content-type': route.contentType ?? 'application/octet-stream' };
    if (route.etag) headers.etag = route.etag;
    let start = 0;
    let status = 200;
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    const ifRange = req.headers['if-range'];
    if (range && route.ranges !== false && (!ifRange || ifRange === route.etag)) {
      start = Number(range[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    }
    if (route.ranges !== false) headers['accept-ranges'] = 'bytes';
    const slice = body.subarray(start);
    headers['content-length'] = slice.length;
    res.writeHead(status, headers);
    if (route.stall) return; // keep the socket open, send nothing
    const dropped = drops.get(path) ?? 0;
    if (route.dropAfter !== undefined && dropped < (route.dropTimes ?? 1)) {
      drops.set(path, dropped + 1);
      res.write(slice.subarray(0, route.dropAfter), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(slice);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    routes: map,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
