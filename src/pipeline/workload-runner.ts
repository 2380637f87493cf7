/**
 * A WorkloadRunner over the runtime sandbox: commands run inside a layout
 * (base + layers) or a trimmed root, with the models directory bound and the
 * target's devices and environment; optionally each command under the
 * host's strace, run from inside the root so that its log holds in-root
 * paths (see src/runtime/strace-kit.ts).
 */
import { posix } from 'node:path';
import type { RootLayout } from '../runtime/layout.js';
import { makeMountPoints, runSandboxed, sandboxArgv, type SandboxBind, type SandboxOptions } from '../runtime/sandbox.js';
import { straceKit } from '../runtime/strace-kit.js';
import { straceArgs } from '../trace/run.js';
import type { WorkloadRunner } from '../llama/workload.js';

export interface SandboxRunnerOptions {
  /** Exactly one of `layout` and `root`. */
  layout?: RootLayout;
  root?: string;
  binds?: SandboxBind[];
  devices?: string[];
  env?: Record<string, string>;
  method?: SandboxOptions['method'];
  /** Trace every command into `<traceDir>/<name>.log` (a host directory, bound writable at the same path). */
  traceDir?: string;
  signal?: AbortSignal;
}

/** Build the runner; with `traceDir`, strace (from the host) is prepared once. */
export async function sandboxRunner(opts: SandboxRunnerOptions): Promise<WorkloadRunner & { logs: string[] }> {
  const kit = opts.traceDir ? await straceKit() : null;
  const logs: string[] = [];
  const wrap = (command: string[], name: string): SandboxOptions => {
    const base: SandboxOptions = {
      ...(opts.layout ? { layout: opts.layout } : { root: opts.root }),
      binds: [...(opts.binds ?? [])],
      devices: opts.devices,
      env: opts.env,
      method: opts.method,
      command,
    };
    if (!kit || !opts.traceDir) return base;
    const log = posix.join(opts.traceDir, `${name}.log`);
    logs.push(log);
    return {
      ...base,
      binds: [...base.binds!, ...kit.binds, { source: opts.traceDir, dest: opts.traceDir, rw: true }],
      command: [...kit.prefix, ...straceArgs({ logPath: log }, command)],
    };
  };
  const method = sandboxArgv(wrap(['/bin/true'], 'probe')).method;
  logs.length = 0;
  return {
    method,
    logs,
    async argv(command, name) {
      const cmd = sandboxArgv(wrap(command, name));
      // the chroot method mounts onto directories of the root: make them (runSandboxed does the same)
      await makeMountPoints(cmd.mountPoints);
      return cmd.argv;
    },
    async run(command, name) {
      const r = await runSandboxed({ ...wrap(command, name), signal: opts.signal });
      return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    },
  };
}
