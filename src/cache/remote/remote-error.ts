/**
 * A failure talking to the shared cache. `kind` decides the policy:
 * `unreachable` and `timeout` open the circuit breaker for the rest of the
 * run; `denied` stops uploads; `http` and `io` are counted and warned about.
 */
export type RemoteErrorKind = 'unreachable' | 'timeout' | 'denied' | 'http' | 'io';

export class RemoteError extends Error {
  readonly kind: RemoteErrorKind;

  constructor(kind: RemoteErrorKind, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RemoteError';
    this.kind = kind;
  }
}

const UNREACHABLE = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT',
  'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET',
]);

/** Turn a socket or stream error into a RemoteError that names `where` (never credentials). */
export function classifyNetError(e: unknown, where: string): RemoteError {
  if (e instanceof RemoteError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = err?.code ?? '';
  const text = code || err?.message || String(e);
  if (UNREACHABLE.has(code) || /socket hang up|aborted/i.test(err?.message ?? '')) return new RemoteError('unreachable', `${where}: ${text}`, { cause: e });
  return new RemoteError('io', `${where}: ${text}`, { cause: e });
}
