/**
 * CPU only: always present. The default build is portable (`GGML_NATIVE=OFF`,
 * runs on any x86-64); `targets.cpu.native: true` tunes for this machine.
 */
import { availableParallelism, cpus } from 'node:os';
import { defineTarget, s } from '../src/plugin/index.js';

/** Options under `targets.cpu`. */
export interface CpuTargetOptions {
  /** Optimise for this machine's CPU (`-DGGML_NATIVE=ON`); the image then needs the same CPU features. @default false */
  native?: boolean;
}


export default defineTarget<CpuTargetOptions>({
  name: 'cpu',
  family: 'cpu',
  description: 'CPU only (portable x86-64 build unless native)',
  options: s.object({ native: s.optional(s.boolean()) }),
  runtime: { kind: 'none' },
  async detect() {
    const model = cpus()[0]?.model?.trim() || 'unknown CPU';
    return { found: true, description: `${model}, ${availableParallelism()} threads`, facts: { model, threads: availableParallelism() } };
  },
  cmakeFlags(ctx) {
    return [ctx.options.native ? '-DGGML_NATIVE=ON' : '-DGGML_NATIVE=OFF'];
  },
  env() {
    return {};
  },
  devices: [],
  keep: [],
  drop: ['**/include/**', '**/*.a', '**/share/doc/**', '**/share/man/**'],
  hostProvided: [],
  tools: {
    strace: 'apt install strace',
    bwrap: 'apt install bubblewrap',
    cmake: 'apt install cmake',
    git: 'apt install git',
  },
});
