/**
 * report.html: trim-runtime's report.json (and the reproducibility record)
 * as one self-contained page: no script, no network, no fonts or styles from
 * elsewhere; the treemaps are inline SVG laid out here (src/report/treemap.ts),
 * with a tooltip (`<title>`) on every rectangle.
 *
 * The JSON is read as untrusted: sections whose data is missing or
 * malformed are left out, and every string is escaped.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { layoutTree, type PlacedNode, type TreeInput } from './treemap.js';

/** A size-tree node as report.json holds it (src/runtime/report.ts SizeNode). */
interface Node {
  name: string;
  full: number;
  trimmed: number;
  files: number;
  reason?: string;
  children?: Node[];
}

interface Row {
  key: string;
  full: { files: number; bytes: number };
  trimmed: { files: number; bytes: number };
}

/**
 * What the page reads from report.json. Everything is optional: a section
 * without its data is left out. `byArch` is the hook for device code per GPU
 * architecture (rows like `byCategory`, keyed by arch, e.g. `gfx1151`); when
 * present the page draws it as its own treemap and table.
 */
export interface ReportPageInput {
  target?: string;
  full?: { files: number; bytes: number };
  trimmed?: { files: number; bytes: number };
  tree?: Node;
  byCategory?: Row[];
  byTopDir?: Row[];
  byArch?: Row[];
  byReason?: { reason: string; files: number; bytes: number }[];
  largest?: { path: string; bytes: number; reason: string }[];
  hostProvided?: string[];
  verify?: {
    ok?: boolean; method?: string; requests?: number; cli?: string; texts?: Record<string, string>;
    speed?: Record<string, Record<string, number | null> | null>;
  };
  images?: Record<string, { name?: string; uncompressed?: number; compressed?: number; layers?: number; digest?: string; archives?: string[] }>;
  /** Milliseconds per step of trim-runtime. */
  timings?: Record<string, number>;
}

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function mib(bytes: number): string {
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toFixed(2)} GiB`;
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(1)} KiB`;
  return `${bytes} B`;
}

