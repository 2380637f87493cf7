/**
 * What trimming saved: files and bytes of the full runtime against the
 * trimmed root, by top directory, by reason and by category, and the
 * largest files kept. JSON for tools, Markdown for people.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { posix } from 'node:path';
import type { RootManifest } from './assemble.js';
import { hostPath, normalizeInRoot, type RootLayout } from './layout.js';

/** Files and bytes. */
export interface Tally {
  files: number;
  bytes: number;
}

/** A row of a breakdown: full against trimmed. */
export interface ReportRow {
  key: string;
  full: Tally;
  trimmed: Tally;
}

/** The report's JSON shape. */
export interface ReportJson {
  full: Tally;
  trimmed: Tally;
  /** trimmed.bytes / full.bytes (0 when the full runtime is empty). */
  ratio: number;
  /** By first two path components (`/usr/lib`, `/opt/rocm`). */
  byTopDir: ReportRow[];
  /** Trimmed files by why they are there. */
  byReason: { reason: string; files: number; bytes: number }[];
  byCategory: ReportRow[];
  /** The largest files kept. */
  largest: { path: string; bytes: number; reason: string }[];
  /** Category → directory → file, full and trimmed bytes: what a treemap draws (see SizeNode). */
  tree: SizeNode;
}

/**
 * A node of the size tree: bytes in the full runtime and in the trimmed
 * root (a stripped file is smaller there; a dropped one is 0). Leaves are
 * files, with why each kept one is there. Dropped files too small to draw
 * (under 1/5000 of the full runtime) and those past the largest few hundred
 * of a directory are folded into one leaf per directory (`files` > 1), which
 * bounds the size for runtimes of tens of thousands of files.
 */
export interface SizeNode {
  name: string;
  full: number;
  trimmed: number;
  /** Files under this node. */
  files: number;
  /** For a kept file: why it is in the trimmed root. */
  reason?: string;
  children?: SizeNode[];
}

export interface TrimReportOptions {
  /** The full runtime: its files (in-root path and size), or a layout to walk (its base and layers; /proc, /sys, /dev, /run, /tmp skipped). */
  full: { path: string; size: number }[] | RootLayout;
  manifest: RootManifest;
  /** Category of an in-root path; the default groups by kind (shared library, executable, python, GPU code, data...). */
  categorize?: (path: string) => string;
  /** How many largest files to list. @default 15 */
  largest?: number;
  /** Per directory, at most how many dropped files the size tree lists one by one. @default 200 */
  treeFilesPerDir?: number;
}

/** Build the report from the full file list and the trimmed root's manifest. */
export function trimReport(opts: TrimReportOptions): { json: ReportJson; markdown: string } {
  const full = Array.isArray(opts.full) ? opts.full : layoutFiles(opts.full);
  const kept = opts.manifest.entries.filter((e) => e.type === 'file' && !e.hardlinkOf);
  const cat = opts.categorize ?? defaultCategory;
  const rows = (keyOf: (p: string) => string): ReportRow[] => {
    const m = new Map<string, ReportRow>();
    const row = (k: string) => m.get(k) ?? (m.set(k, { key: k, full: { files: 0, bytes: 0 }, trimmed: { files: 0, bytes: 0 } }), m.get(k)!);
    for (const f of full) add(row(keyOf(f.path)).full, f.size);
    for (const f of kept) add(row(keyOf(f.path)).trimmed, f.size);
    return [...m.values()].sort((a, b) => b.full.bytes - a.full.bytes || b.trimmed.bytes - a.trimmed.bytes || (a.key < b.key ? -1 : 1));
  };
  const byReason = new Map<string, Tally>();
  for (const f of kept) add(byReason.get(f.reason) ?? (byReason.set(f.reason, { files: 0, bytes: 0 }), byReason.get(f.reason)!), f.size);
  const fullT = full.reduce((t, f) => add(t, f.size), { files: 0, bytes: 0 });
  const trimmedT = kept.reduce((t, f) => add(t, f.size), { files: 0, bytes: 0 });
  const json: ReportJson = {
    full: fullT,
    trimmed: trimmedT,
    ratio: fullT.bytes ? trimmedT.bytes / fullT.bytes : 0,
    byTopDir: rows(topDir),
    byReason: [...byReason].map(([reason, t]) => ({ reason, ...t })).sort((a, b) => b.bytes - a.bytes),
    byCategory: rows(cat),
    largest: [...kept].sort((a, b) => b.size - a.size || (a.path < b.path ? -1 : 1)).slice(0, opts.largest ?? 15).map((e) => ({ path: e.path, bytes: e.size, reason: e.reason })),
    tree: sizeTree(full, kept, cat, opts.treeFilesPerDir ?? 200),
  };
  return { json, markdown: markdown(json) };
}

