/**
 * stripRoot strips the host's ELF files and leaves GPU code objects alone:
 * a real gfx1100 code object from Debian's rocBLAS 6.4 (AMDGPU ELF, e_machine
 * 224; the gfx1100 trim failed on it when strip was run on every ELF file)
 * keeps its bytes and its symbols, which the HIP runtime looks kernels up by.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { stripRoot } from '../../src/runtime/strip-root.js';
import type { ManifestEntry, RootManifest } from '../../src/runtime/assemble.js';

const dir = mkdtempSync(join(tmpdir(), 'rocmflow-strip-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

it('strips a host executable and keeps an AMDGPU code object byte for byte', async () => {
  const root = join(dir, 'root');
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  mkdirSync(join(root, 'usr/lib/rocblas/library'), { recursive: true });
  // a host ELF (Debian's strace, which setup.sh installs)
  copyFileSync('/usr/bin/strace', join(root, 'usr/bin/tool'));
  const hsaco = join(root, 'usr/lib/rocblas/library/Kernels-gfx1100.hsaco');
  copyFileSync(join(import.meta.dirname, '../fixtures/amd-debian/Kernels-gfx1100.hsaco'), hsaco);
  expect(readFileSync(hsaco).readUInt16LE(18)).toBe(224);
  const entry = (path: string): ManifestEntry => {
    const p = join(root, path);
    return { path: `/${path}`, type: 'file', size: statSync(p).size, sha256: sha(p), mode: 0o755, reason: 'traced' };
  };
  const entries = [entry('usr/bin/tool'), entry('usr/lib/rocblas/library/Kernels-gfx1100.hsaco')];
  const manifest: RootManifest = { entries, files: 2, bytes: entries.reduce((n, e) => n + e.size, 0) };
  const before = sha(hsaco);
  const r = await stripRoot(root, manifest, join(dir, 'manifest.json'));
  expect(r.stripped).toBe(1);
  expect(sha(hsaco)).toBe(before);
  expect(r.manifest.entries[1]).toEqual(entries[1]);
  expect(r.manifest.entries[0]!.size).toBeLessThanOrEqual(entries[0]!.size);
  expect(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).entries[1].sha256).toBe(before);
});
