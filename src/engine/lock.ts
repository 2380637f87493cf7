/**
 * Cross-process locks as directories (mkdir is atomic) holding the owner's
 * pid. A lock whose owner died (kill -9) is taken over.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';

function ownerAlive(dir: string): boolean {
  try {
    const [host, pid] = readFileSync(join(dir, 'owner'), 'utf8').split(':');
    if (host !== hostname()) return true; // can't tell; assume alive
    process.kill(Number(pid), 0);
    return true;
  } catch (e) {
    // EPERM: exists but not ours; ENOENT on the file: being created right now
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'EPERM' || code === 'ENOENT';
  }
}

export interface Lock {
  release(): void;
}

/** Acquire `dir` as a lock, waiting for a live owner; `onWait` is called once if we must wait. */
export async function acquireLock(dir: string, opts: { signal?: AbortSignal; onWait?: () => void } = {}): Promise<Lock> {
  let waited = false;
  let staleChecks = 0;
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      mkdirSync(dir, { recursive: false });
      writeFileSync(join(dir, 'owner'), `${hostname()}:${process.pid}`);
      return { release: () => rmSync(dir, { recursive: true, force: true }) };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        mkdirSync(join(dir, '..'), { recursive: true });
        continue;
      }
      if (code !== 'EEXIST') throw e;
    }
    // the owner file is written right after mkdir: give it a moment before judging
    if (!ownerAlive(dir) && ++staleChecks > 1) {
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (!waited) {
      waited = true;
      opts.onWait?.();
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
