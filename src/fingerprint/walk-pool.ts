/**
 * The input walk on every core, for the long-lived server (src/server/):
 * a no-op over tens of thousands of inputs is mostly one `lstat` per file,
 * which on one thread takes about 0.1 s per 20,000 files. The top of each
 * tree is walked here until there are enough subdirectories to share out;
 * each worker walks its share with the very same `walkDir`, and sends the
 * entries back packed. The workers start once and live as long as the
 * process (starting them costs more than a cold CLI's whole walk, which is
 * why only the server uses them).
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { RocmflowError } from '../errors.js';
import { walkDir, type InputEntry } from './walk.js';

// no require(): evaluated as CommonJS or, under --input-type=module, as a module
const WORKER_SRC = `
import('node:worker_threads').then(({ parentPort, workerData }) => {
let walkDir, stampPrefix;
parentPort.on('message', async ({ id, dirs, root, source, flags, base }) => {
  try {
    walkDir ??= (await import(workerData.walkUrl)).walkDir;
    stampPrefix ??= (await import(workerData.digestsUrl)).stampPrefix;
    const filter = source === null ? undefined : new RegExp(source, flags);
    const out = [];
    for (const d of dirs) walkDir(typeof d === 'string' ? d : Buffer.from(d), root, out, filter, base === null ? undefined : base);
    const nums = new Float64Array(out.length * 6);
    const types = new Uint8Array(out.length);
    const paths = [], keys = [], links = [], prefixes = [];
    out.forEach((e, i) => {
      paths.push(e.path); keys.push(e.key); links.push(e.linkTarget === undefined ? null : e.linkTarget); prefixes.push(stampPrefix(e));
      types[i] = e.type === 'file' ? 0 : 1;
      nums[i * 6] = e.size; nums[i * 6 + 1] = e.mtimeMs; nums[i * 6 + 2] = e.ctimeMs; nums[i * 6 + 3] = e.ino; nums[i * 6 + 4] = e.dev; nums[i * 6 + 5] = e.mode;
    });
    parentPort.postMessage({ id, paths, keys, links, prefixes, types, nums }, [nums.buffer, types.buffer]);
  } catch (e) {
    parentPort.postMessage({ id, error: { message: String((e && e.message) || e), code: e && e.code } });
  }
});
});
`;

interface Packed {
  id: number;
  paths: (string | Uint8Array)[];
  keys: string[];
  links: (string | null)[];
  prefixes: string[];
  types: Uint8Array;
  nums: Float64Array;
  error?: { message: string; code?: string };
}

interface Pool {
  workers: Worker[];
  pending: Map<number, { resolve: (r: Packed) => void; reject: (e: Error) => void; worker: Worker }>;
  next: number;
}

let pool: Pool | null = null;

/** Workers hold the process open only while they have work (the server's socket holds it otherwise). */
function settle(p: Pool, w: Worker): void {
  if (![...p.pending.values()].some((x) => x.worker === w)) w.unref();
}

function workers(): Pool {
  if (pool) return pool;
  const n = Math.max(2, Math.min(8, availableParallelism()));
  const p: Pool = { workers: [], pending: new Map(), next: 0 };
  const walkUrl = new URL('./walk.js', import.meta.url).href;
  const digestsUrl = new URL('./file-digests.js', import.meta.url).href;
  for (let i = 0; i < n; i++) {
    const w = new Worker(WORKER_SRC, { eval: true, workerData: { walkUrl, digestsUrl } });
    w.on('message', (r: Packed) => {
      const job = p.pending.get(r.id);
      p.pending.delete(r.id);
      settle(p, w);
      job?.resolve(r);
    });
    // a worker that dies fails its walks, and the pool starts anew next time
    const fail = (e: Error) => {
      if (pool === p) pool = null;
      for (const [id, job] of p.pending) if (job.worker === w) {
        p.pending.delete(id);
        job.reject(e);
      }
      for (const other of p.workers) if (other !== w) void other.terminate();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`a walk worker exited (${code})`)));
    w.unref();
    p.workers.push(w);
  }
  pool = p;
  return p;
}

function ask(p: Pool, w: Worker, message: Record<string, unknown>): Promise<Packed> {
  const id = p.next++;
  return new Promise((resolve, reject) => {
    p.pending.set(id, { resolve, reject, worker: w });
    w.ref();
    w.postMessage({ id, ...message });
  });
}

/** Everything `walkDir(dir, root, out, filter, base)` would find, walked on every core. */
export async function walkTreeParallel(dir: string, root: string, filter: RegExp | undefined, base: string | undefined): Promise<InputEntry[]> {
  const out: InputEntry[] = [];
  const p = workers();
  const ws = p.workers;
  // the top levels here, until there are a few subdirectories per worker (or the tree has no more)
  let units: (string | Buffer)[] = [dir];
  for (let depth = 0; depth < 4 && units.length && units.length < ws.length * 4; depth++) {
    const next: (string | Buffer)[] = [];
    for (const u of units) walkDir(u, root, out, filter, base, (sub) => next.push(sub));
    units = next;
  }
  if (!units.length) return out;
  const groups: (string | Buffer)[][] = ws.map(() => []);
  units.forEach((u, i) => groups[i % ws.length]!.push(u));
  const replies = await Promise.all(
    groups.flatMap((g, i) => (g.length ? [ask(p, ws[i]!, { dirs: g, root, source: filter?.source ?? null, flags: filter?.flags ?? '', base: base ?? null })] : [])),
  );
  for (const r of replies) {
    if (r.error) throw new RocmflowError(r.error.code && r.error.code.startsWith('E_') ? r.error.code : 'E_INPUT', r.error.message);
    for (let i = 0; i < r.keys.length; i++) {
      const p = r.paths[i]!;
      const n = r.nums;
      const link = r.links[i];
      out.push({
        path: typeof p === 'string' ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength),
        key: r.keys[i]!,
        type: r.types[i] === 0 ? 'file' : 'symlink',
        size: n[i * 6]!, mtimeMs: n[i * 6 + 1]!, ctimeMs: n[i * 6 + 2]!, ino: n[i * 6 + 3]!, dev: n[i * 6 + 4]!, mode: n[i * 6 + 5]!,
        ...(link === null ? {} : { linkTarget: link }),
        stampPrefix: r.prefixes[i]!,
      });
    }
  }
  return out;
}
