/**
 * Resolve DT_NEEDED the way glibc's dynamic loader does, but inside a
 * RootLayout: DT_RPATH (only without DT_RUNPATH, inherited along the chain
 * of loading objects), LD_LIBRARY_PATH, DT_RUNPATH (the object's own direct
 * needs only), the root's /etc/ld.so.cache, then the default directories.
 * Candidates of the wrong ELF class or machine are skipped, as ld.so does.
 * Not modelled: glibc-hwcaps subdirectories and LD_PRELOAD; the trace shows
 * those loads directly, so the closure still gets them.
 */
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { readElf, type ElfInfo } from './elf.js';
import { parseLdCache, type LdCacheEntry } from './ld-cache.js';
import { hostPath, resolveInRoot, type Resolution, type RootLayout } from './layout.js';

/** The directories searched last, in order (64-bit x86; 32-bit uses the i386 triplet). */
export const DEFAULT_LIB_DIRS_64 = ['/lib64', '/usr/lib64', '/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib', '/usr/lib'];
export const DEFAULT_LIB_DIRS_32 = ['/lib32', '/usr/lib32', '/lib/i386-linux-gnu', '/usr/lib/i386-linux-gnu', '/lib', '/usr/lib'];

/** An ELF object as the loader holds it. */
export interface LoadedObject {
  /** In-root path the loader opened it by (not canonicalised: `$ORIGIN` is its directory). */
  path: string;
  /** How `path` resolved inside the layout (canonical path and links crossed). */
  resolution: Resolution;
  elf: ElfInfo;
  /** The object whose DT_NEEDED brought this one in; null for the root object. */
  loader: LoadedObject | null;
}

/** Where a needed library was found, or why not. */
export interface NeededResult {
  /** The DT_NEEDED string. */
  name: string;
  /** The object that needs it. */
  by: LoadedObject;
  /** The object found, or null when no search location had it. */
  found: LoadedObject | null;
  /** Which search step found it: `rpath`, `LD_LIBRARY_PATH`, `runpath`, `ld.so.cache`, `default`, `path`, or `loaded`. */
  via: string | null;
}

/** A loader for one layout; caches ELF headers and the ld.so.cache between calls. */
export class DynamicLoader {
  private readonly elfs = new Map<string, Promise<ElfInfo | null>>();
  private cache: Promise<LdCacheEntry[]> | null = null;

  constructor(
    readonly layout: RootLayout,
    readonly opts: { libraryPath?: string[]; platform?: string } = {},
  ) {}

  /** The ELF facts of an in-root file (following links); null when absent or not ELF. */
  async elfAt(inRootPath: string): Promise<{ resolution: Resolution; elf: ElfInfo } | null> {
    const resolution = await resolveInRoot(this.layout, inRootPath);
    if (!resolution.stat?.isFile()) return null;
    let p = this.elfs.get(resolution.path);
    if (!p) {
      p = readElf(hostPath(this.layout, resolution.path));
      this.elfs.set(resolution.path, p);
    }
    const elf = await p;
    return elf ? { resolution, elf } : null;
  }

  /** The entries of the layout's /etc/ld.so.cache (none when it has no cache). */
  ldCache(): Promise<LdCacheEntry[]> {
    this.cache ??= readFile(hostPath(this.layout, '/etc/ld.so.cache')).then(
      (buf) => parseLdCache(buf, hostPath(this.layout, '/etc/ld.so.cache')),
      () => [],
    );
    return this.cache;
  }

  /** Open `inRootPath` as a root object (an executable, or a dlopen()ed library). */
  async load(inRootPath: string): Promise<LoadedObject | null> {
    const e = await this.elfAt(inRootPath);
    return e ? { path: inRootPath, resolution: e.resolution, elf: e.elf, loader: null } : null;
  }

