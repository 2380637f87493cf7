/**
 * The real AMD run on Debian's ROCm (scripts/amd-debian.sh, results in
 * docs/results/gfx1151-debian-rocm.md), replayed cheaply: the committed
 * listing of the Debian sid root the run used (every path with its size)
 * and the access set of the real trace (llama-server and llama-completion
 * built with HIP for gfx1151, run on the CPU fallback with --no-device).
 * The gfx1100 and gfx1151 rules, applied to them as the pipeline applies
 * them, must meet the bars: rocBLAS's 1,349 kernel files narrowed
 * to the 92 gfx1100 ones (305 MB) plus the 50 arch-neutral fallback .dat
 * files (1.3 MB), no other arch's file, comgr and the bitcode kept; and for
 * gfx1151, which Debian's rocBLAS does not cover, no kernel file but the
 * fallback ones.
 */
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import gfx1100 from '../../plugins/gfx1100.js';
import gfx1151 from '../../plugins/gfx1151.js';
import { applyTargetRules } from '../../src/gpu/target-rules.js';
import { KNOWN_AMD_ARCHES } from '../../src/gpu/amd-target.js';
import type { AccessSet } from '../../src/trace/access-set.js';

const DIR = join(import.meta.dirname, '../fixtures/amd-debian');
const KDIR = '/usr/lib/x86_64-linux-gnu/rocblas/4.4.1/library/';

const listing = gunzipSync(readFileSync(join(DIR, 'root-files.tsv.gz')))
  .toString('utf8').split('\n').filter(Boolean)
  .map((l) => {
    const [path, size, type] = l.split('\t');
    return { path: path!, size: Number(size), type: type! };
  });
const sizes = new Map(listing.map((f) => [f.path, f.size]));
const files = listing.filter((f) => f.type === 'f').map((f) => f.path);
const accessFile = join(DIR, 'gfx1151-access.json.gz');
const access: AccessSet | null = existsSync(accessFile) ? JSON.parse(gunzipSync(readFileSync(accessFile)).toString('utf8')) : null;
/** What the traced run loaded (the rules' ifLoaded), or the libraries the CPU-fallback path is known to load. */
const loaded = access ? access.files.flatMap((f) => [f.path, f.resolved].filter((p): p is string => !!p)) : [];

const mb = (n: number) => Math.round(n / 1e5) / 10;
const arch = (p: string) => /gfx\d+[a-z0-9]*/.exec(p.slice(p.lastIndexOf('/')))?.[0] ?? null;

describe("the real run's root and trace", () => {
  it("the root is Debian's ROCm: 1,349 rocBLAS kernel files for ten arches, none for gfx1151", () => {
    const kernels = files.filter((p) => p.startsWith(KDIR));
    expect(kernels).toHaveLength(1349);
    const arches = new Set(kernels.map(arch).filter(Boolean));
    expect([...arches].sort()).toEqual(['gfx1010', 'gfx1030', 'gfx1100', 'gfx1101', 'gfx1102', 'gfx803', 'gfx900', 'gfx906', 'gfx908', 'gfx90a']);
    expect(kernels.filter((p) => !arch(p))).toHaveLength(50);
  });

  it('gfx1100: the 92 gfx1100 kernel files (305 MB) and the 50 arch-neutral .dat files (1.3 MB); no other arch', () => {
    const plan = applyTargetRules(files, gfx1100, loaded.length ? loaded : ['/usr/lib/x86_64-linux-gnu/librocblas.so.4', '/usr/lib/x86_64-linux-gnu/libamdhip64.so.6']);
    const kernels = plan.kept.filter((p) => p.startsWith(KDIR));
    const own = kernels.filter((p) => arch(p) === 'gfx1100');
    const neutral = kernels.filter((p) => !arch(p));
    expect(own).toHaveLength(92);
    expect(neutral).toHaveLength(50);
    expect(kernels).toHaveLength(142);
    expect(neutral.every((p) => p.endsWith('.dat'))).toBe(true);
    expect(mb(own.reduce((n, p) => n + sizes.get(p)!, 0))).toBeCloseTo(305, -1);
    expect(mb(neutral.reduce((n, p) => n + sizes.get(p)!, 0))).toBeCloseTo(1.3, 0);
    // every other arch's file is dropped, wherever it is
    const others: string[] = KNOWN_AMD_ARCHES.filter((a) => a !== 'gfx1100');
    expect(plan.kept.filter((p) => others.includes(arch(p) ?? ''))).toEqual([]);
    expect(plan.dropped.filter((p) => p.startsWith(KDIR))).toHaveLength(1349 - 142);
    // what only a device loads
    expect(plan.kept.some((p) => /\/libamd_comgr\.so\.3/.test(p))).toBe(true);
    expect(plan.kept.filter((p) => p.startsWith('/usr/lib/llvm-21/lib/clang/21/amdgcn/bitcode/')).length).toBeGreaterThan(10);
    expect(plan.kept).toContain('/usr/share/libdrm/amdgpu.ids');
  });

  it('gfx1151: no kernel file but the 50 arch-neutral ones: the coverage gap is visible in what is kept', () => {
    const plan = applyTargetRules(files, gfx1151, loaded.length ? loaded : ['/usr/lib/x86_64-linux-gnu/librocblas.so.4', '/usr/lib/x86_64-linux-gnu/libamdhip64.so.6']);
    const kernels = plan.kept.filter((p) => p.startsWith(KDIR));
    expect(kernels).toHaveLength(50);
    expect(kernels.every((p) => !arch(p))).toBe(true);
    expect(plan.kept.some((p) => /\/libamd_comgr\.so\.3/.test(p))).toBe(true);
  });
});
