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
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import gfx1100 from '../../plugins/gfx1100.js';
import gfx1151 from '../../plugins/gfx1151.js';
import { applyTargetRules } from '../../src/gpu/target-rules.js';
import { KNOWN_AMD_ARCHES } from '../../src/gpu/amd-target.js';
import type { AccessSet } from '../../src/trace/access-set.js';
import { parseTraceFiles } from '../../src/trace/parse.js';

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
const accessOf = (target: string): AccessSet => JSON.parse(gunzipSync(readFileSync(join(DIR, `${target}-access.json.gz`))).toString('utf8'));
const access = accessOf('gfx1151');
/** What the traced run loaded (the rules' ifLoaded). */
const loaded = access.files.flatMap((f) => [f.path, f.resolved].filter((p): p is string => !!p));

const mb = (n: number) => Math.round(n / 1e5) / 10;
const arch = (p: string) => /gfx\d+[a-z0-9]*/.exec(p.slice(p.lastIndexOf('/')))?.[0] ?? null;

describe("the real run's trace", () => {
  for (const target of ['gfx1151', 'gfx1100']) {
    it(`${target}: the committed strace logs parse to the committed access set, with the ROCm libraries the CPU fallback loads`, async () => {
      const tmp = mkdtempSync(join(tmpdir(), 'rocmflow-amd-trace-'));
      try {
        const logs = readdirSync(join(DIR, `${target}-trace`)).sort().map((n) => {
          const out = join(tmp, n.replace(/\.zst$/, ''));
          writeFileSync(out, execFileSync('zstd', ['-dcq', join(DIR, `${target}-trace`, n)]));
          return out;
        });
        expect(logs.map((l) => l.slice(tmp.length + 1))).toEqual(['cli.log', 'perplexity.log', 'server.log']);
        const parsed = await parseTraceFiles(logs, { cwd: '/' });
        const committed = accessOf(target);
        expect(parsed.access.files.map((f) => f.path).sort()).toEqual(committed.files.map((f) => f.path).sort());
        expect([...parsed.access.executables].sort()).toEqual([...committed.executables].sort());
        const paths = committed.files.map((f) => f.path);
        // HIP and the BLAS libraries are loaded (and with them what they need), though no device answered
        for (const lib of ['libamdhip64.so.6', 'libhipblas.so.2', 'librocblas.so.4', 'libhsa-runtime64.so.1', 'libdrm_amdgpu.so.1'])
          expect(paths).toContain(`/usr/lib/x86_64-linux-gnu/${lib}`);
        expect(paths).toContain('/opt/llama/bin/libggml-hip.so.0');
        // without a device nothing device-only is opened: no kernel file, no comgr
        expect(paths.filter((p) => p.includes('/rocblas/') || p.includes('comgr'))).toEqual([]);
        expect(committed.devices).toEqual([]);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  }
});

describe("the real run's root and trace", () => {
  it("the root is Debian's ROCm: 1,349 rocBLAS kernel files for ten arches, none for gfx1151", () => {
    const kernels = files.filter((p) => p.startsWith(KDIR));
    expect(kernels).toHaveLength(1349);
    const arches = new Set(kernels.map(arch).filter(Boolean));
    expect([...arches].sort()).toEqual(['gfx1010', 'gfx1030', 'gfx1100', 'gfx1101', 'gfx1102', 'gfx803', 'gfx900', 'gfx906', 'gfx908', 'gfx90a']);
    expect(kernels.filter((p) => !arch(p))).toHaveLength(50);
  });

  it('gfx1100: the 92 gfx1100 kernel files (305 MB) and the 50 arch-neutral .dat files (1.3 MB); no other arch', () => {
    const plan = applyTargetRules(files, gfx1100, loaded);
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
    const plan = applyTargetRules(files, gfx1151, loaded);
    const kernels = plan.kept.filter((p) => p.startsWith(KDIR));
    expect(kernels).toHaveLength(50);
    expect(kernels.every((p) => !arch(p))).toBe(true);
    expect(plan.kept.some((p) => /\/libamd_comgr\.so\.3/.test(p))).toBe(true);
  });
});
