/**
 * What the traced workload is: its requests and defaults, apart from the
 * code that runs it (workload.ts), so a task's fresh check can name it
 * without loading the server and client.
 */

/** One server request of the workload. */
export interface WorkloadRequest {
  name: string;
  prompt: string;
  nPredict: number;
  stream: boolean;
}

/** What the workload does; every field is part of the trace's fingerprint. */
export interface WorkloadSpec {
  seed: number;
  /** Fixed, so that float sums (and with them greedy picks) do not depend on the machine's core count. */
  threads: number;
  ctxSize: number;
  requests: WorkloadRequest[];
  cli: { prompt: string; nPredict: number };
}

const SHORT = 'Once upon a time';
const LONG =
  'The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step. ' +
  'In the beginning the universe was created, and this has made a lot of people very angry';

/** The default: small enough for the tiny test model on two cores, real enough to load every code path once. */
export const DEFAULT_WORKLOAD: WorkloadSpec = {
  seed: 42,
  threads: 2,
  ctxSize: 512,
  requests: [
    { name: 'short', prompt: SHORT, nPredict: 16, stream: false },
    { name: 'short-stream', prompt: SHORT, nPredict: 16, stream: true },
    { name: 'long', prompt: LONG, nPredict: 32, stream: false },
    { name: 'long-stream', prompt: LONG, nPredict: 32, stream: true },
  ],
  cli: { prompt: SHORT, nPredict: 16 },
};
