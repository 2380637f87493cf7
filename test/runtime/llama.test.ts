/**
 * The real thing on the CPU: llama.cpp's shared-library build mounted as a
 * layer at /opt/llama, a small generated GGUF mounted at /models, a fixed
 * seed and temperature 0; traced, trimmed, and run again in the trimmed
 * root with identical output.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyModel } from '../../src/gguf/tiny-model.js';
import type { RootLayout } from '../../src/runtime/layout.js';
import { layoutFiles, trimReport } from '../../src/runtime/report.js';
import { llamaCpuBuild, vocabFile } from '../helpers/llama.js';
import { cleanTemps, roundTrip, sh, temp } from './helpers.js';

let layout: RootLayout;
let models: string;

beforeAll(async () => {
  const build = await llamaCpuBuild();
  layout = { base: '/', layers: [{ mount: '/opt/llama', source: join(build, 'bin') }] };
  models = temp('rocmflow-models-');
  await writeTinyModel({ vocab: await vocabFile(), out: join(models, 'tiny.gguf') });
}, 900_000);

afterAll(cleanTemps);

describe('llama.cpp CPU build', () => {
  it('generates the same text in the trimmed root', async () => {
    const command = ['/opt/llama/llama-completion', '-m', '/models/tiny.gguf', '-p', 'Once upon a time', '-n', '12',
      '--seed', '1', '--temp', '0', '-t', '2', '-no-cnv', '--no-warmup'];
    const rt = await roundTrip(layout, command, {
      // the build tree's RUNPATH names the build directory on the host; the layer's copy must win
      env: { LD_LIBRARY_PATH: '/opt/llama' },
      binds: [{ source: models, dest: '/models' }],
    });
    expect(rt.verify.exitCodes).toEqual({ full: 0, trimmed: 0 });
    expect(rt.verify.fullStdout).toContain('Once upon a time');
    expect(rt.verify.fullStdout.length).toBeGreaterThan('Once upon a time'.length);
    expect(rt.verify.trimmedStdout).toBe(rt.verify.fullStdout);
    expect(rt.verify.ok).toBe(true);

    const paths = rt.closure.entries.map((e) => e.path);
    expect(paths).toContain('/opt/llama/llama-completion');
    expect(paths.some((p) => /^\/opt\/llama\/libllama\.so\.\d/.test(p))).toBe(true);
    expect(paths.some((p) => /\/libstdc\+\+\.so\.6/.test(p))).toBe(true);
    expect(paths.some((p) => p.startsWith('/models'))).toBe(false);
    expect(rt.closure.excluded.some((x) => x.path === '/models/tiny.gguf')).toBe(true);

    const usrLib = Number(sh('du', ['-sb', '/usr/lib']).split('\t')[0]);
    expect(rt.manifest.bytes).toBeLessThan(usrLib * 0.1);
    // the layer's unused programs and libraries stay behind
    const layer = layoutFiles({ base: layout.layers[0]!.source, layers: [] }).map((f) => ({ ...f, path: '/opt/llama' + f.path }));
    const row = trimReport({ full: layer, manifest: rt.manifest }).json.byTopDir.find((r) => r.key === '/opt/llama')!;
    expect(row.trimmed.files).toBeGreaterThan(0);
    expect(row.trimmed.bytes).toBeLessThan(row.full.bytes);
    expect(paths).not.toContain('/opt/llama/llama-server');
  });
});
