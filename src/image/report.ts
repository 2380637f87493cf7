/** Sizes of one image, as the report compares them. */
export interface ImageSize {
  name: string;
  /** Sum of the uncompressed layer tars. */
  uncompressedBytes: number;
  /** Compressed size: one number (zstd), or per format when several were produced. */
  compressedBytes: number | Partial<Record<CompressedFormat, number>>;
  files: number;
  layers: number;
}

export type CompressedFormat = 'zstd' | 'gzip';

export interface SizeReportInput {
  images: readonly ImageSize[];
  /** The image the others are compared with. @default the one named "full", else the first */
  baseline?: string;
  /** @default "Image sizes" */
  title?: string;
}

const FORMATS: readonly CompressedFormat[] = ['zstd', 'gzip'];

/**
 * A Markdown table comparing images (e.g. the full and the minimal runtime)
 * uncompressed and compressed, with human sizes, compression ratios and how
 * much smaller each is than the baseline.
 */
export function sizeReport(input: SizeReportInput): string {
  const images = input.images;
  if (!images.length) return `## ${input.title ?? 'Image sizes'}\n\n(no images)\n`;
  const per = images.map((i) => ({ ...i, c: typeof i.compressedBytes === 'number' ? { zstd: i.compressedBytes } : i.compressedBytes }));
  const formats = FORMATS.filter((f) => per.some((i) => i.c[f] !== undefined));
  const base = per.find((i) => i.name === (input.baseline ?? 'full')) ?? per[0]!;
  const head = ['image', 'files', 'layers', 'uncompressed', ...formats];
  const rows = per.map((i) => [
    i.name,
    i.files.toLocaleString('en-US'),
    String(i.layers),
    humanBytes(i.uncompressedBytes),
    ...formats.map((f) => {
      const v = i.c[f];
      return v === undefined ? '—' : `${humanBytes(v)} (${percent(v, i.uncompressedBytes)})`;
    }),
  ]);
  const lines = [
    `## ${input.title ?? 'Image sizes'}`,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ];
  const others = per.filter((i) => i !== base);
  if (others.length) lines.push('');
  for (const o of others) {
    const parts = [`${smaller(base.uncompressedBytes, o.uncompressedBytes)} uncompressed`];
    for (const f of formats) {
      const a = base.c[f];
      const b = o.c[f];
      if (a !== undefined && b !== undefined) parts.push(`${smaller(a, b)} ${f}`);
    }
    const files = base.files ? `, ${o.files.toLocaleString('en-US')} of ${base.files.toLocaleString('en-US')} files` : '';
    lines.push(`- **${cell(o.name)}** vs **${cell(base.name)}**: ${parts.join(', ')}${files}.`);
  }
  return `${lines.join('\n')}\n`;
}

/** 1536 → "1.5 KiB"; binary units, three significant digits. */
export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) (v /= 1024), (u += 1);
  if (u === 0) return `${n} B`;
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[u]}`;
}

function percent(part: number, whole: number): string {
  if (!whole) return '—';
  const p = (part / whole) * 100;
  return `${p >= 10 ? p.toFixed(0) : p.toFixed(1)}%`;
}

/** "7.2× smaller (13.8%)" or "1.1× larger (110%)". */
function smaller(base: number, other: number): string {
  if (!base || !other) return `${humanBytes(other)} against ${humanBytes(base)}`;
  const r = base / other;
  return r >= 1 ? `${r.toFixed(1)}× smaller (${percent(other, base)})` : `${(1 / r).toFixed(1)}× larger (${percent(other, base)})`;
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
