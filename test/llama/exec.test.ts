import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import cpu from '../../plugins/cpu.js';
import { buildLlama, buildLlamaOptionsSchema } from '../../src/llama/build.js';
import { execStreaming } from '../../src/llama/exec.js';
import type { ResolvedTarget } from '../../src/plugin/types.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), `rocmflow-${p}-`));
/** Running (not gone, not a zombie waiting for this sandbox's init to reap it). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('execStreaming', () => {
  it('kills the whole process group on abort', async () => {
    const dir = tmp('exec');
    const ac = new AbortController();
    const p = execStreaming('sh', ['-c', `sleep 60 & echo $! > ${dir}/child; wait`], { signal: ac.signal, what: 'sleeper' });
    while (!existsSync(join(dir, 'child')) || !readFileSync(join(dir, 'child'), 'utf8').trim()) await new Promise((r) => setTimeout(r, 20));
    const child = Number(readFileSync(join(dir, 'child'), 'utf8'));
    expect(alive(child)).toBe(true);
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'E_CANCELLED', message: 'sleeper: cancelled' });
    for (let i = 0; i < 50 && alive(child); i++) await new Promise((r) => setTimeout(r, 20));
    expect(alive(child)).toBe(false);
  });

  it('a failure carries the exit code and the last output lines', async () => {
    const lines: string[] = [];
    await expect(execStreaming('sh', ['-c', 'echo one; echo two >&2; exit 3'], { what: 'step', hint: 'see build.log', onLine: (l) => lines.push(l) })).rejects.toMatchObject({
      code: 'E_BUILD', message: 'step failed (exit code 3): see build.log', details: expect.arrayContaining(['one', 'two']),
    });
    expect(lines.sort()).toEqual(['one', 'two']);
  });
});

/** A tiny CMake project shaped like llama.cpp's output: an executable and its shared library in build/bin. */
function tinyProject(broken = false): string {
  const dir = tmp('tiny');
  writeFileSync(join(dir, 'CMakeLists.txt'), [
    'cmake_minimum_required(VERSION 3.16)',
    'project(tiny C)',
    'set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)',
    'set(CMAKE_LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)',
    'add_library(tiny SHARED lib.c)',
    'set_target_properties(tiny PROPERTIES VERSION 1.2.3 SOVERSION 1)',
    'add_executable(llama-completion main.c)',
    'target_link_libraries(llama-completion tiny)',
  ].join('\n') + '\n');
  writeFileSync(join(dir, 'lib.c'), 'int tiny(void) { return 42; }\n');
  writeFileSync(join(dir, 'main.c'), broken ? 'int main(void) { return nope; }\n' : '#include <stdio.h>\nint tiny(void);\nint main(void) { printf("%d\\n", tiny()); return 0; }\n');
  return dir;
}

const cpuTarget: ResolvedTarget = { name: 'cpu', definition: cpu, detection: null, options: {} };
const dirs = () => {
  const base = tmp('tinybuild');
  for (const d of ['out', 'work', 'cache']) mkdirSync(join(base, d));
  return { outDir: join(base, 'out'), workDir: join(base, 'work'), cacheDir: join(base, 'cache') };
};

describe('buildLlama on a small local tree', () => {
  it('builds, installs a relocatable bin/ with the soname links, and records a non-git tree', async () => {
    const src = tinyProject();
    const d = dirs();
    const options = buildLlamaOptionsSchema.parse({ source: { path: src }, targets: ['llama-completion', 'tiny'] }, 'tasks.build-llama');
    const info = await buildLlama({ target: cpuTarget, options, ...d });
    expect(info.commit).toBeNull();
    expect(info.describe).toBe('local tree');
    expect(info.installed.executables).toEqual(['bin/llama-completion']);
    expect(info.installed.libraries).toEqual(['bin/libtiny.so', 'bin/libtiny.so.1', 'bin/libtiny.so.1.2.3']);
    expect(info.installed.absoluteRunpaths).toEqual([]);
    expect(execFileSync(join(d.outDir, 'llama/bin/llama-completion'), { encoding: 'utf8', env: {} })).toBe('42\n');
  });

  it('a compile error fails with the compiler output and points at the log', async () => {
    const d = dirs();
    const options = buildLlamaOptionsSchema.parse({ source: { path: tinyProject(true) }, targets: ['llama-completion'] }, 'tasks.build-llama');
    const err = await buildLlama({ target: cpuTarget, options, ...d }).catch((e) => e);
    expect(err).toMatchObject({ code: 'E_BUILD', message: `llama.cpp build failed (exit code 1): see ${join(d.outDir, 'build.log')}` });
    expect(err.details.join('\n')).toMatch(/nope/);
    expect(readFileSync(join(d.outDir, 'build.log'), 'utf8')).toMatch(/error: .nope. undeclared/);
  });
});