const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)}%` : '–');

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/** Category colours: the same category gets the same colour in every treemap. */
function colours(categories: readonly string[]): Map<string, string> {
  return new Map(categories.map((c, i) => [c, PALETTE[i % PALETTE.length]!]));
}

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0;

function validNode(n: unknown, depth = 0): n is Node {
  if (!n || typeof n !== 'object' || depth > 8) return false;
  const o = n as Node;
  if (typeof o.name !== 'string' || !isNum(o.full) || !isNum(o.trimmed)) return false;
  return o.children === undefined || (Array.isArray(o.children) && o.children.every((c) => validNode(c, depth + 1)));
}

/** One treemap of the tree, sized by `which`; leaves coloured by category, dropped files pale. */
function treemapSvg(tree: Node, which: 'full' | 'trimmed', colour: Map<string, string>, size: { w: number; h: number }, id: string): string {
  const input = (n: Node, cat: string | null): TreeInput<{ n: Node; cat: string | null }> => ({
    node: { n, cat },
    value: n[which],
    children: n.children?.map((c) => input(c, cat ?? c.name)),
  });
  const root: TreeInput<{ n: Node; cat: string | null }> = { node: { n: tree, cat: null }, value: tree[which], children: tree.children?.map((c) => input(c, c.name)) };
  const placed = layoutTree(root, { x: 0, y: 0, w: size.w, h: size.h });
  const out: string[] = [];
  const label = (p: PlacedNode<{ n: Node }>, text: string, r: { x: number; y: number; w: number; h: number }, cls: string) => {
    const max = Math.floor((r.w - 6) / 6.2);
    if (max < 4 || r.h < 12) return '';
    const t = text.length > max ? `${text.slice(0, max - 1)}…` : text;
    return `<text class="${cls}" x="${(r.x + 3).toFixed(1)}" y="${(r.y + 11).toFixed(1)}">${esc(t)}</text>`;
  };
  for (const p of placed) {
    if (p.depth === 0) continue;
    const { n, cat } = p.node;
    const r = p.rect;
    const rect = `x="${r.x.toFixed(1)}" y="${r.y.toFixed(1)}" width="${Math.max(0, r.w).toFixed(1)}" height="${Math.max(0, r.h).toFixed(1)}"`;
    const base = colour.get(cat ?? n.name) ?? '#999';
    const tip = `${n.name}\nfull: ${mib(n.full)}${n.files > 1 ? ` (${n.files} files)` : ''}\ntrimmed: ${mib(n.trimmed)}${n.reason ? `\nkept: ${n.reason}` : ''}`;
    if (p.leaf) {
      const kept = n.trimmed > 0;
      out.push(`<rect class="leaf ${kept ? 'kept' : 'dropped'}" data-name="${esc(n.name)}" data-bytes="${n[which]}" ${rect} fill="${base}" fill-opacity="${kept ? 0.95 : 0.28}"><title>${esc(tip)}</title></rect>`);
      if (r.w > 70 && r.h > 16) out.push(label(p, n.name.slice(n.name.lastIndexOf('/') + 1), r, 'file'));
    } else {
      out.push(`<rect class="group d${p.depth}" data-name="${esc(n.name)}" ${rect} fill="${p.depth === 1 ? base : 'none'}" fill-opacity="${p.depth === 1 ? 0.08 : 0}"><title>${esc(tip)}</title></rect>`);
      if (p.header) out.push(label(p, p.depth === 1 ? `${n.name} · ${mib(n[which])}` : n.name, p.header, p.depth === 1 ? 'cat' : 'dir'));
    }
  }
  return `<svg id="${esc(id)}" class="treemap" role="img" viewBox="0 0 ${size.w} ${size.h}" width="${size.w}" height="${size.h}" data-bytes="${tree[which]}">${out.join('')}</svg>`;
}

/** A flat treemap of rows (e.g. by arch), full against trimmed side by side. */
function rowsTreemap(rows: Row[], colour: Map<string, string>, id: string): string {
  const tree: Node = {
    name: '/', full: rows.reduce((t, r) => t + r.full.bytes, 0), trimmed: rows.reduce((t, r) => t + r.trimmed.bytes, 0), files: 0,
    children: rows.map((r) => ({ name: r.key, full: r.full.bytes, trimmed: r.trimmed.bytes, files: r.full.files, children: [{ name: r.key, full: r.full.bytes, trimmed: r.trimmed.bytes, files: r.full.files }] })),
  };
  return `<div class="maps">${treemapSvg(tree, 'full', colour, { w: 560, h: 260 }, `${id}-full`)}${tree.trimmed ? treemapSvg(tree, 'trimmed', colour, { w: 560, h: 260 }, `${id}-trimmed`) : ''}</div>`;
}

function rowsTable(title: string, rows: Row[], limit = 25): string {
  const body = rows.filter((r) => r.full.files || r.trimmed.files).slice(0, limit)
    .map((r) => `<tr><td><code>${esc(r.key)}</code></td><td>${r.full.files}</td><td>${mib(r.full.bytes)}</td><td>${r.trimmed.files}</td><td>${mib(r.trimmed.bytes)}</td><td>${pct(r.trimmed.bytes, r.full.bytes)}</td></tr>`);
  return `<h3>${esc(title)}</h3><table><tr><th></th><th>full files</th><th>full size</th><th>trimmed files</th><th>trimmed size</th><th>kept</th></tr>${body.join('')}</table>`;
}

const validRows = (x: unknown): x is Row[] =>
  Array.isArray(x) && x.every((r) => r && typeof r.key === 'string' && isNum(r.full?.bytes) && isNum(r.trimmed?.bytes) && isNum(r.full?.files) && isNum(r.trimmed?.files));

/** Render the page. `repro` is the reproducibility record (shown as facts and in full). */
export function renderReportHtml(report: ReportPageInput, repro?: unknown): string {
  const target = typeof report.target === 'string' ? report.target : 'unknown target';
  const parts: string[] = [];
  const full = report.full;
  const trimmed = report.trimmed;
  if (full && trimmed && isNum(full.bytes) && isNum(trimmed.bytes)) {
    const x = trimmed.bytes ? (full.bytes / trimmed.bytes).toFixed(1) : '–';
    parts.push(`<p class="lead">The trimmed runtime keeps <b>${trimmed.files} of ${full.files} files</b>, <b>${mib(trimmed.bytes)} of ${mib(full.bytes)}</b> (${pct(trimmed.bytes, full.bytes)}, ${x}× smaller).</p>`);
  }
  parts.push(imagesSection(report.images));
  const cats = validNode(report.tree) ? (report.tree.children ?? []).map((c) => c.name) : validRows(report.byCategory) ? report.byCategory.map((r) => r.key) : [];
  const colour = colours(cats);
  if (validNode(report.tree)) {
    const t = report.tree;
    const legend = cats.map((c) => `<span class="swatch" style="background:${colour.get(c)}"></span>${esc(c)}`).join(' ');
    parts.push(`<h2>What is in the runtime</h2>
