import type { Command } from '../command.js';

/** A command known by name and summary; its module loads only when it runs (fast start-up). */
export interface CommandEntry {
  name: string;
  summary: string;
  load(): Promise<Command>;
}

/** Every CLI command, in the order `rocmflow --help` lists them. */
export const COMMANDS: readonly CommandEntry[] = [
  { name: 'run', summary: 'run tasks and their dependencies, reusing fresh and cached results', load: async () => (await import('./run.js')).runCommand },
  { name: 'explain', summary: 'say why a task would rerun: the fingerprint fields that changed', load: async () => (await import('./explain.js')).explainCommand },
  { name: 'graph', summary: 'print the task graph (text, dot or mermaid)', load: async () => (await import('./graph.js')).graphCommand },
  { name: 'targets', summary: 'list GPU targets and whether each is detected here', load: async () => (await import('./targets.js')).targetsCommand },
  { name: 'doctor', summary: 'check host tools and GPUs; say what to install', load: async () => (await import('./doctor.js')).doctorCommand },
  { name: 'exec', summary: 'run the minimal image (llama-server) with a models directory mounted', load: async () => (await import('./exec.js')).execCommand },
  { name: 'push', summary: 'copy the base, full and minimal images to a registry (skopeo), skipping blobs it has', load: async () => (await import('./push.js')).pushCommand },
  { name: 'verify', summary: 'check full and minimal images on the GPU machine: texts, tokens/s, what the trim missed, numbers', load: async () => (await import('./verify.js')).verifyCommand },
  { name: 'rocm', summary: 'list ROCm builds (TheRock nightlies and releases) for a target', load: async () => (await import('./rocm.js')).rocmCommand },
  { name: 'model', summary: 'inspect GGUF models; write a tiny offline test model', load: async () => (await import('./model.js')).modelCommand },
  { name: 'fatbin', summary: 'list the GPU arches fat binaries carry code for; prune the others', load: async () => (await import('./fatbin.js')).fatbinCommand },
  { name: 'trace', summary: 'run a command under strace, or parse a trace into an access set', load: async () => (await import('./trace.js')).traceCommand },
  { name: 'trim', summary: 'trim a root to what a traced command needs, assemble and verify it', load: async () => (await import('./trim.js')).trimCommand },
  { name: 'snapshot', summary: 'create, inspect and restore deterministic tar.zst snapshots', load: async () => (await import('./snapshot.js')).snapshotCommand },
  { name: 'server', summary: 'keep a server that answers runs with nothing to do, without loading rocmflow each time', load: async () => (await import('./server.js')).serverCommand },
  { name: 'cache', summary: 'inspect and maintain the cache: ls, stats, verify, gc, push, pull', load: async () => (await import('./cache.js')).cacheCommand },
];
