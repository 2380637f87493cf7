/**
 * CPU only: always present. The default build is portable (`GGML_NATIVE=OFF`,
 * runs on any x86-64); `targets.cpu.native: true` tunes for this machine.
 */
import { availableParallelism, cpus } from 'node:os';
import { defineTarget, s } from '../src/plugin/index.js';
import { parseTargetOptions } from '../src/gpu/target-options.js';

/** Options under `targets.cpu`. */
export interface CpuTargetOptions {
  /** Optimise for this machine's CPU (`-DGGML_NATIVE=ON`); the image then needs the same CPU features. @default false */
  native?: boolean;
}

const optionsSchema = s.object({ native: s.optional(s.boolean()) });
const parse = (options: unknown) => parseTargetOptions('cpu', optionsSchema, options);

export default defineTarget({
  name: 'cpu',
  family: 'cpu',
  description: 'CPU only (portable x86-64 build unless native)',
  runtime: { kind: 'none' },
  async detect(ctx) {
    parse(ctx.options);
    const model = cpus()[0]?.model?.trim() || 'unknown CPU';
    return { found: true, description: `${model}, ${availableParallelism()} threads`, facts: { model, threads: availableParallelism() } };
  },
  cmakeFlags(ctx) {
    return [parse(ctx.options).native ? '-DGGML_NATIVE=ON' : '-DGGML_NATIVE=OFF'];
  },
  env(ctx) {
    parse(ctx.options);
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
