/**
 * rocmflow's own pipeline: fetch the GPU runtime, build llama.cpp, trace a
 * real inference on a small generated model, trim, verify and package. The
 * built-in tasks' defaults are this pipeline (docs/tasks.md): llama.cpp and
 * the tiny model's tokenizer come from the git bundle node-llama-cpp ships,
 * so `npx rocmflow run trim-runtime --target cpu` works with only the npm
 * registry reachable, and an empty config does the same.
 */
import { defineConfig } from './src/index.js';

export default defineConfig({
  target: 'auto',
  default: ['package-image'],
});
