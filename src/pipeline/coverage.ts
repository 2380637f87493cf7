/**
 * The pipeline's side of fat binaries: which arch the target needs, the
 * target options that turn pruning on (`pruneFatBinaries`, `pruneFallback`),
 * where the GPU runtime lies, and how coverage findings become warnings,
 * errors, report sections and `--json` facts.
 */
import { existsSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { RocmflowError } from '../errors.js';
import * as s from '../util/schema.js';
import { describeMissing } from '../fatbin/coverage.js';
import type { CoverageFinding, ScanRoot } from '../fatbin/scan-coverage.js';
import type { Detection, Json, ResolvedTarget } from '../plugin/types.js';
import { ROCM_MOUNT } from './runtime.js';

/** Options every GPU target accepts under `targets.<name>` (spread into its schema). */
export interface FatbinTargetOptions {
  /**
   * Prune the device code of every GPU library kept in the trimmed runtime
   * to the target's arch: `true`, `false`, or an explicit list of arches to
   * keep (`["gfx1100", "gfx11-generic"]`, `["sm_90", "sm_90a"]`).
   * @default true for AMD targets; false for CUDA, whose licence terms the
   * user must accept before shipping modified NVIDIA libraries
   */
  pruneFatBinaries?: boolean | string[];
  /** When pruning to the target: also keep the generic ISA (gfx11-generic) or the newest PTX that covers it. @default true */
  pruneFallback?: boolean;
}

export const fatbinTargetOptionsShape = {
  pruneFatBinaries: s.optional(s.union<boolean | string[]>('true, false or a list of arches', s.boolean(), s.array(s.string()))),
  pruneFallback: s.optional(s.boolean()),
};

/**
 * The arch the target's code must cover: an AMD target's arch, or a CUDA
 * compute capability (`9.0`) from the target's options or its detection.
 * Null for the CPU, or a CUDA target whose capability is unknown.
 */
export function gpuArch(target: Pick<ResolvedTarget, 'definition' | 'options' | 'detection'>, detection?: Detection | null): string | null {
  const def = target.definition;
  if (def.family === 'rocm') return def.arch ?? null;
  if (def.family !== 'cuda') return null;
  const cc = target.options.computeCapability ?? (detection ?? target.detection)?.facts?.computeCapability;
  return typeof cc === 'string' && /^\d+\.\d+$/.test(cc) ? cc : null;
}

/** What trim-runtime prunes to, or null when pruning is off. */
export function pruneSettings(target: Pick<ResolvedTarget, 'definition' | 'options'>): { keep?: string[]; fallback: boolean } | null {
  const o = target.options as FatbinTargetOptions;
  const on = o.pruneFatBinaries ?? target.definition.family === 'rocm';
  if (on === false || target.definition.family === 'cpu') return null;
  if (Array.isArray(on) && on.length === 0) throw new RocmflowError('E_CONFIG', `config: targets.${target.definition.name}.pruneFatBinaries: an empty list would remove all device code (use false to turn pruning off)`, { exitCode: 2 });
  return { ...(Array.isArray(on) ? { keep: on } : {}), fallback: o.pruneFallback ?? true };
}

/** Library directories of a whole system root (a base root); its other trees hold no GPU libraries. */
const SYSTEM_LIBRARY_DIRS = ['usr/lib', 'usr/lib64', 'usr/local/lib', 'lib', 'lib64', 'opt'];

/**
 * The trees to check before the build: the fetched GPU runtime (mounted at
 * /opt/rocm) and, when the runtime comes from a base root (Debian's ROCm in
 * /usr/lib/x86_64-linux-gnu), that root's library directories. The host's
 * own `/` is never walked.
 */
export function coverageRoots(runtimeRoot: string | null | undefined, baseRoot: string | null | undefined): ScanRoot[] {
  const roots: ScanRoot[] = [];
  if (runtimeRoot && existsSync(runtimeRoot)) roots.push({ dir: runtimeRoot, as: ROCM_MOUNT });
  if (baseRoot && baseRoot !== '/' && existsSync(baseRoot)) {
    // merged-/usr roots link lib → usr/lib: walk each real directory once
    const only = SYSTEM_LIBRARY_DIRS.filter((d) => {
      try {
        return lstatSync(join(baseRoot, d)).isDirectory();
      } catch {
        return false;
      }
    });
    if (only.length) roots.push({ dir: baseRoot, as: '/', only });
  }
  return roots;
}

/** The `coverage` list of `--json` and report.json. */
export function coverageFacts(findings: readonly CoverageFinding[]): Json[] {
  return findings.map((f) => ({
    library: f.library,
    directory: f.directory,
    kind: f.kind,
    arches: f.arches,
    missing: f.missing,
    coveredBy: f.coveredBy,
    ...(f.format ? { format: f.format } : {}),
    ...(f.files !== undefined ? { files: f.files, neutralFiles: f.neutralFiles ?? 0 } : {}),
    ...(f.note ? { note: f.note } : {}),
  }));
}

/**
 * Warn (or, when `strict`, fail) for every finding that misses the target;
 * returns the summary lines. `where` names the check (`before the build`,
 * `in the trimmed root`).
 */
export function judgeCoverage(
  findings: readonly CoverageFinding[], arch: string, opts: { strict: boolean; where: string; task: string; warn(m: string): void },
): string[] {
  const missing = findings.filter((f) => f.missing);
  const libs = new Set(findings.map((f) => f.library)).size;
  if (missing.length === 0) return [`coverage ${opts.where}: ${arch} covered by all ${findings.length} kernel directories and fat binaries of ${libs} libraries`];
  const lines = missing.map((f) => describeMissing(f, arch));
  if (opts.strict)
    throw new RocmflowError('E_COVERAGE', `${opts.task}: ${missing.length} of ${findings.length} GPU libraries and kernel directories ${opts.where} have no code for ${arch} (tasks.gpu-coverage.strict)`, { details: lines });
  for (const l of lines) opts.warn(l);
  return [`coverage ${opts.where}: ${missing.length} of ${findings.length} kernel directories and fat binaries have no ${arch} code (warnings; tasks.gpu-coverage.strict makes this an error):`, ...lines.map((l) => `  ${l}`)];
}

/** The report's coverage section. */
export function coverageMarkdown(findings: readonly CoverageFinding[], arch: string, where: string): string[] {
  if (findings.length === 0) return [`## Arch coverage (${where})`, '', 'No GPU library or kernel directory found.', ''];
  return [
    `## Arch coverage (${where})`, '',
    `Does each GPU library's device code, and each kernel directory a library reads at run time, cover ${arch} (the arch itself, a generic ISA or a PTX)?`, '',
    '| library | directory | arches found | covers ' + arch + ' |',
    '|---|---|---|---|',
    ...findings.map((f) => `| \`${f.library}\` | ${f.directory ? `\`${f.directory}\`` : 'fat binary'} | ${f.arches.join(', ') || 'none'}${f.neutralFiles ? ` (+${f.neutralFiles} arch-neutral files)` : ''} | ${f.note ? f.note : f.missing ? '**missing**' : f.coveredBy.join(', ')} |`),
    '',
  ];
}
