/**
 * Runs a build tool as its own process group, streams its output line by
 * line (to a log and a progress parser) and kills the whole group on abort,
 * so a cancelled cmake takes its compilers down with it.
 */
import { spawn } from 'node:child_process';
import { RocmflowError } from '../errors.js';

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Called for every output line (stdout and stderr interleaved). */
  onLine?: (line: string) => void;
  /** Error code and a short label for the failure message, e.g. "cmake configure". */
  what: string;
  /** One-line hint appended to a failure, e.g. "see build.log". */
  hint?: string;
}

export interface ExecResult {
  /** The last lines of output (kept for error messages). */
  tail: string[];
}

/** Run `cmd args`; reject with a RocmflowError naming `what` (and the last output lines) on failure. */
export function execStreaming(cmd: string, args: readonly string[], opts: ExecOptions): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new RocmflowError('E_CANCELLED', `${opts.what}: cancelled`));
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const tail: string[] = [];
    const partial = { out: '', err: '' };
    const feed = (key: 'out' | 'err', chunk: Buffer) => {
      const text = partial[key] + chunk.toString('utf8');
      const lines = text.split(/\r?\n/);
      partial[key] = lines.pop() ?? '';
      for (const l of lines) emit(l);
    };
    const emit = (line: string) => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      opts.onLine?.(line);
    };
    child.stdout.on('data', (c: Buffer) => feed('out', c));
    child.stderr.on('data', (c: Buffer) => feed('err', c));
    const onAbort = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGTERM');
      } catch {}
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e: NodeJS.ErrnoException) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(new RocmflowError(e.code === 'ENOENT' ? 'E_MISSING_TOOL' : 'E_EXEC', `${opts.what}: ${e.code === 'ENOENT' ? `${cmd} not found` : e.message}`));
    });
    child.on('close', (code, sig) => {
      opts.signal?.removeEventListener('abort', onAbort);
      for (const key of ['out', 'err'] as const) if (partial[key]) emit(partial[key]);
      if (opts.signal?.aborted) return reject(new RocmflowError('E_CANCELLED', `${opts.what}: cancelled`));
      if (code === 0) return resolve({ tail });
      const last = tail.filter((l) => l.trim()).slice(-12);
      const status = sig ? `killed by ${sig}` : `exit code ${code}`;
      reject(new RocmflowError('E_BUILD', `${opts.what} failed (${status})${opts.hint ? `: ${opts.hint}` : ''}`, { details: last }));
    });
  });
}
