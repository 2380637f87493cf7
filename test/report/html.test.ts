/**
 * report.html: the squarified layout fills its box with areas proportional
 * to the values; the page escapes what it shows, leaves out what it lacks,
 * draws the per-arch hook when report.json has it; and the CPU pipeline's
 * real report, opened in headless Chromium without network, draws both
 * treemaps with every file where its bytes say and asks for nothing but
 * itself.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { squarify, layoutTree } from '../../src/report/treemap.js';
import { renderReportHtml } from '../../src/report/html.js';
import { cpuPipeline, type CpuPipeline } from '../helpers/cpu-pipeline.js';
import { CHROMIUM, visit } from '../helpers/chromium.js';

const area = (r: { w: number; h: number }) => r.w * r.h;

describe('squarify', () => {
  it('fills the box with areas proportional to the values, inside it, without overlaps, in near-square shapes', () => {
    const values = [500, 300, 120, 60, 10, 6, 3, 1];
    const box = { x: 10, y: 20, w: 400, h: 250 };
    const rects = squarify(values, box);
    const total = values.reduce((a, b) => a + b, 0);
    rects.forEach((r, i) => {
      expect(area(r) / area(box)).toBeCloseTo(values[i]! / total, 6);
      expect(r.x).toBeGreaterThanOrEqual(box.x - 1e-9);
      expect(r.y).toBeGreaterThanOrEqual(box.y - 1e-9);
      expect(r.x + r.w).toBeLessThanOrEqual(box.x + box.w + 1e-6);
      expect(r.y + r.h).toBeLessThanOrEqual(box.y + box.h + 1e-6);
    });
    for (let i = 0; i < rects.length; i++)
      for (let j = i + 1; j < rects.length; j++) {
        const a = rects[i]!;
        const b = rects[j]!;
        const ox = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
        const oy = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
        expect(ox <= 1e-6 || oy <= 1e-6).toBe(true);
      }
    // the two largest are far from slivers
    for (const r of rects.slice(0, 2)) expect(Math.max(r.w / r.h, r.h / r.w)).toBeLessThan(3);
  });

  it('gives zero values empty rectangles and survives an empty box', () => {
    const rects = squarify([0, 5, 0], { x: 0, y: 0, w: 10, h: 10 });
    expect(area(rects[0]!)).toBe(0);
    expect(area(rects[1]!)).toBeCloseTo(100, 6);
    expect(squarify([1, 2], { x: 0, y: 0, w: 0, h: 5 }).every((r) => area(r) === 0)).toBe(true);
  });

  it('nests groups with a label strip inside their parents', () => {
    const placed = layoutTree({ node: 'root', value: 10, children: [{ node: 'a', value: 6, children: [{ node: 'a1', value: 4 }, { node: 'a2', value: 2 }] }, { node: 'b', value: 4 }] }, { x: 0, y: 0, w: 300, h: 200 });
    const a = placed.find((p) => p.node === 'a')!;
    expect(a.leaf).toBe(false);
    expect(a.header).toBeDefined();
    for (const kid of placed.filter((p) => p.node === 'a1' || p.node === 'a2')) {
      expect(kid.rect.y).toBeGreaterThanOrEqual(a.rect.y + a.header!.h);
      expect(kid.rect.x + kid.rect.w).toBeLessThanOrEqual(a.rect.x + a.rect.w + 1e-6);
    }
  });
});

const node = (name: string, full: number, trimmed: number, extra: object = {}) => ({ name, full, trimmed, files: 1, ...extra });
const SAMPLE = {
  target: 'gfx1151<script>',
  full: { files: 4, bytes: 1000 },
  trimmed: { files: 2, bytes: 300 },
  tree: {
    name: '/', full: 1000, trimmed: 300, files: 4, children: [
      { name: 'GPU runtime', full: 700, trimmed: 200, files: 2, children: [{ name: '/opt/rocm/lib', full: 700, trimmed: 200, files: 2, children: [node('/opt/rocm/lib/libamdhip64.so.7', 500, 200, { reason: 'traced' }), node('/opt/rocm/lib/<img src=x onerror=alert(1)>.so', 200, 0)] }] },
      { name: 'system', full: 300, trimmed: 100, files: 2, children: [{ name: '/usr/lib', full: 300, trimmed: 100, files: 2, children: [node('/usr/lib/libc.so.6', 100, 100, { reason: 'needed' }), node('/usr/lib/libLLVM.so', 200, 0)] }] },
    ],
  },
  byArch: [
    { key: 'gfx1151', full: { files: 10, bytes: 4000 }, trimmed: { files: 10, bytes: 4000 } },
    { key: 'gfx1100', full: { files: 30, bytes: 9000 }, trimmed: { files: 0, bytes: 0 } },
  ],
  verify: { ok: true, method: 'bwrap', requests: 4, cli: 'llama-completion', texts: { short: '</pre><b>x</b>' } },
};

describe('renderReportHtml', () => {
  it('escapes every string it shows, and has no script, no external reference', () => {
    const html = renderReportHtml(SAMPLE);
    expect(html).not.toMatch(/<script|<img|<link|@import|url\(|https?:\/\//i);
    expect(html).toContain('gfx1151&lt;script&gt;');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;.so');
    expect(html).toContain('&lt;/pre&gt;&lt;b&gt;x&lt;/b&gt;');
  });

  it('draws one rectangle per file of each runtime, kept files marked', () => {
    const html = renderReportHtml(SAMPLE);
    const full = /<svg id="treemap-full"[\s\S]*?<\/svg>/.exec(html)![0];
    const trimmed = /<svg id="treemap-trimmed"[\s\S]*?<\/svg>/.exec(html)![0];
    expect(full.match(/class="leaf /g)).toHaveLength(4);
    expect(full.match(/class="leaf kept"/g)).toHaveLength(2);
    expect(trimmed.match(/class="leaf /g)).toHaveLength(2);
    expect(full).toContain('kept: traced');
  });

  it('draws device code per GPU arch when report.json has it (the hook), and leaves out what is missing', () => {
    const html = renderReportHtml(SAMPLE);
    expect(html).toContain('<h2 id="by-arch">');
    expect(/<svg id="treemap-arch-full"[\s\S]*?<\/svg>/.exec(html)![0].match(/class="leaf /g)).toHaveLength(2);
    const bare = renderReportHtml({ target: 'cpu' });
    expect(bare).not.toContain('by-arch');
    expect(bare).not.toContain('<svg');
    expect(bare).not.toContain('Verification');
    // malformed sections are dropped, not trusted
    expect(renderReportHtml({ tree: { name: 1 } as never, byArch: [{ key: 'x' }] as never })).not.toContain('<svg');
  });
});

describe.skipIf(!CHROMIUM)('the CPU pipeline report in Chromium', () => {
  let p: CpuPipeline;
  let report: { trimmed: { files: number }; full: { files: number } };
  beforeAll(async () => {
    p = await cpuPipeline();
    report = JSON.parse(readFileSync(join(p.out('trim-runtime'), 'report.json'), 'utf8'));
  }, 3_600_000);

  it('is named by the run summary, opens without network and draws both treemaps as report.json says', async () => {
    const html = join(p.out('trim-runtime'), 'report.html');
    expect(JSON.stringify(p.run.events.find((e) => e.type === 'summary'))).toContain(`report: ${html}`);
    const measure = `(() => {
      const maps = {};
      for (const svg of document.querySelectorAll('svg.treemap')) {
        const box = svg.getBoundingClientRect();
        const leaves = [...svg.querySelectorAll('rect.leaf')].map((r) => {
          const b = r.getBoundingClientRect();
          return { name: r.dataset.name, bytes: Number(r.dataset.bytes), kept: r.classList.contains('kept'), x: b.x - box.x, y: b.y - box.y, w: b.width, h: b.height };
        });
        maps[svg.id] = { w: box.width, h: box.height, leaves, labels: svg.querySelectorAll('text').length };
      }
      return { maps, headings: [...document.querySelectorAll('h2')].map((h) => h.textContent), title: document.title };
    })()`;
    const shot = process.env.ROCMFLOW_REPORT_SCREENSHOT;
    const r = await visit<{ maps: Record<string, { w: number; h: number; leaves: { name: string; bytes: number; kept: boolean; x: number; y: number; w: number; h: number }[]; labels: number }>; headings: string[]; title: string }>(
      pathToFileURL(html).href, measure, { width: 1200, height: 1400, screenshot: true },
    );
    expect(r.errors).toEqual([]);
    expect(r.requests).toEqual([pathToFileURL(html).href]);
    expect(r.value.title).toBe('rocmflow: cpu runtime report');
    expect(r.value.headings).toEqual(expect.arrayContaining(['Images', 'What is in the runtime', 'Why files are there', 'Verification', 'Timings of trim-runtime', 'Reproducibility record']));
    const full = r.value.maps['treemap-full']!;
    const trimmed = r.value.maps['treemap-trimmed']!;
    expect(full.w).toBeGreaterThan(600);
    expect(trimmed.leaves.length).toBe(report.trimmed.files);
    expect(full.leaves.filter((l) => l.kept).length).toBe(report.trimmed.files);
    expect(full.labels).toBeGreaterThan(5);
    for (const m of [full, trimmed]) {
      for (const l of m.leaves) {
        expect(l.x).toBeGreaterThanOrEqual(-0.5);
        expect(l.y).toBeGreaterThanOrEqual(-0.5);
        expect(l.x + l.w).toBeLessThanOrEqual(m.w + 0.5);
        expect(l.y + l.h).toBeLessThanOrEqual(m.h + 0.5);
      }
      // within a directory every file is drawn at one scale: area / bytes is the same for all of them
      const byDir = new Map<string, typeof m.leaves>();
      for (const l of m.leaves) if (l.name.startsWith('/') && l.w * l.h > 400) byDir.set(dirname(l.name), [...(byDir.get(dirname(l.name)) ?? []), l]);
      for (const leaves of byDir.values()) {
        const scale = leaves.map((l) => (l.w * l.h) / l.bytes);
        for (const s of scale) expect(Math.abs(s / scale[0]! - 1)).toBeLessThan(0.05);
      }
    }
    expect(r.png!.subarray(1, 4).toString()).toBe('PNG');
    if (shot) {
      mkdirSync(dirname(shot), { recursive: true });
      writeFileSync(shot, r.png!);
    }
  }, 300_000);
});