<p>Every rectangle is a file, sized by its bytes, grouped by category and directory. Strong colour: kept in the trimmed root; pale: dropped. Hover for the path, the sizes and why a file was kept.</p>
<p class="legend">${legend} <span class="swatch pale"></span>dropped</p>
<h3>Full runtime: ${mib(t.full)}</h3>${treemapSvg(t, 'full', colour, { w: 1140, h: 520 }, 'treemap-full')}
<h3>Trimmed runtime: ${mib(t.trimmed)}${t.trimmed ? `, drawn at ${(t.full / t.trimmed).toFixed(1)}× the scale of the full one` : ''}</h3>${t.trimmed ? treemapSvg(t, 'trimmed', colour, { w: 1140, h: 360 }, 'treemap-trimmed') : '<p>(empty)</p>'}`);
  }
  if (validRows(report.byArch) && report.byArch.length) {
    parts.push(`<h2 id="by-arch">Device code by GPU architecture</h2>${rowsTreemap(report.byArch, colours(report.byArch.map((r) => r.key)), 'treemap-arch')}${rowsTable('By architecture', report.byArch)}`);
  }
  const tables: string[] = [];
  if (validRows(report.byCategory)) tables.push(rowsTable('By category', report.byCategory));
  if (validRows(report.byTopDir)) tables.push(rowsTable('By directory', report.byTopDir));
  if (tables.length) parts.push(`<h2>Full against trimmed</h2>${tables.join('')}`);
  parts.push(reasonsSection(report));
  parts.push(verifySection(report.verify));
  parts.push(timingsSection(report.timings));
  parts.push(reproSection(repro));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>rocmflow: ${esc(target)} runtime report</title>
<style>${CSS}</style></head>
<body><h1>${esc(target)}: trimmed llama.cpp runtime</h1>
${parts.filter(Boolean).join('\n')}
</body></html>
`;
}

function imagesSection(images: ReportPageInput['images']): string {
  if (!images || typeof images !== 'object') return '';
  const rows = Object.entries(images).filter(([, i]) => i && typeof i === 'object').map(([kind, i]) =>
    `<tr><td>${esc(kind)}</td><td><code>${esc(i.name ?? '')}</code></td><td>${isNum(i.uncompressed) ? mib(i.uncompressed) : ''}</td><td>${isNum(i.compressed) ? mib(i.compressed) : ''}</td><td>${isNum(i.layers) ? i.layers : ''}</td><td><code class="digest">${esc(i.digest ?? '')}</code></td></tr>`);
  if (!rows.length) return '';
  const minimal = images.minimal?.name;
  const run = typeof minimal === 'string' ? `<p>Run it: <code>podman load -i images/minimal.oci.tar</code>, then <code>podman run --rm --network host -v $MODELS:/models:ro ${esc(minimal)}</code> serves <code>/models/model.gguf</code> on port 8080; <code>--entrypoint llama-completion</code> runs the CLI.</p>` : '';
  return `<h2>Images</h2><table><tr><th></th><th>name</th><th>uncompressed</th><th>zstd</th><th>layers</th><th>manifest digest</th></tr>${rows.join('')}</table>${run}`;
}

function reasonsSection(r: ReportPageInput): string {
  const parts: string[] = [];
  if (Array.isArray(r.byReason)) {
    const rows = r.byReason.filter((x) => x && typeof x.reason === 'string').map((x) => `<tr><td>${esc(x.reason)}</td><td>${isNum(x.files) ? x.files : ''}</td><td>${isNum(x.bytes) ? mib(x.bytes) : ''}</td></tr>`);
    parts.push(`<h3>Why files are kept</h3><table><tr><th>reason</th><th>files</th><th>size</th></tr>${rows.join('')}</table>`);
  }
  if (Array.isArray(r.largest)) {
    const rows = r.largest.filter((x) => x && typeof x.path === 'string').map((x) => `<tr><td><code>${esc(x.path)}</code></td><td>${isNum(x.bytes) ? mib(x.bytes) : ''}</td><td>${esc(x.reason)}</td></tr>`);
    parts.push(`<h3>Largest files kept</h3><table><tr><th>file</th><th>size</th><th>reason</th></tr>${rows.join('')}</table>`);
  }
  if (Array.isArray(r.hostProvided)) {
    parts.push(`<h3>Host-provided, not bundled</h3>${r.hostProvided.length ? `<ul>${r.hostProvided.map((p) => `<li><code>${esc(p)}</code></li>`).join('')}</ul>` : '<p>none</p>'}`);
  }
  return parts.length ? `<h2>Why files are there</h2>${parts.join('')}` : '';
}

