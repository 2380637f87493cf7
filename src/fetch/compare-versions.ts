/**
 * Ordering of ROCm/TheRock version strings: `7.11.0`, `7.12.0rc2`,
 * `7.13.0a20260430` (a nightly alpha carrying its build date), `7.10.0.dev3`.
 * Numeric major.minor.patch first, then pre-release stage
 * (dev < alpha < beta < rc < release), then the stage's number (for nightlies
 * the date, so later nightlies sort later).
 */

/** A version split into comparable parts. */
export interface ParsedVersion {
  readonly release: readonly number[];
  /** 0 dev, 1 alpha, 2 beta, 3 rc, 4 final release. */
  readonly stage: number;
  readonly serial: number;
}

const STAGES: Record<string, number> = { dev: 0, '.dev': 0, a: 1, alpha: 1, b: 2, beta: 2, rc: 3 };
const FINAL = 4;

/** Parse a version, or null when it does not look like `N.N[.N...][stage[N]]`. */
export function parseVersion(v: string): ParsedVersion | null {
  const m = /^v?(\d+(?:\.\d+)*)(?:[-_]?(\.dev|dev|alpha|a|beta|b|rc)\.?(\d*))?$/i.exec(v.trim());
  if (!m) return null;
  const release = m[1]!.split('.').map(Number);
  if (!m[2]) return { release, stage: FINAL, serial: 0 };
  return { release, stage: STAGES[m[2].toLowerCase()]!, serial: m[3] ? Number(m[3]) : 0 };
}

/**
 * Compare two version strings: negative when `a` is older. Unparseable
 * versions sort before every parseable one (they are never "newest"), and
 * among themselves by plain string order so the result stays total.
 */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (!pa || !pb) {
    if (pa) return 1;
    if (pb) return -1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  const n = Math.max(pa.release.length, pb.release.length);
  for (let i = 0; i < n; i++) {
    const d = (pa.release[i] ?? 0) - (pb.release[i] ?? 0);
    if (d !== 0) return d;
  }
  return pa.stage - pb.stage || pa.serial - pb.serial;
}
