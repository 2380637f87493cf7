/**
 * What pruning does to a runtime's GPU part, measured the way trim-runtime
 * does it: the files of a ROCm tree that the target's rules keep when its
 * libraries were loaded (rocBLAS's kernel directory narrowed to the arch plus
 * the arch-neutral files, the libraries themselves) are copied into a fresh
 * root, the coverage check runs, then trim-runtime's pruning step
 * (pruneRootFatbins), and the three sizes are taken before and after:
 * apparent (st_size), allocated on disk (st_blocks × 512) and one zstd OCI
 * layer of the root written by rocmflow's layer writer.
 *
 *   node bin/run-ts.js scripts/fatbin-root-sizes.ts ROCM_TREE TARGET WORK_DIR
 *
 * ROCM_TREE is a directory holding a ROCm install (Debian's
 * usr/lib/x86_64-linux-gnu layout or TheRock's); TARGET an AMD target name
 * (gfx1100, gfx1151). WORK_DIR must not exist; it is removed at the end.
 */
import { copyFile, lstat, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { applyTargetRules } from '../src/gpu/target-rules.js';
import { amdTarget } from '../src/gpu/amd-target.js';
import { scanCoverage } from '../src/fatbin/scan-coverage.js';
import { judgeCoverage } from '../src/pipeline/coverage.js';
import { allocatedBytes, pruneRootFatbins } from '../src/runtime/prune-fatbins.js';
import { writeLayer } from '../src/image/layer.js';
import type { RootManifest } from '../src/runtime/assemble.js';

const [tree, target, work] = process.argv.slice(2);
if (!tree || !target || !work) {
  console.error('usage: scripts/fatbin-root-sizes.ts ROCM_TREE TARGET WORK_DIR');
  process.exit(2);
}
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

async function files(dir: string, rel = '/'): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(posix.join(dir, rel), { withFileTypes: true })) {
    const p = posix.join(rel, e.name);
    if (e.isDirectory()) out.push(...(await files(dir, p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

const def = amdTarget({ name: target, arch: target, family: target, description: target });
const all = await files(tree);
const libs = all.filter((p) => /\/lib[^/]*\.so(\.\d+)*$/.test(p));
// as if every library had been loaded by the traced workload
const plan = applyTargetRules(all, def, libs);
const keep = [...plan.kept, ...plan.untouched.filter((p) => libs.includes(p))];
const rootfs = posix.join(work, 'rootfs');
await mkdir(rootfs, { recursive: true });
const entries: RootManifest['entries'] = [];
for (const p of keep.sort()) {
  await mkdir(posix.dirname(posix.join(rootfs, p)), { recursive: true });
  await copyFile(posix.join(tree, p), posix.join(rootfs, p));
  const st = await lstat(posix.join(rootfs, p));
  entries.push({ path: p, type: 'file', size: st.size, sha256: createHash('sha256').update(readFileSync(posix.join(rootfs, p))).digest('hex'), mode: st.mode & 0o7777, reason: 'kept' as never });
}
let manifest: RootManifest = { entries, files: entries.length, bytes: entries.reduce((n, e) => n + e.size, 0) };
console.log(`${target}: ${all.length} files in the tree; kept by the rules: ${keep.length} (${plan.dropped.length} dropped)`);

const layerSize = async (name: string) => (await writeLayer({ from: rootfs, out: posix.join(work, `${name}.tar.zst`), mtime: 0 })).size;
const sizes = async (name: string) => ({ apparent: manifest.bytes, allocated: await allocatedBytes(rootfs, manifest), layer: await layerSize(name) });

const findings = await scanCoverage([{ dir: rootfs, as: '/' }], target);
for (const l of judgeCoverage(findings, target, { strict: false, where: 'in the kept files', task: 'measure', warn: () => {} })) console.log(l);

const t0 = performance.now();
const before = await sizes('before');
const t1 = performance.now();
const r = await pruneRootFatbins(rootfs, manifest, posix.join(work, 'manifest.json'), { target });
const pruneMs = performance.now() - t1;
manifest = r.manifest;
const after = await sizes('after');
for (const f of r.files) console.log(`${f.path}: ${f.skipped ?? `kept ${f.keep.join(',')}`}; apparent ${mb(f.apparent)}, on disk ${mb(f.allocatedBefore)} → ${mb(f.allocatedAfter)}`);
console.log(`before pruning: apparent ${mb(before.apparent)}, allocated ${mb(before.allocated)}, zstd layer ${mb(before.layer)} (sizes taken in ${((t1 - t0) / 1000).toFixed(1)} s)`);
console.log(`after pruning:  apparent ${mb(after.apparent)}, allocated ${mb(after.allocated)}, zstd layer ${mb(after.layer)} (pruning took ${(pruneMs / 1000).toFixed(1)} s)`);
console.log(`files by kind: kernel files ${mb(entries.filter((e) => !libs.includes(e.path)).reduce((n, e) => n + e.size, 0))} in ${entries.filter((e) => !libs.includes(e.path)).length} files`);
await stat(work);
await rm(work, { recursive: true, force: true });
