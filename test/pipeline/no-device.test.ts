/**
 * `--no-device`: a GPU target on a machine without its GPU goes on (the
 * detection is recorded as it is, with `noDevice`), and the flag is part of
 * the key; without it the missing-GPU error stays first and names the flag.
 * (The whole pipeline without the device is scripts/amd-debian.sh; its
 * committed root listing is checked in test/gpu/amd-debian-fixture.test.ts.)
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rocmflow } from '../helpers/cli.js';

const temps: string[] = [];
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

function workspace(): string {
  const ws = mkdtempSync(join(tmpdir(), 'rocmflow-ws-nodev-'));
  temps.push(ws);
  writeFileSync(join(ws, 'rocmflow.config.ts'), `export default ${JSON.stringify({ target: 'gfx1151', stateDir: join(ws, 'state'), cacheDir: join(ws, 'cache') })};\n`);
  return ws;
}

describe('--no-device', () => {
  it('records the detection and noDevice instead of failing; the flag changes the key', () => {
    if (existsSync('/dev/kfd')) return; // with an AMD GPU the detection would differ
    const ws = workspace();
    const without = rocmflow(ws, ['run', 'detect-target', '--json']);
    expect(without.code).toBe(1);
    expect(without.events.find((e) => e.type === 'task' && e.task === 'detect-target')?.error).toMatch(/or --no-device to build, trace \(CPU fallback\), trim and package for gfx1151 without it$/);

    const r = rocmflow(ws, ['run', 'detect-target', '--no-device', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const device = JSON.parse(readFileSync(join(ws, 'state/out/gfx1151/detect-target/device.json'), 'utf8'));
    expect(device.noDevice).toBe(true);
    expect(device.detection.found).toBe(false);
    expect(r.events.find((e) => e.type === 'summary' || e.type === 'task' && e.summary)).toBeTruthy();
    expect(JSON.stringify(r.events)).toMatch(/not run on a gfx1151/);
    // same flag: fresh; explain without the flag: the detection task would fail, so it reruns
    expect(rocmflow(ws, ['run', 'detect-target', '--no-device', '--json']).events.find((e) => e.type === 'task' && e.task === 'detect-target')?.state).toBe('fresh');
    const ex = rocmflow(ws, ['explain', 'detect-target', '--no-device', '--json']);
    expect(JSON.parse(ex.stdout).state).toBe('fresh');
  });
});
