/**
 * rocmflow's per-user caches of compiled configs and module closures live
 * under the system's temporary directory, which every user can write. What
 * they hold is code that gets imported, or lists that decide a task's key,
 * and rocmflow often runs as root: a directory another user made first (or
 * a link they put in its place) must not be used. So the directory is made
 * 0700 and checked after: a real directory, owned by this user, writable by
 * nobody else. When it fails, the caller works without the cache and a
 * warning names the directory once.
 */
import { lstatSync, mkdirSync } from 'node:fs';

const checked = new Map<string, string | null>();

/** Check every directory again on next use (a long-lived process). */
export function forgetPrivateDirs(): void {
  checked.clear();
}

export function privateDir(path: string, warn: (message: string) => void = (m) => process.stderr.write(`rocmflow: warning: ${m}\n`)): string | null {
  const known = checked.get(path);
  if (known !== undefined) return known;
  let ok: string | null = null;
  try {
    mkdirSync(path, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
      checked.set(path, null);
      return null;
    }
  }
  try {
    const st = lstatSync(path);
    const uid = process.getuid?.();
    const problem = !st.isDirectory()
      ? 'not a directory (a link or a file)'
      : uid !== undefined && st.uid !== uid
        ? `owned by uid ${st.uid}, not ${uid}`
        : st.mode & 0o022
          ? `writable by others (mode ${(st.mode & 0o777).toString(8)})`
          : null;
    if (problem) warn(`${path}: ${problem}; not using it as a cache (remove it to get the cache back)`);
    else ok = path;
  } catch {
    // gone between the two calls: no cache this time
  }
  checked.set(path, ok);
  return ok;
}
