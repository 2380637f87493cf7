/**
 * rocmflow's own pipeline: fetch the GPU runtime, build llama.cpp, trace a
 * real inference on a small generated model, trim, verify and package.
 * `npx rocmflow run trim-runtime --target cpu` works offline with only the
 * npm registry: llama.cpp comes from the git bundle node-llama-cpp ships, and
 * the tiny model's tokenizer is the vocab file read from that same bundle.
 */
import { join } from 'node:path';
import { defineConfig } from './src/index.js';
import { llamaVocab } from './src/llama/vocab.js';

const LLAMA_NPM = 'node-llama-cpp@3.22.1';

export default async () => {
  // the same cache the run uses (ROCMFLOW_CACHE_DIR, else ./cache); the
  // model task hashes the file, so where it lives does not matter to caching
  const cacheDir = process.env.ROCMFLOW_CACHE_DIR ?? join(import.meta.dirname, 'cache');
  return defineConfig({
    target: 'auto',
    default: ['package-image'],
    tasks: {
      'build-llama': {
        source: { npm: LLAMA_NPM },
        // no libcurl (model downloads) and no OpenSSL (HTTPS): the runtime serves local models over HTTP
        cmakeFlags: ['-DLLAMA_CURL=OFF', '-DLLAMA_OPENSSL=OFF'],
      },
      model: {
        source: { tiny: {} },
        vocab: await llamaVocab({ npm: LLAMA_NPM, cacheDir }),
      },
    },
  });
};
