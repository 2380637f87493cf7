/**
 * The closure of a traced workload: everything a root must contain for the
 * same workload to run in it. strace shows what the program opened; this
 * adds what it cannot show (symlinks on every path component, ELF
 * interpreters, DT_NEEDED libraries, `#!` interpreters), then applies the
 * caller's exclusions and the target's keep/drop rules.
 *
 * Precedence, first match wins, and why:
 * 1. Excluded (/proc, /sys, /dev, `exclude`, `mounted`): never files of the
 *    root; the kernel or the run provides them. Nothing under them is walked.
 * 2. Host-provided (`hostProvided`): the host's driver must be used (libcuda
 *    must match the kernel module); reported, not included, not followed.
 * 3. Traced, symlink, interpreter, needed, shebang: what the workload used.
 * 4. Keep rules add files the trace could not see (lazily loaded kernels).
 * 5. Drop rules remove files last, even traced or kept ones (other arches,
 *    headers): the target knows they are dead weight. Two things drop never
 *    removes: ELF interpreters (without one no program starts, so a drop glob
 *    like `ld-*` would only break the root) and directories or symlinks to
 *    directories (they are the structure other kept files are reached by).
 */
import { open, readdir } from 'node:fs/promises';
import { posix } from 'node:path';
import type { KeepRule } from '../plugin/types.js';
import type { AccessSet } from '../trace/access-set.js';
import { matchAny, matchGlob, isGlob } from '../util/glob.js';
import { hostPath, layerOf, lstatInRoot, normalizeInRoot, resolveInRoot, type RootLayout } from './layout.js';
import { DynamicLoader, type LoadedObject } from './ldso.js';

/** Why a path is in the trimmed root. */
export type ClosureReason = 'traced' | 'symlink' | 'interpreter' | 'needed' | 'shebang' | 'rule' | 'lookup-dir';

/** One path of the trimmed root. */
export interface ClosureEntry {
  /** In-root path. */
  path: string;
  type: 'file' | 'symlink' | 'dir';
  reason: ClosureReason;
  /** For symlinks: the link text, kept as is. */
  linkTarget?: string;
  /** For a file that is a hard link of another closure file (same device and inode): that file's path. */
  hardlinkOf?: string;
}

/** What `computeClosure` returns. */
export interface Closure {
  /** Sorted by path. */
  entries: ClosureEntry[];
  /** Paths the workload used that the host provides (not included). */
  hostProvided: string[];
  /** Paths left out, and the rule that left them out. */
  excluded: { path: string; why: string }[];
  /** Things that could not be resolved (a DT_NEEDED no search location has): the root may still work, but look. */
  warnings: string[];
}

export interface ClosureOptions {
  layout: RootLayout;
  access: AccessSet;
  /** LD_LIBRARY_PATH the workload runs with (in-root directories). */
  libraryPath?: string[];
  /** Globs of in-root paths never to include; /proc/**, /sys/** and /dev/** are always added. */
  exclude?: string[];
  /** In-root globs mounted at run time (e.g. `/models/**`): not part of the root. */
  mounted?: string[];
  /** Basename or path globs of files the host provides (NVIDIA's libcuda.so*). */
  hostProvided?: string[];
  /** Target keep rules; globs are matched against every file of the layout's layers. */
  keep?: KeepRule[];
  /** Globs removed last (see the precedence above). */
  drop?: string[];
}

/** Which reason a file met more than once reports (drop rules spare interpreters). */
const RANK: Record<ClosureReason, number> = { interpreter: 6, traced: 5, shebang: 4, needed: 3, rule: 2, symlink: 1, 'lookup-dir': 0 };

/** Where keep rules look in a base root: the system's files, not /home, /root, /var or /tmp. */
const BASE_RULE_DIRS = ['usr', 'opt', 'etc'];

const ALWAYS_EXCLUDED = ['/proc', '/proc/**', '/sys', '/sys/**', '/dev', '/dev/**'];

/** Compute what a root needs for the traced workload; see the module comment for the rules' precedence. */
export async function computeClosure(opts: ClosureOptions): Promise<Closure> {
  return new ClosureBuilder(opts).build();
}

class ClosureBuilder {
  private readonly entries = new Map<string, ClosureEntry>();
  private readonly excluded = new Map<string, string>();
  private readonly hostProvided = new Set<string>();
  private readonly warnings: string[] = [];
  private readonly elfDone = new Set<string>();
  /** Links on the way to an ELF interpreter: drop rules leave them alone. */
  private readonly interpLinks = new Set<string>();
  /** Canonical paths of objects whose DT_NEEDED closure is already in. */
  private readonly needsWalked = new Set<string>();
  private readonly loader: DynamicLoader;
  private readonly exclude: string[];

