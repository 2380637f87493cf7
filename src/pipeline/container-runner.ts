/**
 * A WorkloadRunner over a container image: every command of the workload
 * runs in its own container of `image` (podman or docker with the probed
 * flags, host network, the models directory mounted), so the traced
 * workload can be replayed against the very image users pull.
 */
import { randomBytes } from 'node:crypto';
import { engineExec, runArgv, type ContainerEngine } from '../runtime/container-engine.js';
import type { WorkloadRunner } from '../llama/workload.js';

export interface ContainerRunnerOptions {
  engine: ContainerEngine;
  image: string;
  binds?: { source: string; dest: string; rw?: boolean }[];
  devices?: string[];
  groups?: string[];
  signal?: AbortSignal;
}

export function containerRunner(o: ContainerRunnerOptions): WorkloadRunner {
  const argv = (command: string[], name: string) =>
    runArgv(o.engine, {
      image: o.image, entrypoint: command[0], args: command.slice(1), binds: o.binds, devices: o.devices, groups: o.groups,
      name: `rocmflow-${name}-${randomBytes(4).toString('hex')}`,
    });
  return {
    method: `${o.engine.name} (${o.image})`,
    async argv(command, name) {
      return argv(command, name);
    },
    async run(command, name) {
      const [bin, ...args] = argv(command, name);
      const r = await engineExec(bin!, args, { signal: o.signal });
      return { exitCode: r.code, stdout: r.stdout, stderr: r.stderr };
    },
  };
}
