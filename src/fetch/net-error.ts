/**
 * Turns what Node's fetch throws into one-line RocmflowErrors. fetch reports
 * every network failure as `TypeError: fetch failed` and hides the reason in
 * `cause` (ENOTFOUND, ECONNREFUSED, a TLS error, ...): dig it out.
 */
import { RocmflowError } from '../errors.js';

function causeChain(e: unknown): { code?: string; message: string } {
  let cur: any = e;
  let best: { code?: string; message: string } = { message: String((e as Error)?.message ?? e) };
  for (let depth = 0; cur && depth < 5; depth++, cur = cur.cause) {
    if (cur.code || (cur !== e && cur.message)) best = { code: cur.code, message: String(cur.message ?? cur) };
  }
  return best;
}

/** A network error while talking to `url`, or null when `e` is not one (an abort, a bug). */
export function netError(e: unknown, url: string): RocmflowError | null {
  if (e instanceof RocmflowError) return e;
  const name = (e as Error)?.name;
  if (name === 'AbortError') return null;
  if (!(e instanceof TypeError) && !(e as any)?.code && !(e as any)?.cause) return null;
  const host = safeHost(url);
  const c = causeChain(e);
  const code = c.code ?? '';
  if (/^(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ECONNRESET|ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT|CERT_|ERR_TLS|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO)/.test(code) || /fetch failed/.test(String((e as Error).message))) {
    return new RocmflowError('E_UNREACHABLE', `cannot reach ${host}: ${c.message}${code && !c.message.includes(code) ? ` (${code})` : ''} (${url})`, { cause: e });
  }
  return new RocmflowError('E_NETWORK', `network error from ${host}: ${c.message} (${url})`, { cause: e });
}

export function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
