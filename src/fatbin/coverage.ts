/**
 * Does a library's device code run on a target GPU? An AMD code object runs
 * on its own processor, or on every processor of its line when it is a
 * generic ISA (gfx11-generic). A CUDA cubin runs on its compute capability
 * and on later minors of the same major (sm_80 on sm_86); `a` cubins only on
 * their own; PTX is compiled by the driver for any later capability.
 */
import { GENERIC_ISAS } from '../gpu/amd-arches.js';
import type { CoverageFinding } from './scan-coverage.js';

/** How the best of the found arches covers a target. */
export type CoverageKind = 'exact' | 'compatible' | 'generic' | 'ptx';

export interface Coverage {
  target: string;
  covered: boolean;
  /** The found arches that would run on the target, best first. */
  by: string[];
  /** How the first of `by` covers it; null when nothing does. */
  how: CoverageKind | null;
}

const RANK: Record<CoverageKind, number> = { exact: 0, compatible: 1, generic: 2, ptx: 3 };

/** A CUDA arch name: `sm_90`, `sm_90a`, `sm_100f`, `compute_90`; a target may also be written `9.0`. */
function parseCuda(name: string): { ptx: boolean; cc: number; major: number; minor: number; variant: '' | 'a' | 'f' } | null {
  const dotted = /^(\d+)\.(\d)$/.exec(name);
  if (dotted) {
    const cc = Number(dotted[1]) * 10 + Number(dotted[2]);
    return { ptx: false, cc, major: Math.floor(cc / 10), minor: cc % 10, variant: '' };
  }
  const m = /^(sm|compute)_(\d{2,3})([af]?)$/.exec(name);
  if (!m) return null;
  const cc = Number(m[2]);
  return { ptx: m[1] === 'compute', cc, major: Math.floor(cc / 10), minor: cc % 10, variant: m[3] as '' | 'a' | 'f' };
}

/** AMD target id → processor and features (`gfx90a:xnack+` → gfx90a, {xnack: '+'}). */
function parseAmd(id: string): { processor: string; features: Map<string, string> } {
  const [processor, ...feats] = id.split(':');
  return { processor: processor!, features: new Map(feats.map((f) => [f.slice(0, -1), f.slice(-1)])) };
}

/** How `arch` (found in a file) covers `target`, or null. */
export function coverageOf(arch: string, target: string): CoverageKind | null {
  const t = parseCuda(target);
  if (t) {
    const a = parseCuda(arch);
    if (!a) return null;
    if (a.ptx) {
      if (a.variant === 'a') return a.cc === t.cc ? 'ptx' : null;
      if (a.variant === 'f') return a.major === t.major && t.minor >= a.minor ? 'ptx' : null;
      return t.cc >= a.cc ? 'ptx' : null;
    }
    if (a.cc === t.cc) return 'exact';
    if (a.variant !== 'a' && a.major === t.major && t.minor > a.minor) return 'compatible';
    return null;
  }
  if (arch === 'host') return null;
  const a = parseAmd(arch);
  const tt = parseAmd(target);
  if (a.processor === tt.processor) {
    // a feature both name must agree (xnack+ code does not run with xnack off); one left unnamed means "any"
    for (const [k, v] of a.features) if (tt.features.has(k) && tt.features.get(k) !== v) return null;
    return 'exact';
  }
  const line = GENERIC_ISAS[a.processor];
  return line && line.test(tt.processor) ? 'generic' : null;
}

/** Which of `found` run on `target`, best first. */
export function covers(found: Iterable<string>, target: string): Coverage {
  const by = [...new Set(found)]
    .map((arch) => ({ arch, how: coverageOf(arch, target) }))
    .filter((x): x is { arch: string; how: CoverageKind } => x.how !== null)
    .sort((x, y) => RANK[x.how] - RANK[y.how] || (parseCuda(y.arch)?.cc ?? 0) - (parseCuda(x.arch)?.cc ?? 0));
  return { target, covered: by.length > 0, by: by.map((x) => x.arch), how: by[0]?.how ?? null };
}

/** What to keep of a file's arches for `target`. */
export interface KeepOptions {
  /** Keep an AMD generic ISA (gfx11-generic) that covers the target. @default true */
  generic?: boolean;
  /** Keep the newest PTX that covers a CUDA target, for the driver to compile when no cubin fits. @default true */
  ptx?: boolean;
}

/**
 * The arches of `found` to keep when pruning for `target`: the exact and
 * compatible code objects, plus (as configured) the covering generic ISA and
 * the newest covering PTX.
 */
export function keepFor(found: Iterable<string>, target: string, opts: KeepOptions = {}): string[] {
  const { by } = covers(found, target);
  let ptxKept = false;
  return by.filter((arch) => {
    const how = coverageOf(arch, target)!;
    if (how === 'generic') return opts.generic ?? true;
    if (how === 'ptx') {
      if (!(opts.ptx ?? true) || ptxKept) return false;
      return (ptxKept = true);
    }
    return true;
  });
}

/** One line for a finding that misses the target: the library, where, and what it has instead. */
export function describeMissing(f: CoverageFinding, target: string): string {
  if (f.kind === 'fatbin') return `${f.library}: no ${target} code in its fat binary (${f.arches.length ? `it has ${f.arches.join(', ')}` : 'it has no code objects at all'})`;
  const neutral = f.neutralFiles ? `${f.neutralFiles} arch-neutral files` : '';
  const has = f.arches.length ? `it has ${f.arches.join(', ')}${neutral ? `, and ${neutral}` : ''}` : neutral ? `it has only ${neutral}` : 'it is empty';
  return `${f.library}: kernel directory ${f.directory} has no files for ${target} (${has})`;
}
