/**
 * rocmflow may run from a compiled mirror of its sources (see
 * bin/build-cache.js). These say where it runs from and where the
 * TypeScript sources are, and map one onto the other.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

/** The directory holding the running src/, tasks/, plugins/ (the package, or its compiled mirror). */
export const RUNNING_ROOT = resolve(import.meta.dirname, '../..');

/** The package's own directory, with the TypeScript sources. */
export const SOURCE_ROOT = (() => {
  try {
    return readFileSync(join(RUNNING_ROOT, '.source-root'), 'utf8').trim();
  } catch {
    return RUNNING_ROOT;
  }
})();

/** The TypeScript source of a running module file (itself when not compiled). */
export function sourceOf(file: string): string {
  const rel = relative(RUNNING_ROOT, file);
  if (rel.startsWith('..') || SOURCE_ROOT === RUNNING_ROOT) return file;
  const ts = join(SOURCE_ROOT, rel.replace(/\.js$/, '.ts'));
  return existsSync(ts) ? ts : join(SOURCE_ROOT, rel);
}
