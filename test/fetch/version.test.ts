import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rocmVersion } from '../../src/fetch/version.js';

const tmp = mkdtempSync(join(tmpdir(), 'rocmflow-version-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function prefix(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmp, 'p-'));
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
  return root;
}

describe('rocmVersion', () => {
  it('reads TheRock manifests: version from one file, commit from the other, not from submodules', async () => {
    const p = prefix({
      'share/therock/therock_manifest.json': JSON.stringify({ schema_version: 'TheRock-Manifest.v1', submodules: [{ path: 'x', commit: 'sub' }], TheRock: { commit: '0123abcd' } }),
      'share/therock/dist_info.json': JSON.stringify({ dist_amdgpu_targets: 'gfx1151', rocm_version: '7.13.0a20260430' }),
    });
    expect(await rocmVersion(p)).toEqual({ version: '7.13.0a20260430', buildId: '0123abcd', source: 'share/therock/dist_info.json' });
    const q = prefix({
      'share/therock/therock_manifest.json': JSON.stringify({ submodules: [{ path: 'x', commit: 'sub' }], TheRock: { commit: '0123abcd' } }),
      'share/therock/dist_info.json': JSON.stringify({ 'rocm-version': '7.12.0rc2' }),
    });
    expect(await rocmVersion(q)).toEqual({ version: '7.12.0rc2', buildId: '0123abcd', source: 'share/therock/dist_info.json' });
  });

  it('reads .info/version of a classic install, and says null when nothing tells', async () => {
    expect(await rocmVersion(prefix({ '.info/version': '7.1.1-38\n' }))).toEqual({ version: '7.1.1', buildId: '7.1.1-38', source: '.info/version' });
    expect(await rocmVersion(prefix({ 'lib/x': '' }))).toBeNull();
    expect(await rocmVersion(prefix({ 'share/therock/dist_info.json': '{not json' }))).toBeNull();
  });

  it('reads the apt record, preferring the HIP/HSA runtime and dropping epoch and Debian revision', async () => {
    const p = prefix({
      '.rocmflow/apt-packages.json': JSON.stringify({ sources: [], packages: [
        { name: 'libroctx64-4', version: '6.4.1-1' }, { name: 'libhsa-runtime64-1', version: '1:6.4.3+dfsg-5' },
      ] }),
    });
    expect(await rocmVersion(p)).toEqual({ version: '6.4.3', buildId: 'libhsa-runtime64-1=1:6.4.3+dfsg-5', source: '.rocmflow/apt-packages.json' });
  });
});
