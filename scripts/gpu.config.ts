/**
 * The pipeline on an NVIDIA machine (`--target cuda`), for
 * scripts/gpu-pipeline.sh. Works offline when the llama.cpp source and the
 * vocab file are given (ROCMFLOW_LLAMA_SOURCE: a checkout or a git bundle;
 * ROCMFLOW_VOCAB: a vocab-only GGUF), and from the npm registry otherwise.
 */
import { join } from 'node:path';
import { defineConfig } from '../src/index.js';

const LLAMA_NPM = 'node-llama-cpp@3.22.1';

export default async () => {
  const cacheDir = process.env.ROCMFLOW_CACHE_DIR ?? join(import.meta.dirname, '..', 'cache');
  const src = process.env.ROCMFLOW_LLAMA_SOURCE;
  const source = !src ? { npm: LLAMA_NPM } : src.endsWith('.bundle') ? { bundle: src } : { path: src };
  return defineConfig({
    target: 'cuda',
    // this file lives in scripts/: keep state and cache where the project's own config keeps them
    stateDir: join(import.meta.dirname, '..', '.rocmflow'),
    cacheDir,
    default: ['trim-runtime'],
    targets: {
      cuda: {
        // the compute capability nvidia-smi reported (the script passes it), so the build targets exactly this GPU
        ...(process.env.ROCMFLOW_CUDA_CC ? { computeCapability: process.env.ROCMFLOW_CUDA_CC } : {}),
        // ROCMFLOW_CUDA_PRUNE=1: prune cuBLAS, cuBLASLt and libggml-cuda to the GPU's own cubins (no PTX kept);
        // off by default: NVIDIA's licence governs shipping modified libraries
        ...(process.env.ROCMFLOW_CUDA_PRUNE === '1' ? { pruneFatBinaries: true, pruneFallback: false } : {}),
      },
    },
    tasks: {
      'build-llama': { source, cmakeFlags: ['-DLLAMA_CURL=OFF', '-DLLAMA_OPENSSL=OFF'] },
      model: process.env.ROCMFLOW_MODEL
        ? { source: process.env.ROCMFLOW_MODEL }
        : { source: { tiny: {} }, vocab: process.env.ROCMFLOW_VOCAB ?? { npm: LLAMA_NPM } },
    },
  });
};
