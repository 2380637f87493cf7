/**
 * Applies a target's keep / drop / hostProvided rules to a list of runtime
 * paths. Pure, so the plan can be printed and tested on real file lists
 * (e.g. a package listing) without the files on disk.
 */
import { matchAny } from '../util/glob.js';
import type { KeepRule, TargetDefinition } from '../plugin/types.js';

/** Where each path went. */
export interface RulePlan {
  /** Kept by a keep rule (and not dropped). */
  kept: string[];
  /** Matched a drop rule: removed even if traced or kept. */
  dropped: string[];
  /** Provided by the host at run time: never bundled. */
  hostProvided: string[];
  /** Matched no rule: the trace decides. */
  untouched: string[];
}

/** The keep globs in force, given the paths the traced runtime loaded. */
export function activeKeepGlobs(keep: readonly KeepRule[], loaded: readonly string[]): string[] {
  const globs: string[] = [];
  for (const rule of keep) {
    if (typeof rule === 'string') globs.push(rule);
    else if (loaded.some((p) => matchAny(p, [rule.ifLoaded]))) globs.push(...rule.paths);
  }
  return globs;
}

/**
 * Sort `paths` by the rules. Order of precedence: host-provided, then drop,
 * then keep (a drop rule beats a keep rule, so "keep the library dir" plus
 * "drop other arches" leaves exactly the target's files).
 */
export function applyTargetRules(
  paths: readonly string[],
  target: Pick<TargetDefinition, 'keep' | 'drop' | 'hostProvided'>,
  loaded: readonly string[] = [],
): RulePlan {
  const keep = activeKeepGlobs(target.keep, loaded);
  const plan: RulePlan = { kept: [], dropped: [], hostProvided: [], untouched: [] };
  for (const p of paths) {
    if (matchAny(p, target.hostProvided)) plan.hostProvided.push(p);
    else if (matchAny(p, target.drop)) plan.dropped.push(p);
    else if (matchAny(p, keep)) plan.kept.push(p);
    else plan.untouched.push(p);
  }
  return plan;
}
