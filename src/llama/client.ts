/**
 * A client for llama-server's native `POST /completion`: one request,
 * streamed (server-sent events, `data: {...}` lines) or not, with sampling
 * pinned (temperature 0, fixed seed, no prompt cache) so that two runs of
 * the same build give the same text.
 */
import { RocmflowError } from '../errors.js';

/** One completion request. */
export interface CompletionRequest {
  prompt: string;
  /** Tokens to generate. */
  nPredict: number;
  seed: number;
  /** Use server-sent events. */
  stream: boolean;
  /** Keep generating past an end-of-text token, so every run produces `nPredict` tokens. @default true */
  ignoreEos?: boolean;
}

/** What the server reports about speed (`timings` in its answer). */
export interface CompletionTimings {
  promptTokens: number;
  promptMs: number;
  promptPerSecond: number;
  predictedTokens: number;
  predictedMs: number;
  predictedPerSecond: number;
}

/** The generated text and its timings. */
export interface CompletionResult {
  text: string;
  timings: CompletionTimings | null;
  /** Number of SSE events read (streamed requests; 1 otherwise). */
  chunks: number;
  /** Wall time of the request in milliseconds. */
  ms: number;
}

interface RawTimings {
  prompt_n?: number;
  prompt_ms?: number;
  prompt_per_second?: number;
  predicted_n?: number;
  predicted_ms?: number;
  predicted_per_second?: number;
}

function timingsOf(t: RawTimings | undefined): CompletionTimings | null {
  if (!t) return null;
  return {
    promptTokens: t.prompt_n ?? 0,
    promptMs: t.prompt_ms ?? 0,
    promptPerSecond: t.prompt_per_second ?? 0,
    predictedTokens: t.predicted_n ?? 0,
    predictedMs: t.predicted_ms ?? 0,
    predictedPerSecond: t.predicted_per_second ?? 0,
  };
}

/** The request body llama-server expects. */
export function completionBody(req: CompletionRequest): Record<string, unknown> {
  return {
    prompt: req.prompt,
    n_predict: req.nPredict,
    temperature: 0,
    seed: req.seed,
    cache_prompt: false,
    ignore_eos: req.ignoreEos ?? true,
    stream: req.stream,
  };
}

/** Send one completion request to `baseUrl` (e.g. `http://127.0.0.1:8080`). */
export async function complete(baseUrl: string, req: CompletionRequest, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<CompletionResult> {
  const t0 = performance.now();
  const signals = [AbortSignal.timeout(opts.timeoutMs ?? 300_000), ...(opts.signal ? [opts.signal] : [])];
  const url = `${baseUrl}/completion`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(completionBody(req)),
      signal: AbortSignal.any(signals),
    });
  } catch (e) {
    throw new RocmflowError('E_COMPLETION', `POST ${url} failed: ${(e as Error).message}`);
  }
  if (res.status !== 200) {
    const body = (await res.text().catch(() => '')).slice(0, 300);
    throw new RocmflowError('E_COMPLETION', `POST ${url}: HTTP ${res.status} ${body}`);
  }
  if (!req.stream) {
    const j = (await res.json()) as { content?: string; timings?: RawTimings };
    if (typeof j.content !== 'string') throw new RocmflowError('E_COMPLETION', `POST ${url}: the answer has no "content"`);
    return { text: j.content, timings: timingsOf(j.timings), chunks: 1, ms: Math.round(performance.now() - t0) };
  }
  let text = '';
  let timings: CompletionTimings | null = null;
  let chunks = 0;
  for await (const data of sseData(res.body!)) {
    if (data === '[DONE]') break;
    const j = JSON.parse(data) as { content?: string; timings?: RawTimings; stop?: boolean };
    chunks++;
    if (typeof j.content === 'string') text += j.content;
    if (j.timings) timings = timingsOf(j.timings);
    if (j.stop) break;
  }
  return { text, timings, chunks, ms: Math.round(performance.now() - t0) };
}

/** The `data:` payloads of a server-sent event stream. */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line.startsWith('data:')) yield line.slice(5).trimStart();
    }
  }
  buf += decoder.decode();
  if (buf.startsWith('data:')) yield buf.slice(5).trimStart();
}
