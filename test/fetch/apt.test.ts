/**
 * The apt source against Debian sid for real: a small ROCm library package
 * is downloaded and unpacked without being installed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { aptCandidates, defaultAptSources, fetchApt } from '../../src/fetch/apt.js';
import { rocmVersion } from '../../src/fetch/version.js';

const sources = await defaultAptSources();
const mirror = sources[0]!.split(/\s+/).find((w) => /^https?:/.test(w))!;

async function reachable(): Promise<boolean> {
  try {
    const res = await fetch(`${mirror}/dists/sid/InRelease`, { method: 'HEAD', signal: AbortSignal.timeout(10_000) });
    return res.ok;
  } catch {
    return false;
  }
}
const online = await reachable();
const tmp = mkdtempSync(join(tmpdir(), 'rocmflow-apt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!online)(`apt source (Debian sid via ${mirror}; skipped when that mirror is unreachable)`, () => {
  const state = join(tmp, 'state');

  it('downloads and unpacks libhsa-runtime64-1 and libroctx64-4 without installing them', async () => {
    const dpkgStatus = readFileSync('/var/lib/dpkg/status');
    const hostLists = readdirSync('/var/lib/apt/lists').sort();
    const want = await aptCandidates({ packages: ['libhsa-runtime64-1', 'libroctx64-4'], stateDir: state });
    // what apt-cache itself says in the same private state, not a version written into the test
    const show = execFileSync('apt-cache', [
      '-o', `Dir::Etc::SourceList=${join(state, 'sources.list')}`, '-o', `Dir::Etc::SourceParts=${join(state, 'sources.list.d')}`,
      '-o', `Dir::State::Lists=${join(state, 'lists')}`, '-o', `Dir::State::Status=${join(state, 'status')}`, '-o', `Dir::Cache=${join(state, 'cache')}`,
      'policy', 'libhsa-runtime64-1',
    ], { encoding: 'utf8' });
    expect(show).toContain(`Candidate: ${want['libhsa-runtime64-1']}`);

    const prefix = join(tmp, 'prefix');
    const steps: string[] = [];
    const r = await fetchApt({ packages: ['libhsa-runtime64-1', 'libroctx64-4'], prefix, stateDir: state, downloadDir: join(tmp, 'debs'), onProgress: (d, t, l) => steps.push(`${d}/${t} ${l}`) });
    expect(r.packages.map((p) => [p.name, p.version])).toEqual([['libhsa-runtime64-1', want['libhsa-runtime64-1']], ['libroctx64-4', want['libroctx64-4']]]);
    expect(steps.at(-1)).toBe('2/2 libroctx64-4');
    for (const p of r.packages) {
      const deb = join(tmp, 'debs', p.file);
      expect(createHash('sha256').update(readFileSync(deb)).digest('hex')).toBe(p.sha256);
      expect(statSync(deb).size).toBeLessThan(5e6);
    }
    const libdir = join(prefix, 'usr/lib/x86_64-linux-gnu');
    const so = readdirSync(libdir).find((f) => /^libhsa-runtime64\.so\.1\.\d+/.test(f))!;
    expect(readFileSync(join(libdir, so)).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(existsSync(join(libdir, 'libroctx64.so.4'))).toBe(true);

    const v = await rocmVersion(prefix);
    expect(v!.buildId).toBe(`libhsa-runtime64-1=${want['libhsa-runtime64-1']}`);
    expect(want['libhsa-runtime64-1']!.startsWith(v!.version)).toBe(true);

    // the host's apt and dpkg state are untouched
    expect(readFileSync('/var/lib/dpkg/status').equals(dpkgStatus)).toBe(true);
    expect(readdirSync('/var/lib/apt/lists').sort()).toEqual(hostLists);
  }, 300_000);

  it('names a package the sources do not have', async () => {
    await expect(fetchApt({ packages: ['rocmflow-no-such-package'], prefix: join(tmp, 'p2'), stateDir: state })).rejects.toMatchObject({
      code: 'E_APT_PACKAGE', message: expect.stringContaining('"rocmflow-no-such-package"'),
    });
  }, 300_000);
});

describe('apt source: unreachable mirror', () => {
  it('is an error, not apt\'s warning', async () => {
    const err = await fetchApt({ packages: ['libroctx64-4'], prefix: join(tmp, 'p3'), sources: ['deb [trusted=yes] http://127.0.0.1:9/debian sid main'] }).catch((e) => e);
    expect(err.code).toBe('E_UNREACHABLE');
    expect(err.message).toContain('http://127.0.0.1:9/debian');
  }, 120_000);
});
