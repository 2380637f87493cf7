/**
 * Lexical path helpers. The kernel's `-y` annotations are the truth about
 * symlinks; these only make requested paths absolute and tidy.
 */

/**
 * Make `p` absolute against `base` and drop empty and `.` components. `..`
 * is collapsed only when `collapseDotDot` is set: across a symlink the
 * kernel's `a/link/..` is not `a`, so a requested path keeps its `..` when
 * the kernel's resolved path is known.
 */
export function absolutize(base: string, p: string, collapseDotDot = true): string {
  const joined = p.startsWith('/') ? p : `${base}/${p}`;
  const out: string[] = [];
  for (const part of joined.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && collapseDotDot) out.pop();
    else out.push(part);
  }
  return '/' + out.join('/');
}

/** Is `p` at or below `dir` (both absolute, tidy)? */
export function isUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : dir + '/');
}

/** /proc and /sys: provided by the kernel at run time, never shipped. */
export function isVirtual(p: string): boolean {
  return isUnder(p, '/proc') || isUnder(p, '/sys');
}

/** Device nodes (not the tmpfs dirs below /dev that hold ordinary files). */
export function isDevice(p: string): boolean {
  return isUnder(p, '/dev') && !isUnder(p, '/dev/shm') && !isUnder(p, '/dev/mqueue');
}
