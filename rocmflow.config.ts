/**
 * rocmflow's own pipeline: fetch the GPU runtime, build llama.cpp, trace a
 * real inference on a small generated model, trim, verify and package.
 * `npx rocmflow run trim-runtime --target cpu` works offline with only the
 * npm registry: llama.cpp comes from the git bundle node-llama-cpp ships, and
 * the tiny model's tokenizer is the vocab file read from that same bundle.
 */
import { defineConfig } from './src/index.js';

const LLAMA_NPM = 'node-llama-cpp@3.22.1';

export default defineConfig({
  target: 'auto',
  default: ['package-image'],
  tasks: {
    'build-llama': {
      source: { npm: LLAMA_NPM },
      // no libcurl (model downloads) and no OpenSSL (HTTPS): the runtime serves local models over HTTP;
      // ggml's own thread pool instead of OpenMP (one library less); inline C++ functions not exported
      // from the shared libraries (smaller symbol tables); unused sections dropped at link time
      cmakeFlags: [
        '-DLLAMA_CURL=OFF',
        '-DLLAMA_OPENSSL=OFF',
        '-DGGML_OPENMP=OFF',
        '-DCMAKE_C_FLAGS=-ffunction-sections -fdata-sections',
        '-DCMAKE_CXX_FLAGS=-fvisibility-inlines-hidden -ffunction-sections -fdata-sections',
        '-DCMAKE_SHARED_LINKER_FLAGS=-Wl,--gc-sections -Wl,--as-needed',
        '-DCMAKE_EXE_LINKER_FLAGS=-Wl,--gc-sections -Wl,--as-needed',
      ],
    },
    model: {
      source: { tiny: {} },
      // the tokenizer, read from the same bundle when the task first needs it
      vocab: { npm: LLAMA_NPM },
    },
  },
});