function verifySection(v: ReportPageInput['verify']): string {
  if (!v || typeof v !== 'object') return '';
  const texts = v.texts && typeof v.texts === 'object' ? Object.entries(v.texts).map(([k, t]) => `<tr><td>${esc(k)}</td><td><pre>${esc(t)}</pre></td></tr>`).join('') : '';
  const speed = v.speed && typeof v.speed === 'object'
    ? Object.entries(v.speed).filter(([, s]) => s && typeof s === 'object').map(([where, s]) =>
      `<tr><td>${esc(where)}</td>${['serverTokensPerSecond', 'serverPromptPerSecond', 'cliTokensPerSecond', 'loadMs'].map((k) => `<td>${isNum(s![k]) ? s![k] : '–'}</td>`).join('')}</tr>`).join('')
    : '';
  return `<h2>Verification</h2>
<p class="${v.ok ? 'ok' : 'bad'}">${v.ok ? 'Passed' : 'Failed'}: ${isNum(v.requests) ? v.requests : '?'} server requests and one ${esc(v.cli ?? 'CLI')} run in the trimmed root (${esc(v.method ?? '?')}) gave the same text as the traced full runtime.</p>
${speed ? `<table><tr><th>runtime</th><th>generation tokens/s</th><th>prompt tokens/s</th><th>CLI tokens/s</th><th>load ms</th></tr>${speed}</table>` : ''}
${texts ? `<details><summary>The generated texts</summary><table>${texts}</table></details>` : ''}`;
}

function timingsSection(t: ReportPageInput['timings']): string {
  if (!t || typeof t !== 'object') return '';
  const rows = Object.entries(t).filter(([, ms]) => isNum(ms));
  if (!rows.length) return '';
  const total = rows.reduce((s, [, ms]) => s + ms, 0);
  const bars = rows.map(([k, ms]) => `<tr><td>${esc(k)}</td><td>${(ms / 1000).toFixed(1)} s</td><td><span class="bar" style="width:${total ? Math.max(1, Math.round((300 * ms) / total)) : 0}px"></span></td></tr>`);
  return `<h2>Timings of trim-runtime</h2><table>${bars.join('')}</table>`;
}

function reproSection(repro: unknown): string {
  if (!repro || typeof repro !== 'object') return '';
  const r = repro as Record<string, any>;
  const facts: [string, unknown][] = [
    ['rocmflow', r.rocmflow], ['Node.js', r.node], ['target', r.target?.name],
    ['llama.cpp', r.llama?.commit ? `${r.llama.describe ?? ''} (${r.llama.commit})` : undefined],
    ['GPU runtime', r.rocm?.version ?? r.rocm?.kind], ['model sha256', r.model?.sha256],
    ...Object.entries(r.tools && typeof r.tools === 'object' ? r.tools : {}).map(([k, v]) => [k, typeof v === 'string' ? v.split('\n')[0] : v] as [string, unknown]),
  ];
  const rows = facts.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => `<tr><td>${esc(k)}</td><td><code>${esc(v)}</code></td></tr>`);
  return `<h2>Reproducibility record</h2><table>${rows.join('')}</table><details><summary>reproducibility.json</summary><pre>${esc(JSON.stringify(repro, null, 2))}</pre></details>`;
}

/** Read `report.json` and `reproducibility.json` in `dir` and write `report.html` next to them; returns its path. */
export async function writeReportHtml(dir: string): Promise<string> {
  const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as ReportPageInput;
  const repro = await readFile(join(dir, 'reproducibility.json'), 'utf8').then((t) => JSON.parse(t) as unknown, () => undefined);
  const out = join(dir, 'report.html');
  await writeFile(out, renderReportHtml(report, repro));
  return out;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1160px;color:#222;padding:0 10px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}
.lead{font-size:16px}table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right;vertical-align:top}
td:first-child,th:first-child,td:nth-child(2) code{text-align:left}th{font-weight:600;background:#f6f6f6}
code{font:12px/1.3 ui-monospace,Menlo,Consolas,monospace}.digest{font-size:10px}pre{margin:0;white-space:pre-wrap;text-align:left;font:12px ui-monospace,monospace}
.treemap{display:block;background:#fafafa;border:1px solid #ccc;margin:4px 0 12px;max-width:100%;height:auto}
.treemap rect.leaf{stroke:#fff;stroke-width:.5}.treemap rect.leaf:hover{stroke:#000;stroke-width:1.5}
.treemap rect.group{stroke:#555;stroke-width:.6}.treemap rect.d1{stroke:#222;stroke-width:1.4}
.treemap text{font:10.5px system-ui,sans-serif;fill:#111;pointer-events:none}.treemap text.cat{font-weight:700;font-size:11px}.treemap text.dir{fill:#333}
.maps{display:flex;gap:16px;flex-wrap:wrap}.legend{line-height:2}.swatch{display:inline-block;width:12px;height:12px;margin:0 4px 0 10px;vertical-align:-1px;border:1px solid #888}
.swatch.pale{background:#ccc;opacity:.5}.ok{color:#1a7f37;font-weight:600}.bad{color:#b42318;font-weight:600}.bar{display:inline-block;height:10px;background:#4e79a7}
details{margin:6px 0}summary{cursor:pointer}`;