/** The category → directory → file tree of both runtimes, largest first. */
function sizeTree(full: { path: string; size: number }[], kept: { path: string; size: number; reason: string }[], cat: (p: string) => string, perDir: number): SizeNode {
  const files = new Map<string, SizeNode>();
  for (const f of full) files.set(f.path, { name: f.path, full: f.size, trimmed: 0, files: 1 });
  for (const f of kept) {
    const n = files.get(f.path) ?? (files.set(f.path, { name: f.path, full: 0, trimmed: 0, files: 1 }), files.get(f.path)!);
    n.trimmed = f.size;
    n.reason = f.reason;
  }
  const small = full.reduce((t, f) => t + f.size, 0) / 5000;
  const order = (a: SizeNode, b: SizeNode) => Math.max(b.full, b.trimmed) - Math.max(a.full, a.trimmed) || (a.name < b.name ? -1 : 1);
  const groups = new Map<string, Map<string, SizeNode[]>>();
  for (const n of files.values()) {
    const c = cat(n.name);
    const dirs = groups.get(c) ?? (groups.set(c, new Map()), groups.get(c)!);
    const d = posix.dirname(n.name);
    (dirs.get(d) ?? (dirs.set(d, []), dirs.get(d)!)).push(n);
  }
  const sum = (name: string, children: SizeNode[]): SizeNode => ({
    name, children, full: children.reduce((t, c) => t + c.full, 0), trimmed: children.reduce((t, c) => t + c.trimmed, 0), files: children.reduce((t, c) => t + c.files, 0),
  });
  const categories = [...groups].map(([c, dirs]) =>
    sum(c, [...dirs].map(([d, leaves]) => {
      leaves.sort(order);
      const listed = leaves.filter((l, i) => l.trimmed > 0 || (i < perDir && l.full >= small));
      const folded = leaves.filter((l) => !listed.includes(l));
      if (folded.length) listed.push({ name: `${folded.length} smaller files`, full: folded.reduce((t, l) => t + l.full, 0), trimmed: 0, files: folded.length });
      return sum(d, listed);
    }).sort(order)),
  ).sort(order);
  return sum('/', categories);
}

function add(t: Tally, size: number): Tally {
  t.files++;
  t.bytes += size;
  return t;
}

function topDir(p: string): string {
  const parts = p.split('/').filter(Boolean);
  return parts.length <= 1 ? '/' : '/' + parts.slice(0, Math.min(2, parts.length - 1)).join('/');
}

/** The default categories: what kind of file, judged from its name and place. */
export function defaultCategory(p: string): string {
  const base = posix.basename(p);
  if (/\.(hsaco|co|kpack)$/.test(base) || /TensileLibrary|\/amdgcn\//.test(p)) return 'GPU code';
  if (/\.so(\.\d+)*$/.test(base)) return 'shared library';
  if (/\.(py|pyc)$/.test(base) || p.includes('/python3')) return 'python';
  if (/\.(pm|pl)$/.test(base) || p.includes('/perl')) return 'perl';
  if (/\/s?bin\//.test(p)) return 'executable';
  if (/\.(gguf|bin|dat)$/.test(base)) return 'data';
  if (p.startsWith('/etc/')) return 'config';
  if (/\/(share|locale|zoneinfo)\//.test(p)) return 'shared data';
  return 'other';
}

const SKIP = new Set(['/proc', '/sys', '/dev', '/run', '/tmp']);

/** Every regular file of a layout (its base and layers, layers shadowing the base), with sizes. Hard links count once. */
export function layoutFiles(layout: RootLayout): { path: string; size: number }[] {
  const out: { path: string; size: number }[] = [];
  const seen = new Set<string>();
  const mounts = new Set(layout.layers.map((l) => normalizeInRoot(l.mount)));
  const walk = (inRoot: string, host: string) => {
    let names: string[];
    try {
      names = readdirSync(host);
    } catch {
      return;
    }
    for (const n of names) {
      const p = inRoot === '/' ? '/' + n : `${inRoot}/${n}`;
      if (SKIP.has(p) || mounts.has(p)) continue;
      const h = posix.join(host, n);
      const st = lstatSync(h, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(p, h);
      else if (st.isFile()) {
        const id = `${st.dev}:${st.ino}`;
        if (st.nlink > 1 && seen.has(id)) continue;
        seen.add(id);
        out.push({ path: p, size: st.size });
      }
    }
  };
  walk('/', hostPath({ base: layout.base, layers: [] }, '/'));
  for (const m of mounts) walk(m, hostPath(layout, m));
  return out;
}

function mb(bytes: number): string {
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toFixed(2)} GiB`;
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(1)} KiB`;
  return `${bytes} B`;
}

function markdown(r: ReportJson): string {
  const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)}%` : '-');
  const table = (title: string, rows: ReportRow[]) => [
    `## ${title}`, '', '| | full files | full size | trimmed files | trimmed size | kept |', '|---|---:|---:|---:|---:|---:|',
    ...rows.filter((x) => x.full.files || x.trimmed.files).slice(0, 25)
      .map((x) => `| \`${x.key}\` | ${x.full.files} | ${mb(x.full.bytes)} | ${x.trimmed.files} | ${mb(x.trimmed.bytes)} | ${pct(x.trimmed.bytes, x.full.bytes)} |`),
    '',
  ];
  return [
    '# Trimmed runtime', '',
    `Full: ${r.full.files} files, ${mb(r.full.bytes)}. Trimmed: ${r.trimmed.files} files, ${mb(r.trimmed.bytes)} (${pct(r.trimmed.bytes, r.full.bytes)} of the bytes).`, '',
    ...table('By directory', r.byTopDir),
    ...table('By category', r.byCategory),
    '## Why files are kept', '', '| reason | files | size |', '|---|---:|---:|',
    ...r.byReason.map((x) => `| ${x.reason} | ${x.files} | ${mb(x.bytes)} |`), '',
    '## Largest files kept', '', '| file | size | reason |', '|---|---:|---|',
    ...r.largest.map((x) => `| \`${x.path}\` | ${mb(x.bytes)} | ${x.reason} |`), '',
  ].join('\n');
}
