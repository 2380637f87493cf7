/**
 * `rocmflow verify` reads images built elsewhere: what their labels ask of
 * this machine (device nodes to pass in, host files to bind) is taken only
 * where the target's own definition allows it. Images written here by the
 * real image writer, with hostile labels, are refused before anything runs.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { writeOciImage } from '../../src/image/oci.js';
import { verifyImages } from '../../src/pipeline/verify-image.js';
import { WORKLOAD_LABEL, type ImageWorkload } from '../../src/pipeline/images.js';
import { loadRegistry } from '../../src/plugin/load.js';
import { targetByName } from '../../src/plugin/select-target.js';
import { DEFAULT_WORKLOAD } from '../../src/llama/workload.js';

const dir = mkdtempSync(join(tmpdir(), 'rocmflow-verify-labels-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const model = join(dir, 'model.gguf');

const workload = (over: Partial<ImageWorkload> = {}): ImageWorkload => ({
  target: 'cuda', spec: DEFAULT_WORKLOAD, cli: 'llama-completion', texts: {}, gpu: true, noDevice: false,
  model: { sha256: '0'.repeat(64), size: 0 }, hostProvided: [], numerics: null, ...over,
});

async function image(name: string, labels: Record<string, string>): Promise<string> {
  const root = join(dir, `${name}-root`);
  mkdirSync(join(root, 'opt/llama/bin'), { recursive: true });
  writeFileSync(join(root, 'opt/llama/bin/llama-server'), '#!/bin/sh\nexit 1\n');
  const archive = join(dir, `${name}.oci.tar`);
  await writeOciImage({ layers: [{ from: root }], config: { labels: { 'org.rocmflow.target': 'cuda', ...labels } }, ociArchive: archive });
  return archive;
}

const rules = async (name: string) => {
  const registry = await loadRegistry({ plugins: [], configDir: dir });
  if (!registry.targets.has(name)) return null;
  const def = targetByName(registry, name);
  return { devices: def.devices, hostProvided: def.hostProvided ?? [] };
};

beforeAll(() => writeFileSync(model, 'GGUF'));

it('refuses a label naming a device node the target does not use', async () => {
  const img = await image('disk', { 'org.rocmflow.devices': '/dev/nvidia0,/dev/sda', [WORKLOAD_LABEL]: JSON.stringify(workload()) });
  await expect(verifyImages({ full: img, minimal: img, model, workDir: join(dir, 'w1'), targetRules: rules }))
    .rejects.toThrow(/label org\.rocmflow\.devices names \/dev\/sda, which is not a device node of target cuda \(.*\/dev\/nvidiactl.*\): refused/);
});

it('refuses host files the target\'s host-provided rules do not cover, or outside a library directory', async () => {
  for (const [i, p] of ['/etc/shadow', '/root/libcuda.so.1'].entries()) {
    const img = await image(`host-${i}`, { 'org.rocmflow.devices': '/dev/nvidia[0-9]*', [WORKLOAD_LABEL]: JSON.stringify(workload({ hostProvided: [p] })) });
    await expect(verifyImages({ full: img, minimal: img, model, workDir: join(dir, `w2-${i}`), noDevice: true, targetRules: rules }))
      .rejects.toThrow(new RegExp(`names ${p.replace(/\./g, '\\.')} as provided by the host, which target cuda's host-provided rules \\(libcuda\\.so\\*.*\\) do not cover: refused`));
  }
});
