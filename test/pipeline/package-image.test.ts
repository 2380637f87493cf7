/**
 * package-image on the shared CPU pipeline's images, in a workspace of its
 * own (trim-runtime comes from the shared cache): the full image, an OCI
 * layout, is exported as one compressed oci-archive that skopeo reads as the
 * same image, and so is the minimal one.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { which } from '../../src/util/which.js';
import { REPO, rocmflowAsync, states } from '../helpers/cli.js';
import { cpuPipeline, SHARED_CACHE } from '../helpers/cpu-pipeline.js';

const tmp = mkdtempSync(join(tmpdir(), 'rocmflow-package-'));

describe.skipIf(!which('skopeo'))('package-image', () => {
  let ws: string;
  let report: { images: Record<'full' | 'minimal', { digest: string }> };
  let run: Awaited<ReturnType<typeof rocmflowAsync>['done']>;

  beforeAll(async () => {
    await cpuPipeline();
    ws = join(tmp, 'ws');
    mkdirSync(ws);
    // gzip only: the test is about what is exported, not zstd -19's time
    writeFileSync(join(ws, 'rocmflow.config.ts'), `import project from ${JSON.stringify(join(REPO, 'rocmflow.config.ts'))};
export default { ...project, stateDir: 'state', tasks: { 'package-image': { formats: ['gzip'] } } };
`);
    run = await rocmflowAsync(ws, ['run', 'package-image', '--target', 'cpu', '--json'], { ROCMFLOW_CACHE_DIR: SHARED_CACHE }).done;
    report = JSON.parse(readFileSync(join(ws, 'state/out/cpu/trim-runtime/report.json'), 'utf8'));
  }, 3_600_000);

  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('exports the full layout and the minimal archive as compressed oci-archives of the same images', () => {
    expect(run.code, run.stderr).toBe(0);
    expect(['ran', 'cached']).toContain(states(run)['package-image']);
    const exports = join(ws, 'state/out/cpu/package-image/exports');
    for (const name of ['full', 'minimal'] as const) {
      const gz = join(exports, `${name}.oci.tar.gz`);
      expect(statSync(gz).size).toBeGreaterThan(0);
      const tar = join(tmp, `${name}.oci.tar`);
      execFileSync('sh', ['-c', `gzip -dc "${gz}" > "${tar}"`]);
      const raw = execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${tar}`]);
      expect(JSON.parse(raw.toString()).layers.length).toBeGreaterThan(0);
      // the manifest's bytes are the ones trim-runtime wrote
      expect(`sha256:${createHash('sha256').update(raw).digest('hex')}`).toBe(report.images[name].digest);
    }
    expect(readFileSync(join(ws, 'state/out/cpu/package-image/size-report.md'), 'utf8')).toMatch(/Full vs minimal/);
  });
});
