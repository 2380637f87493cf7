/**
 * NVIDIA GPU discovery through `nvidia-smi`. A host without nvidia-smi has
 * no NVIDIA GPU as far as we are concerned: not an error.
 */
import { execFile } from 'node:child_process';

/** One GPU as nvidia-smi reports it. */
export interface NvidiaGpu {
  /** CUDA device index (nvidia-smi's order, which CUDA_DEVICE_ORDER=PCI_BUS_ID also follows). */
  index: number;
  name: string;
  /** e.g. "8.9"; null when the driver is too old to report it. */
  computeCapability: string | null;
  memoryTotalBytes: number;
  memoryUsedBytes: number;
}

/** Where to look: PATH from `env`, or an explicit nvidia-smi path. */
export interface NvidiaQueryOptions {
  env?: Readonly<Record<string, string | undefined>>;
  /** Path or name of nvidia-smi (default "nvidia-smi", looked up on env.PATH). */
  command?: string;
  signal?: AbortSignal;
}

export const NVIDIA_QUERY = ['--query-gpu=index,name,compute_cap,memory.total,memory.used', '--format=csv,noheader,nounits'];

const MIB = 1024 * 1024;

/** Parse `nvidia-smi --query-gpu=index,name,compute_cap,memory.total,memory.used --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(text: string): NvidiaGpu[] {
  const gpus: NvidiaGpu[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const f = line.split(',').map((x) => x.trim());
    if (f.length < 5) continue;
    // names may contain commas: the first field is the index, the last three are numbers
    const index = Number(f[0]);
    const [cc, total, used] = f.slice(-3);
    const name = f.slice(1, -3).join(', ');
    if (!Number.isInteger(index)) continue;
    gpus.push({
      index,
      name,
      computeCapability: cc && /^\d+\.\d+$/.test(cc) ? cc : null,
      memoryTotalBytes: Math.round(Number(total) * MIB) || 0,
      memoryUsedBytes: Math.round(Number(used) * MIB) || 0,
    });
  }
  return gpus;
}

/** The result of asking nvidia-smi: `available` is false when the tool is missing or failed. */
export interface NvidiaQuery {
  available: boolean;
  gpus: NvidiaGpu[];
  /** Why nothing was found, when `available` is false. */
  reason?: string;
}

/** Run nvidia-smi and list the GPUs. */
export function queryNvidia(opts: NvidiaQueryOptions = {}): Promise<NvidiaQuery> {
  const command = opts.command ?? 'nvidia-smi';
  const env = { ...process.env, ...(opts.env ?? {}) } as NodeJS.ProcessEnv;
  return new Promise((resolve) => {
    execFile(command, NVIDIA_QUERY, { env, signal: opts.signal, timeout: 15_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const reason = code === 'ENOENT' ? 'nvidia-smi not found' : `nvidia-smi failed: ${(stderr || stdout || err.message).trim().split('\n')[0]}`;
        resolve({ available: false, gpus: [], reason });
        return;
      }
      resolve({ available: true, gpus: parseNvidiaSmi(stdout) });
    });
  });
}

/** "9.0" → "90": the form CMAKE_CUDA_ARCHITECTURES takes. */
export function cudaArchFromComputeCapability(cc: string): string {
  const m = /^(\d+)\.(\d+)$/.exec(cc.trim());
  if (!m) throw new Error(`not a compute capability: ${cc}`);
  return `${m[1]}${m[2]}`;
}