  constructor(private readonly opts: ClosureOptions) {
    this.loader = new DynamicLoader(opts.layout, { libraryPath: opts.libraryPath });
    this.exclude = [...ALWAYS_EXCLUDED, ...(opts.exclude ?? [])];
  }

  async build(): Promise<Closure> {
    const { access } = this.opts;
    for (const f of access.files) {
      await this.include(f.path, 'traced');
      if (f.resolved && f.resolved !== f.path) await this.include(f.resolved, 'traced');
    }
    for (const e of access.executables) await this.include(e, 'traced', { executable: true });
    await this.applyKeep();
    await this.applyDrop();
    this.markHardlinks(await this.inodes());
    return {
      entries: [...this.entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
      hostProvided: [...this.hostProvided].sort(),
      excluded: [...this.excluded].map(([path, why]) => ({ path, why })).sort((a, b) => (a.path < b.path ? -1 : 1)),
      warnings: this.warnings,
    };
  }

  /** Why `p` must stay out, or null. */
  private outRule(p: string): string | null {
    for (const g of this.exclude) if (matchGlob(p, g)) return `excluded by ${g}`;
    for (const g of this.opts.mounted ?? []) if (matchGlob(p, g) || matchGlob(p + '/', g)) return `mounted at run time (${g})`;
    return null;
  }

  private isHostProvided(p: string): boolean {
    return matchAny(p, this.opts.hostProvided ?? []);
  }

  /**
   * Add `p` with every symlink on the way, its final file or directory, and
   * (for files) what that file needs. Returns the canonical path, or null
   * when it was left out or does not exist.
   */
  private async include(raw: string, reason: ClosureReason, how: { executable?: boolean } = {}): Promise<string | null> {
    const p = normalizeInRoot(raw);
    const why = this.outRule(p);
    if (why) {
      this.excluded.set(p, why);
      return null;
    }
    if (this.isHostProvided(p)) {
      this.hostProvided.add(p);
      return null;
    }
    const r = await resolveInRoot(this.opts.layout, p);
    for (const link of r.links) {
      if (this.outRule(link.path) || this.isHostProvided(link.path)) continue;
      if (!this.entries.has(link.path)) this.entries.set(link.path, { path: link.path, type: 'symlink', reason: 'symlink', linkTarget: link.target });
    }
    if (!r.stat) return null; // a dangling path: the trace's view of it was a lookup
    const finalWhy = this.outRule(r.path);
    if (finalWhy) {
      this.excluded.set(r.path, finalWhy);
      return null;
    }
    if (this.isHostProvided(r.path)) {
      this.hostProvided.add(r.path);
      return null;
    }
    if (r.stat.isDirectory()) {
      if (r.path !== '/' && !this.entries.has(r.path)) this.entries.set(r.path, { path: r.path, type: 'dir', reason: 'lookup-dir' });
      return r.path;
    }
    if (!r.stat.isFile()) return null; // sockets and fifos belong to the run, not the root
    if (reason === 'interpreter') for (const l of r.links) this.interpLinks.add(l.path);
    // a file met twice keeps the stronger reason: ld.so is first met as libc's need, but it is the interpreter
    const had = this.entries.get(r.path);
    if (!had || RANK[reason] > RANK[had.reason]) this.entries.set(r.path, { path: r.path, type: 'file', reason });
    await this.follow(p, r.path, how.executable ?? false);
    return r.path;
  }

  /** What a file needs: its ELF interpreter and libraries, or its `#!` interpreter. */
  private async follow(requested: string, canonical: string, executable: boolean): Promise<void> {
    const key = `${canonical}\0${executable}`;
    if (this.elfDone.has(key)) return;
    this.elfDone.add(key);
    // a library already reached as some object's need had its own needs walked then
    if (!executable && this.needsWalked.has(canonical)) return;
    const obj = await this.loader.load(requested);
    if (!obj) {
      if (executable) await this.shebang(canonical);
      return;
    }
    // the kernel maps PT_INTERP of what it executes; libc.so.6 has one too, unused when it is only loaded
    if (obj.elf.interp && executable) await this.include(obj.elf.interp, 'interpreter');
    await this.needed(obj);
  }

  private async needed(root: LoadedObject): Promise<void> {
    this.needsWalked.add(root.resolution.path);
    for (const r of await this.loader.closure(root)) {
      if (r.found) this.needsWalked.add(r.found.resolution.path);
      if (!r.found) {
        if (this.isHostProvided(r.name)) this.hostProvided.add(r.name);
        else this.warnings.push(`${r.by.path}: needed library ${r.name} not found in the layout`);
        continue;
      }
      if (r.via === 'loaded') continue;
      await this.includeNeeded(r.found.path);
    }
  }

  /** A needed library: included with its links, not re-walked for its own needs (the loader closure did that). */
  private async includeNeeded(p: string): Promise<void> {
    const why = this.outRule(p);
    if (why) {
      this.excluded.set(p, why);
      return;
    }
    if (this.isHostProvided(p)) {
      this.hostProvided.add(p);
      return;
    }
    const r = await resolveInRoot(this.opts.layout, p);
    if (this.isHostProvided(r.path)) {
      this.hostProvided.add(r.path);
      return;
    }
    for (const link of r.links)
      if (!this.entries.has(link.path)) this.entries.set(link.path, { path: link.path, type: 'symlink', reason: 'symlink', linkTarget: link.target });
    if (r.stat?.isFile() && !this.entries.has(r.path)) this.entries.set(r.path, { path: r.path, type: 'file', reason: 'needed' });
  }

  private async shebang(canonical: string): Promise<void> {
    const fh = await open(hostPath(this.opts.layout, canonical), 'r').catch(() => null);
    if (!fh) return;
    const buf = Buffer.alloc(256);
    const { bytesRead } = await fh.read(buf, 0, 256, 0).finally(() => fh.close());
    const head = buf.subarray(0, bytesRead).toString('latin1');
    if (!head.startsWith('#!')) return;
    const interp = head.slice(2).split('\n')[0]!.trim().split(/[ \t]+/)[0];
    if (interp && interp.startsWith('/')) await this.include(interp, 'shebang', { executable: true });
  }

  private async applyKeep(): Promise<void> {
    const rules = this.opts.keep ?? [];
    if (rules.length === 0) return;
    const loaded = [...this.entries.keys()];
    const globs: string[] = [];
    for (const rule of rules) {
      if (typeof rule === 'string') globs.push(rule);
      else if (loaded.some((p) => matchGlob(p, rule.ifLoaded))) globs.push(...rule.paths);
    }
    if (globs.length === 0) return;
    // literal paths may live anywhere in the root; globs are matched against the layers' files
    for (const g of globs) if (!isGlob(g) && g.startsWith('/')) await this.include(g, 'rule', { executable: false });
    const patterns = globs.filter(isGlob);
    if (patterns.length === 0) return;
    for (const layer of this.opts.layout.layers) {
      for await (const rel of walk(layer.source)) {
        const p = posix.join(normalizeInRoot(layer.mount), rel);
        if (matchAny(p, patterns) && !this.entries.has(p)) await this.include(p, 'rule');
      }
    }
    // a base root of its own (a Debian root with ROCm under /usr) is the runtime too; the host's / is not walked
    const { base } = this.opts.layout;
    if (base === '/') return;
    for (const top of BASE_RULE_DIRS) {
      for await (const rel of walk(base, top)) {
        const p = '/' + rel;
        if (layerOf(this.opts.layout, p)) continue;
        if (matchAny(p, patterns) && !this.entries.has(p)) await this.include(p, 'rule');
      }
    }
  }

  private async applyDrop(): Promise<void> {
    const drop = this.opts.drop ?? [];
    if (drop.length === 0) return;
    for (const e of [...this.entries.values()]) {
      if (e.type === 'dir' || e.reason === 'interpreter' || this.interpLinks.has(e.path)) continue;
      const g = drop.find((d) => matchGlob(e.path, d));
      if (!g) continue;
      // a link to a directory is structure: files kept below it are reached through it
      if (e.type === 'symlink' && (await resolveInRoot(this.opts.layout, e.path)).stat?.isDirectory()) continue;
      this.entries.delete(e.path);
      this.excluded.set(e.path, `dropped by ${g}`);
    }
  }

  private async inodes(): Promise<Map<string, string[]>> {
    const groups = new Map<string, string[]>();
    for (const e of this.entries.values()) {
      if (e.type !== 'file') continue;
      const st = await lstatInRoot(this.opts.layout, e.path);
      if (!st || st.nlink < 2) continue;
      const key = `${st.dev}:${st.ino}`;
      groups.set(key, [...(groups.get(key) ?? []), e.path]);
    }
    return groups;
  }

  private markHardlinks(groups: Map<string, string[]>): void {
    for (const paths of groups.values()) {
      if (paths.length < 2) continue;
      const [first, ...rest] = paths.sort();
      for (const p of rest) this.entries.get(p)!.hardlinkOf = first;
    }
  }
}

/** Every non-directory path under `dir`, relative to it. */
async function* walk(dir: string, rel = ''): AsyncGenerator<string> {
  const items = await readdir(posix.join(dir, rel), { withFileTypes: true }).catch(() => []);
  for (const it of items) {
    const r = rel ? `${rel}/${it.name}` : it.name;
    if (it.isDirectory()) yield* walk(dir, r);
    else yield r;
  }
}
