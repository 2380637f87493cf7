/**
 * Parsing of the listing pages that TheRock's tarballs are published under,
 * in the three forms seen in the wild:
 * - the static HTML pages (`/tarball/`, `/tarball-multi-arch/`) that embed
 *   `const files = [{"name": ..., "mtime": ...}, ...];`,
 * - the S3 bucket's XML `ListBucketResult` (paginated),
 * - a plain Apache/nginx autoindex page (mirrors), as a fallback.
 */
import { parseJsLiteral, type JsValue } from './js-literal.js';
import { RocmflowError } from '../errors.js';

/** One file listed by an index page. */
export interface IndexEntry {
  /** The file name (for S3, the object key). */
  readonly name: string;
  /** Absolute URL to download it from. */
  readonly url: string;
  /** Modification time, ISO 8601, when the page gives one. */
  readonly mtime?: string;
  /** Size in bytes, when the page gives one. */
  readonly size?: number;
}

/** What one page yielded; `next` is the URL of the following page of a paginated listing. */
export interface IndexPage {
  readonly format: 'files-array' | 's3' | 'autoindex';
  readonly entries: IndexEntry[];
  readonly next?: string;
}

/**
 * Parse one index page fetched from `pageUrl`. A page is input from
 * elsewhere: what it cannot be read as (a bad URL, an entity past U+10FFFF)
 * is one E_INDEX error naming the page, and an entry whose name is not a
 * plain file name (a `/`, `..`, a NUL, after decoding) is left out, since
 * names become download paths.
 */
export function parseIndexPage(body: string, pageUrl: string): IndexPage {
  let page: IndexPage;
  try {
    if (/<ListBucketResult[\s>]/.test(body)) page = parseS3(body, pageUrl);
    else {
      const arr = /\b(?:const|let|var)\s+files\s*=\s*\[/.exec(body);
      page = arr
        ? { format: 'files-array', entries: parseFilesArray(body, arr.index + arr[0].length - 1, pageUrl) }
        : { format: 'autoindex', entries: parseAutoindex(body, pageUrl) };
    }
  } catch (e) {
    if (e instanceof RocmflowError) throw e;
    throw new RocmflowError('E_INDEX', `index page ${pageUrl}: cannot be read: ${(e as Error).message}`);
  }
  return { ...page, entries: page.entries.filter((x) => plainName(x.name)) };
}

const plainName = (n: string) => n !== '' && n !== '.' && n !== '..' && !n.includes('/') && !n.includes('\0');

function toIso(v: JsValue | undefined): string | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return new Date(v < 1e12 ? v * 1000 : v).toISOString();
  if (typeof v === 'string' && v.trim()) {
    const n = Number(v);
    if (Number.isFinite(n)) return toIso(n);
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return new Date(t).toISOString();
  }
  return undefined;
}

function toSize(v: JsValue | undefined): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function parseFilesArray(body: string, start: number, pageUrl: string): IndexEntry[] {
  const { value } = parseJsLiteral(body, start);
  if (!Array.isArray(value)) return [];
  const out: IndexEntry[] = [];
  for (const item of value) {
    const rec = typeof item === 'string' ? { name: item } : item && typeof item === 'object' && !Array.isArray(item) ? item : null;
    const name = rec && (rec.name ?? rec.key ?? rec.file);
    if (!rec || typeof name !== 'string' || !name) continue;
    const href = typeof rec.url === 'string' ? rec.url : typeof rec.href === 'string' ? rec.href : name;
    out.push({ name: baseName(name), url: new URL(href, pageUrl).href, mtime: toIso(rec.mtime ?? rec.modified ?? rec.date), size: toSize(rec.size) });
  }
  return out;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
function unescapeXml(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (m, e: string) =>
    e[0] === '#' ? String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1))) : ENTITIES[e] ?? m,
  );
}

function tag(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml);
  return m ? unescapeXml(m[1]!.trim()) : undefined;
}

function parseS3(body: string, pageUrl: string): IndexPage {
  const page = new URL(pageUrl);
  // keys are relative to the bucket root, which is the listing URL without its query
  const bucket = new URL(page.pathname.endsWith('/') ? page.pathname : page.pathname + '/', page.origin);
  const entries: IndexEntry[] = [];
  let lastKey: string | undefined;
  for (const m of body.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
    const key = tag(m[1]!, 'Key');
    if (!key) continue;
    lastKey = key;
    const url = new URL(key.split('/').map(encodeURIComponent).join('/'), bucket).href;
    entries.push({ name: baseName(key), url, mtime: toIso(tag(m[1]!, 'LastModified')), size: toSize(tag(m[1]!, 'Size')) });
  }
  if (tag(body, 'IsTruncated') !== 'true') return { format: 's3', entries };
  const next = new URL(page.href);
  const token = tag(body, 'NextContinuationToken');
  if (token) {
    next.searchParams.set('list-type', '2');
    next.searchParams.set('continuation-token', token);
  } else {
    // ListObjects v1 gives NextMarker only with a delimiter; otherwise the last key is the marker
    const marker = tag(body, 'NextMarker') ?? lastKey;
    if (!marker) return { format: 's3', entries };
    next.searchParams.delete('list-type');
    next.searchParams.delete('continuation-token');
    next.searchParams.set('marker', marker);
  }
  return { format: 's3', entries, next: next.href };
}

const MONTHS: Record<string, string> = { jan: '01', feb: '02', mar: '03', apr: '04', may: '05', jun: '06', jul: '07', aug: '08', sep: '09', oct: '10', nov: '11', dec: '12' };

function parseAutoindex(body: string, pageUrl: string): IndexEntry[] {
  const out: IndexEntry[] = [];
  const seen = new Set<string>();
  for (const m of body.matchAll(/<a\s[^>]*?href\s*=\s*(["'])([^"']+)\1[^>]*>[\s\S]*?<\/a>([^\n<]*(?:<\/td>\s*<td[^>]*>[^<]*)*)/gi)) {
    const href = unescapeXml(m[2]!);
    if (href.startsWith('?') || href.startsWith('#') || href.endsWith('/')) continue;
    const url = new URL(href, pageUrl);
    const name = decodeURIComponent(baseName(url.pathname));
    if (!name || seen.has(url.href)) continue;
    seen.add(url.href);
    const rest = m[3]!.replace(/<[^>]+>/g, ' ');
    // nginx: "30-Apr-2026 10:00   2345678"; Apache: "2026-04-30 10:00   2.3G"
    let mtime: string | undefined;
    const ng = /(\d{2})-(\w{3})-(\d{4}) (\d{2}:\d{2})/.exec(rest);
    const ap = /(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2})/.exec(rest);
    if (ng && MONTHS[ng[2]!.toLowerCase()]) mtime = toIso(`${ng[3]}-${MONTHS[ng[2]!.toLowerCase()]}-${ng[1]}T${ng[4]}:00Z`);
    else if (ap) mtime = toIso(`${ap[1]}T${ap[2]}:00Z`);
    const sz = /(?:\d{2}:\d{2})\s+(\d+)\s*$/.exec(rest.trimEnd());
    out.push({ name, url: url.href, mtime, size: sz ? Number(sz[1]) : undefined });
  }
  return out;
}

function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}
