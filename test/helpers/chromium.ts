/**
 * Debian's chromium, headless, driven over the DevTools protocol on a pipe
 * (`--remote-debugging-pipe`: NUL-separated JSON on fds 3 and 4, so no
 * WebSocket client is needed): open a page, record every request it makes
 * and every console error, evaluate an expression in it, take a screenshot.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { which } from '../../src/util/which.js';

export const CHROMIUM = which('chromium') ?? which('chromium-browser');

export interface PageVisit<T> {
  /** What `expression` returned (by value). */
  value: T;
  /** Every URL the page requested (the page itself included). */
  requests: string[];
  /** Console errors and uncaught exceptions. */
  errors: string[];
  /** A PNG screenshot of the page, when asked for. */
  png?: Buffer;
}

/** Load `url` in a fresh headless chromium, evaluate `expression` after the load event, close. */
export async function visit<T>(url: string, expression: string, opts: { width?: number; height?: number; screenshot?: boolean; fullPage?: boolean } = {}): Promise<PageVisit<T>> {
  const profile = mkdtempSync(join(tmpdir(), 'rocmflow-chromium-'));
  const width = opts.width ?? 1200;
  const height = opts.height ?? 900;
  const child = spawn(CHROMIUM!, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-extensions', '--hide-scrollbars', `--user-data-dir=${profile}`,
    `--window-size=${width},${height}`, '--remote-debugging-pipe', 'about:blank',
  ], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const toBrowser = child.stdio[3] as Writable;
  const fromBrowser = child.stdio[4] as Readable;
  let nextId = 1;
  const pending = new Map<number, { resolve(v: any): void; reject(e: Error): void }>();
  const listeners: ((m: any) => void)[] = [];
  let buf = '';
  fromBrowser.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let i: number;
    while ((i = buf.indexOf('\0')) >= 0) {
      const msg = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      if (msg.id && pending.has(msg.id)) {
        const p = pending.get(msg.id)!;
        pending.delete(msg.id);
        if (msg.error) p.reject(new Error(`${msg.error.message} (${JSON.stringify(msg.error.data ?? '')})`));
        else p.resolve(msg.result);
      } else for (const l of listeners) l(msg);
    }
  });
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  const send = (method: string, params: object = {}, sessionId?: string): Promise<any> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      toBrowser.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0');
    });
  const timeout = setTimeout(() => child.kill('SIGKILL'), 90_000);
  try {
    const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
    const requests: string[] = [];
    const errors: string[] = [];
    let loaded!: () => void;
    const load = new Promise<void>((r) => (loaded = r));
    listeners.push((m) => {
      if (m.sessionId !== sessionId) return;
      if (m.method === 'Network.requestWillBeSent') requests.push(m.params.request.url);
      if (m.method === 'Runtime.exceptionThrown') errors.push(m.params.exceptionDetails.text);
      if (m.method === 'Runtime.consoleAPICalled' && m.params.type === 'error') errors.push(m.params.args.map((a: any) => a.value).join(' '));
      if (m.method === 'Log.entryAdded' && m.params.entry.level === 'error') errors.push(`${m.params.entry.source}: ${m.params.entry.text}`);
      if (m.method === 'Page.loadEventFired') loaded();
    });
    for (const d of ['Page', 'Network', 'Runtime', 'Log']) await send(`${d}.enable`, {}, sessionId);
    await send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false }, sessionId);
    await send('Page.navigate', { url }, sessionId);
    await load;
    const r = await send('Runtime.evaluate', { expression, returnByValue: true }, sessionId);
    if (r.exceptionDetails) throw new Error(`evaluating in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    let png: Buffer | undefined;
    if (opts.screenshot) {
      const shot = await send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: !!opts.fullPage }, sessionId);
      png = Buffer.from(shot.data, 'base64');
    }
    await send('Browser.close').catch(() => {});
    return { value: r.result.value as T, requests, errors, png };
  } catch (e) {
    throw new Error(`${(e as Error).message}\nchromium said: ${stderr.slice(-1500)}`);
  } finally {
    clearTimeout(timeout);
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(profile, { recursive: true, force: true });
  }
}
