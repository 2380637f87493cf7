/**
 * llama.cpp for an AMD GPU built against Debian's own ROCm, in a Debian sid
 * root made by debootstrap: the root, the ROCm packages (installed into the
 * root with its own apt-get, in Debian's /usr layout), the HIP build, the
 * trace, the trim, the verification and the images all happen in that root,
 * so nothing depends on the host's distribution.
 *
 *   rocmflow run trim-runtime --config examples/debian-rocm.config.ts --target gfx1100
 *   rocmflow run trim-runtime --config examples/debian-rocm.config.ts --target gfx1151 --no-device
 *
 * `--no-device` on a machine without that GPU: the workload runs on the CPU
 * fallback and what only a device loads is kept by the target's rules.
 * ROCMFLOW_BASE_ROOT=DIR uses an existing root (with the same packages)
 * instead of debootstrapping one; ROCMFLOW_CCACHE_DIR shares a ccache;
 * ROCMFLOW_BUILD_JOBS sets the compile jobs.
 */
import { join } from 'node:path';
import { defineConfig } from '../src/index.js';

const LLAMA_NPM = 'node-llama-cpp@3.22.1';

export default defineConfig({
  target: 'gfx1151',
  // this file lives in examples/: keep state and cache where the project's own config keeps them
  stateDir: join(import.meta.dirname, '..', '.rocmflow'),
  cacheDir: process.env.ROCMFLOW_CACHE_DIR ?? join(import.meta.dirname, '..', 'cache'),
  default: ['trim-runtime'],
  tasks: {
    'base-root': {
      source: process.env.ROCMFLOW_BASE_ROOT
        ? { dir: process.env.ROCMFLOW_BASE_ROOT }
        : { debootstrap: { suite: 'sid', mirror: 'http://deb.debian.org/debian', variant: 'minbase', packages: ['cmake', 'g++', 'git', 'ccache', 'ninja-build'] } },
    },
    // Debian's ROCm (hipcc 7.0 on clang 21, HIP 6.4, rocBLAS 6.4, hipBLAS): into the base root
    'fetch-rocm': { source: { kind: 'apt', packages: ['hipcc', 'libhipblas-dev', 'librocblas-dev'] } },
    'build-llama': {
      source: { npm: LLAMA_NPM },
      cmakeFlags: ['-DLLAMA_CURL=OFF', '-DLLAMA_OPENSSL=OFF'],
      // ROCMFLOW_BUILD_JOBS: parallel compile jobs (default: the machine's CPUs)
      ...(process.env.ROCMFLOW_BUILD_JOBS ? { jobs: Number(process.env.ROCMFLOW_BUILD_JOBS) } : {}),
    },
    model: { source: { tiny: {} }, vocab: { npm: LLAMA_NPM } },
  },
});
