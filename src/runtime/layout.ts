/**
 * A runtime root described as a base directory plus layers mounted inside
 * it, and path resolution *inside* that root: symlinks are followed the way
 * the kernel would follow them after a chroot into the layout, so that a
 * trace taken in the sandbox and the closure computed here agree.
 */
import { lstat, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { posix } from 'node:path';
import { RocmflowError } from '../errors.js';

/** One host directory mounted at an absolute path inside the root. */
export interface RootLayer {
  /** Absolute in-root path, e.g. `/opt/rocm`. */
  mount: string;
  /** Host directory mounted there. */
  source: string;
}

/**
 * A runtime root: `base` is `/` (the host) or a directory used as `/` (a
 * sysroot); `layers` are host directories mounted inside it (the fetched
 * ROCm tree at `/opt/rocm`, the llama.cpp install at `/opt/llama`).
 */
export interface RootLayout {
  base: string;
  layers: RootLayer[];
}

/** A symlink crossed while resolving a path. */
export interface CrossedLink {
  /** In-root path of the link itself (its parent directories are real directories). */
  path: string;
  /** The link's text, as readlink returns it. */
  target: string;
}

/** Where a path resolved to inside the layout. */
export interface Resolution {
  /** Canonical in-root path: no symlink in any component (the last one too, when following). */
  path: string;
  /** Every symlink crossed, in order. */
  links: CrossedLink[];
  /** lstat of the final path on the host, or null when it does not exist. */
  stat: Stats | null;
  /**
   * Set when the walk stopped at a missing component and the rest of the
   * path climbs back with `..` (as a link's target can splice in): `path`
   * is then only lexical, and may name a place the walk never checked
   * (below a link, say). Nothing may be made there.
   */
  climbsPastMissing?: true;
}

/** Normalise an in-root path: absolute, no `.`/`..`/double slashes, no trailing slash. */
export function normalizeInRoot(p: string): string {
  const n = posix.normalize('/' + p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

function under(path: string, prefix: string): boolean {
  return prefix === '/' || path === prefix || path.startsWith(prefix + '/');
}

/** The layer whose mount is the longest prefix of `inRootPath`, if any. */
export function layerOf(layout: RootLayout, inRootPath: string): RootLayer | undefined {
  const p = normalizeInRoot(inRootPath);
  let best: RootLayer | undefined;
  for (const l of layout.layers) {
    const m = normalizeInRoot(l.mount);
    if (under(p, m) && (!best || m.length > normalizeInRoot(best.mount).length)) best = l;
  }
  return best;
}

/** Host path of an in-root path: the longest layer mount prefix wins, else the base. */
export function hostPath(layout: RootLayout, inRootPath: string): string {
  const p = normalizeInRoot(inRootPath);
  const layer = layerOf(layout, p);
  if (layer) {
    const m = normalizeInRoot(layer.mount);
    return posix.join(layer.source, p.slice(m.length));
  }
  return layout.base === '/' ? p : posix.join(layout.base, p);
}

/**
 * lstat of an in-root path, or null when it does not exist. A directory
 * that exists only because a layer is mounted below it (/srv when a layer
 * sits at /srv/data and the base has no /srv) is a directory in the
 * sandbox, so it is one here too: its stand-in stat is the layer's source.
 */
export async function lstatInRoot(layout: RootLayout, inRootPath: string): Promise<Stats | null> {
  try {
    return await lstat(hostPath(layout, inRootPath));
  } catch (e) {
    if (!isMissing(e)) throw e;
  }
  const p = normalizeInRoot(inRootPath);
  const below = layout.layers.find((l) => under(normalizeInRoot(l.mount), p) && normalizeInRoot(l.mount) !== p);
  return below ? await lstat(below.source).catch(() => null) : null;
}

/** The target of the symlink at an in-root path, or null when it is not a symlink (or absent). */
export async function readlinkInRoot(layout: RootLayout, inRootPath: string): Promise<string | null> {
  try {
    return await readlink(hostPath(layout, inRootPath));
  } catch (e) {
    if (isMissing(e) || (e as NodeJS.ErrnoException).code === 'EINVAL') return null;
    throw e;
  }
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

const MAX_LINKS = 40; // the kernel's limit (ELOOP)

/**
 * Resolve `inRootPath` component by component inside the layout, following
 * symlinks (absolute targets from the layout's root, relative ones from the
 * link's directory) and recording each one crossed. `..` above the root, or
 * an absolute link of a sysroot that names a host path outside it, is
 * refused with E_ESCAPE: such a root would read files it does not contain.
 * A missing component ends the walk with `stat: null`.
 */
export async function resolveInRoot(
  layout: RootLayout,
  inRootPath: string,
  opts: { followLast?: boolean } = {},
): Promise<Resolution> {
  const followLast = opts.followLast ?? true;
  const links: CrossedLink[] = [];
  // pending components, consumed from the front; a link's target is spliced in
  let rest = splitRaw(inRootPath);
  let cur = '/';
  let stat: Stats | null = await lstatInRoot(layout, '/');
  const origin = inRootPath;
  while (rest.length > 0) {
    const name = rest.shift()!;
    if (name === '.' || name === '') continue;
    if (name === '..') {
      if (cur === '/') throw escape(layout, origin, links, 'goes above the root with ".."');
      cur = posix.dirname(cur);
      stat = await lstatInRoot(layout, cur);
      continue;
    }
    const next = cur === '/' ? '/' + name : cur + '/' + name;
    stat = await lstatInRoot(layout, next);
    if (!stat) return missingAt(next, rest, links);
    if (stat.isSymbolicLink() && (rest.length > 0 || followLast)) {
      const target = (await readlinkInRoot(layout, next))!;
      links.push({ path: next, target });
      if (links.length > MAX_LINKS) throw new RocmflowError('E_LOOP', `too many levels of symbolic links resolving ${origin} in ${describe(layout)}`);
      if (target.startsWith('/')) {
        await refuseHostAbsolute(layout, next, target, origin, links);
        cur = '/';
        stat = await lstatInRoot(layout, '/');
      }
      rest = [...splitRaw(target), ...rest];
      continue;
    }
    if (rest.length > 0 && !stat.isDirectory()) return missingAt(next, rest, links);
    cur = next;
  }
  return { path: cur, links, stat };
}

function missingAt(next: string, rest: string[], links: CrossedLink[]): Resolution {
  const r: Resolution = { path: normalizeInRoot([next, ...rest].join('/')), links, stat: null };
  if (rest.includes('..')) r.climbsPastMissing = true;
  return r;
}

function splitRaw(p: string): string[] {
  return p.split('/').filter((s) => s !== '');
}

/**
 * An absolute link inside a sysroot base that names the sysroot's own host
 * location (or another host path) is a link made for the host, not for the
 * root: it only "works" outside the root. Refuse it when its in-root
 * reading does not exist but its host reading does.
 */
async function refuseHostAbsolute(layout: RootLayout, link: string, target: string, origin: string, links: CrossedLink[]): Promise<void> {
  if (layout.base === '/') return;
  const inRoot = await lstatInRoot(layout, target);
  if (inRoot) return;
  const onHost = await lstat(target).catch(() => null);
  if (onHost) throw escape(layout, origin, links, `link ${link} -> ${target} points outside the root`);
}

function escape(layout: RootLayout, path: string, links: CrossedLink[], why: string): RocmflowError {
  const via = links.length ? ` (via ${links.map((l) => `${l.path} -> ${l.target}`).join(', ')})` : '';
  return new RocmflowError('E_ESCAPE', `${path} escapes the root ${describe(layout)}: ${why}${via}`);
}

/** One-line description of a layout for messages. */
export function describe(layout: RootLayout): string {
  const layers = layout.layers.map((l) => `${l.source} at ${l.mount}`).join(', ');
  return layers ? `${layout.base} (+ ${layers})` : layout.base;
}
