/**
 * What a base root is: its os-release, its installed packages (read from
 * dpkg's status file, not by running the root's dpkg), and its size.
 * Reading only files keeps this usable on any root, even one whose binaries
 * need a newer glibc than the host's.
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { RocmflowError } from '../errors.js';
import type { BaseRootRecord, RootPackage } from './types.js';

/** Fields of an os-release file (`/etc/os-release`, else `/usr/lib/os-release`). */
export async function readOsRelease(root: string): Promise<BaseRootRecord['os']> {
  let text = '';
  for (const p of ['etc/os-release', 'usr/lib/os-release']) {
    text = await readFile(join(root, p), 'utf8').catch(() => '');
    if (text) break;
  }
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) fields[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, '$2');
  }
  return { id: fields.ID ?? null, versionId: fields.VERSION_ID ?? null, prettyName: fields.PRETTY_NAME ?? null };
}

/** Installed packages in a dpkg status file's text, sorted by name and architecture. */
export function parseDpkgStatus(text: string): RootPackage[] {
  const out: RootPackage[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const f: Record<string, string> = {};
    for (const m of stanza.matchAll(/^([A-Za-z0-9-]+):[ \t]*(.*)$/gm)) f[m[1]!] = m[2]!;
    if (!f.Package || !f.Version) continue;
    if (!/\binstalled$/.test(f.Status ?? '')) continue;
    out.push({ name: f.Package, version: f.Version, architecture: f.Architecture ?? '' });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.architecture < b.architecture ? -1 : a.architecture > b.architecture ? 1 : 0));
}

/** The root's installed packages; empty when it has no dpkg database. */
export async function readPackages(root: string): Promise<RootPackage[]> {
  const text = await readFile(join(root, 'var/lib/dpkg/status'), 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return '';
    throw e;
  });
  return parseDpkgStatus(text);
}

/** Regular files and their bytes under `root`, not following links (hard links counted once). */
export async function sizeOfTree(root: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  const seen = new Set<string>();
  const stack = [root];
  while (stack.length) {
    const dir = stack.pop()!;
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) {
        const st = await lstat(p);
        const id = `${st.dev}:${st.ino}`;
        if (st.nlink > 1) {
          if (seen.has(id)) continue;
          seen.add(id);
        }
        bytes += st.size;
        files++;
      }
    }
  }
  return { bytes, files };
}

/** Check that `dir` looks like a root (has usr/), naming `what` in the error. */
export async function requireRootDir(dir: string, what: string): Promise<void> {
  const st = await lstat(join(dir, 'usr')).catch(() => null);
  if (!st?.isDirectory()) throw new RocmflowError('E_BASE_ROOT', `${what}: ${dir} is not a root directory (no usr/ in it)`, { exitCode: 2 });
}

/** The absolute directory of a recorded root (`/` for the host). */
export function rootPath(record: Pick<BaseRootRecord, 'location'>, cacheDir: string, projectRoot: string): string {
  const l = record.location;
  if ('host' in l) return '/';
  if ('path' in l) return isAbsolute(l.path) ? l.path : resolve(projectRoot, l.path);
  if (isAbsolute(l.cache) || l.cache.split('/').includes('..')) throw new RocmflowError('E_BASE_ROOT', `root.json: location ${JSON.stringify(l.cache)} is not inside the cache`);
  return join(cacheDir, l.cache);
}