  /** Expand `$ORIGIN`, `$LIB` and `$PLATFORM` in a search entry; several results when `$LIB` is ambiguous. */
  expand(entry: string, obj: LoadedObject): string[] {
    // the main program's origin is its real location (the kernel's /proc/self/exe); a library's is the name it was opened by
    const origin = posix.dirname(obj.loader === null && obj.elf.interp ? obj.resolution.path : obj.path);
    const libs = obj.elf.class === 64 ? ['lib64', 'lib/x86_64-linux-gnu'] : ['lib', 'lib/i386-linux-gnu'];
    const platform = this.opts.platform ?? (obj.elf.machine === 62 ? 'x86_64' : obj.elf.machine === 183 ? 'aarch64' : 'i686');
    const sub = (s: string, lib: string) =>
      s.replace(/\$(?:\{ORIGIN\}|ORIGIN)/g, origin).replace(/\$(?:\{PLATFORM\}|PLATFORM)/g, platform).replace(/\$(?:\{LIB\}|LIB)/g, lib);
    const out = /\$(\{LIB\}|LIB)/.test(entry) ? libs.map((l) => sub(entry, l)) : [sub(entry, libs[0]!)];
    return out.filter((d) => d.startsWith('/')).map((d) => posix.normalize(d));
  }

  /** The ordered search locations for a need of `obj`, each with its step name. */
  searchDirs(obj: LoadedObject): { dir: string; via: string }[] {
    const dirs: { dir: string; via: string }[] = [];
    if (obj.elf.runpath.length === 0) {
      for (let o: LoadedObject | null = obj; o; o = o.loader)
        for (const r of o.elf.rpath) for (const d of this.expand(r, o)) dirs.push({ dir: d, via: 'rpath' });
    }
    let main = obj;
    while (main.loader) main = main.loader;
    for (const r of this.opts.libraryPath ?? []) for (const d of this.expand(r, main)) dirs.push({ dir: d, via: 'LD_LIBRARY_PATH' });
    for (const r of obj.elf.runpath) for (const d of this.expand(r, obj)) dirs.push({ dir: d, via: 'runpath' });
    return dirs;
  }

  /** Find one DT_NEEDED name for `by`, as ld.so would. */
  async find(name: string, by: LoadedObject): Promise<NeededResult> {
    const fits = async (p: string): Promise<LoadedObject | null> => {
      const e = await this.elfAt(p);
      if (!e || e.elf.class !== by.elf.class || e.elf.machine !== by.elf.machine) return null;
      return { path: p, resolution: e.resolution, elf: e.elf, loader: by };
    };
    if (name.includes('/')) {
      const found = await fits(name.startsWith('/') ? name : posix.join(posix.dirname(by.path), name));
      return { name, by, found, via: found ? 'path' : null };
    }
    for (const { dir, via } of this.searchDirs(by)) {
      const found = await fits(posix.join(dir, name));
      if (found) return { name, by, found, via };
    }
    // objects linked with -z nodefaultlib would skip the next two steps; that flag is not modelled
    for (const entry of await this.ldCache()) {
      if (entry.name !== name) continue;
      const found = await fits(entry.path);
      if (found) return { name, by, found, via: 'ld.so.cache' };
    }
    for (const dir of by.elf.class === 64 ? DEFAULT_LIB_DIRS_64 : DEFAULT_LIB_DIRS_32) {
      const found = await fits(posix.join(dir, name));
      if (found) return { name, by, found, via: 'default' };
    }
    return { name, by, found: null, via: null };
  }

  /**
   * The whole DT_NEEDED closure of `root`, breadth first like ld.so: a name
   * already loaded (by DT_NEEDED string or soname) is not searched again.
   */
  async closure(root: LoadedObject): Promise<NeededResult[]> {
    const results: NeededResult[] = [];
    const byName = new Map<string, LoadedObject>();
    const seen = new Set<string>([root.resolution.path]);
    if (root.elf.soname) byName.set(root.elf.soname, root);
    const queue: LoadedObject[] = [root];
    while (queue.length > 0) {
      const obj = queue.shift()!;
      for (const name of obj.elf.needed) {
        const already = byName.get(name);
        if (already) {
          results.push({ name, by: obj, found: already, via: 'loaded' });
          continue;
        }
        const r = await this.find(name, obj);
        results.push(r);
        if (!r.found) continue;
        byName.set(name, r.found);
        if (r.found.elf.soname) byName.set(r.found.elf.soname, r.found);
        if (seen.has(r.found.resolution.path)) continue;
        seen.add(r.found.resolution.path);
        queue.push(r.found);
      }
    }
    return results;
  }
}
