/**
 * The strace logs of a real llama.cpp CUDA inference on an NVIDIA H200
 * (llama-server with 4 requests, then llama-completion, -ngl 999, inside the
 * bwrap sandbox of `rocmflow run trim-runtime --target cuda`), committed
 * with the access set rocmflow derived from them on that machine. See
 * test/fixtures/cuda-h200/README.md for how they were made.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTraceFiles } from '../../src/trace/parse.js';
import cuda from '../../plugins/cuda.js';
import { matchAny } from '../../src/util/glob.js';
import type { AccessSet } from '../../src/trace/access-set.js';

const DIR = resolve(import.meta.dirname, '../fixtures/cuda-h200');
const expected = JSON.parse(readFileSync(join(DIR, 'access.json'), 'utf8')) as AccessSet;

async function parsed() {
  const tmp = mkdtempSync(join(tmpdir(), 'rocmflow-cuda-fixture-'));
  const logs = ['server.log', 'cli.log'].map((name) => {
    const out = join(tmp, name);
    writeFileSync(out, execFileSync('zstd', ['-dc', join(DIR, `${name}.zst`)]));
    return out;
  });
  return parseTraceFiles(logs, { cwd: '/' });
}

describe('the H200 CUDA trace', () => {
  it('parses to exactly the access set recorded on the GPU machine', async () => {
    const t = await parsed();
    expect(t.access).toEqual(expected);
  });

  it('shows the CUDA runtime, cuBLAS and the driver loaded, and the NVIDIA device nodes', () => {
    const files = expected.files.map((f) => f.path);
    expect(expected.executables).toEqual(['/opt/llama/bin/llama-completion', '/opt/llama/bin/llama-server']);
    expect(expected.devices).toEqual(['/dev/nvidia-uvm', '/dev/nvidia0', '/dev/nvidiactl']);
    for (const lib of ['libcudart.so.13', 'libcublas.so.13', 'libcublasLt.so.13', 'libcuda.so.1', 'libggml-cuda.so.0'])
      expect(files.some((f) => f.endsWith(`/${lib}`)), lib).toBe(true);
    // failed lookups are kept apart, never shipped
    for (const m of expected.missing) expect(files).not.toContain(m);
  });

  it("the cuda target's rules keep the toolkit's libraries and leave the driver's to the host", () => {
    const files = expected.files.map((f) => f.resolved);
    const host = files.filter((f) => matchAny(f, cuda.hostProvided));
    expect(host.length).toBeGreaterThan(0);
    expect(host.every((f) => /\/lib(cuda|nvidia-)/.test(f))).toBe(true);
    const toolkit = files.filter((f) => /libcu(blas|blasLt|dart)\.so/.test(f));
    expect(toolkit.length).toBeGreaterThanOrEqual(3);
    for (const f of toolkit) {
      expect(matchAny(f, cuda.hostProvided)).toBe(false);
      expect(matchAny(f, cuda.drop)).toBe(false);
    }
  });
});
