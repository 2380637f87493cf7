/**
 * Shared, real llama.cpp material for tests, built once per checkout under
 * .work/ (git-ignored) and reused by every test file and by CI:
 * - the llama.cpp source tree from the git bundle that the npm package
 *   node-llama-cpp ships (`llama/gitRelease.bundle`), fetched with `npm pack`;
 * - a CPU-only build (shared libraries, so trims see real DT_NEEDED chains).
 * A directory lock makes concurrent vitest workers wait for one builder.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, renameSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cpus } from 'node:os';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const WORK = process.env.ROCMFLOW_TEST_WORK ?? join(REPO_ROOT, '.work');
export const NODE_LLAMA_CPP = 'node-llama-cpp@3.22.1';

function sh(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

/** Run `fn` once across processes: the first caller builds `done`, the rest wait for it. */
export async function once(name: string, done: string, fn: () => void | Promise<void>): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const lock = join(WORK, `${name}.lock`);
  for (;;) {
    if (existsSync(done)) return;
    try {
      mkdirSync(lock);
    } catch {
      // a lock older than 30 minutes belongs to a killed run
      try {
        if (Date.now() - statSync(lock).mtimeMs > 30 * 60_000) rmSync(lock, { recursive: true, force: true });
      } catch {}
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    try {
      if (!existsSync(done)) await fn();
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
}

/** Path of node-llama-cpp's llama.cpp git bundle. */
export async function llamaBundle(): Promise<string> {
  const dir = join(WORK, 'node-llama-cpp');
  const bundle = join(dir, 'gitRelease.bundle');
  await once('node-llama-cpp', bundle, () => {
    const tmp = join(WORK, 'node-llama-cpp.tmp');
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    sh('npm', ['pack', NODE_LLAMA_CPP, '--silent', '--pack-destination', tmp]);
    const tgz = readdirSync(tmp).find((f) => f.endsWith('.tgz'))!;
    sh('tar', ['-xzf', join(tmp, tgz), '-C', tmp, 'package/llama/gitRelease.bundle', 'package/llama/llama.cpp.info.json']);
    mkdirSync(dir, { recursive: true });
    renameSync(join(tmp, 'package/llama/llama.cpp.info.json'), join(dir, 'llama.cpp.info.json'));
    renameSync(join(tmp, 'package/llama/gitRelease.bundle'), bundle);
    rmSync(tmp, { recursive: true, force: true });
  });
  return bundle;
}

/** A checkout of the bundle's llama.cpp tree (shared; do not modify it). */
export async function llamaSource(): Promise<string> {
  const src = join(WORK, 'llama.cpp');
  const bundle = await llamaBundle();
  await once('llama-src', join(src, 'CMakeLists.txt'), () => {
    rmSync(src, { recursive: true, force: true });
    sh('git', ['clone', '--quiet', bundle, src]);
  });
  return src;
}

/** The vocab-only GGUF files llama.cpp ships under models/. */
export async function vocabFile(name = 'ggml-vocab-llama-spm.gguf'): Promise<string> {
  return join(await llamaSource(), 'models', name);
}

/**
 * A CPU-only llama.cpp build with shared libraries. Returns the build dir;
 * binaries are in `<dir>/bin` (llama-server, llama-cli, llama-completion, llama-perplexity).
 */
export async function llamaCpuBuild(): Promise<string> {
  const src = await llamaSource();
  const build = join(WORK, 'llama-cpu-build');
  // the marker names the target set: a checkout with an older set builds the missing targets
  const marker = join(build, '.complete-perplexity');
  await once('llama-cpu-build', marker, () => {
    const jobs = String(Math.max(1, cpus().length));
    sh('cmake', ['-S', src, '-B', build, '-DCMAKE_BUILD_TYPE=Release', '-DBUILD_SHARED_LIBS=ON', '-DLLAMA_CURL=OFF',
      '-DLLAMA_BUILD_TESTS=OFF', '-DLLAMA_BUILD_EXAMPLES=OFF', '-DGGML_NATIVE=OFF']);
    sh('cmake', ['--build', build, '-j', jobs, '--target', 'llama-server', 'llama-cli', 'llama-completion', 'llama-perplexity']);
    execFileSync('touch', [marker]);
  });
  return build;
}
