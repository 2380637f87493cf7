/**
 * User configs and plugins may be TypeScript. Like Vite does for its config,
 * each one is bundled with esbuild (its own relative imports inlined, npm
 * packages left as imports) into a temporary .mjs beside it, imported, and
 * the temporary file removed. No loader hooks stay registered, so
 * rocmflow's own precompiled modules load at full speed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RocmflowError } from '../errors.js';
import { RUNNING_ROOT, SOURCE_ROOT } from './source-root.js';
import { privateDir } from './private-dir.js';

export function needsCompile(file: string): boolean {
  return /\.(c|m)?ts$/.test(file);
}

/**
 * A config or plugin that imports rocmflow (by package name, or by path into
 * its sources) gets the very modules the engine runs, not a bundled copy:
 * one `RocmflowError` class, one schema module.
 */
function rocmflowModule(spec: string, importer: string): { path: string; external: boolean } | null {
  let target: string | null = null;
  if (spec === 'rocmflow') target = join(SOURCE_ROOT, 'src/index.ts');
  else if (spec.startsWith('rocmflow/')) target = join(SOURCE_ROOT, 'src', `${spec.slice('rocmflow/'.length)}/index.ts`);
  else if (spec.startsWith('.') || spec.startsWith('/')) target = resolve(dirname(importer), spec);
  if (!target) return null;
  const rel = relative(SOURCE_ROOT, target);
  if (rel.startsWith('..') || !/^(src|tasks|plugins)\//.test(rel)) return null;
  const js = join(RUNNING_ROOT, rel.replace(/\.(c|m)?ts$/, '.js'));
  if (existsSync(js)) return { path: js, external: true };
  // running from the TypeScript sources (tsx, vitest): bundle the sources in
  return spec.startsWith('rocmflow') && existsSync(target) ? { path: target, external: false } : null;
}

/**
 * Compiled bundles are remembered with the size and mtime of every file
 * that went into them, so a warm start spawns no compiler (like tsx's cache).
 * The directory is under the system's tmp, so it is used only when it is
 * this user's alone (util/private-dir.ts): what it holds gets imported.
 */
export const CACHE_DIR = join(tmpdir(), `rocmflow-ts-cache-${userInfo().uid}`);

/** `size:mtimeMs` of a file, or `missing`: what the per-user cache's entries are checked against. */
export function fileStamp(f: string): string {
  try {
    const st = statSync(f);
    return `${st.size}:${st.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

function cached(file: string): { entry: string | null; code: string | null } {
  const dir = privateDir(CACHE_DIR);
  if (!dir) return { entry: null, code: null };
  // the bundle names this rocmflow build's modules by path: key on both
  const entry = join(dir, `${createHash('sha256').update(`${file}\0${RUNNING_ROOT}`).digest('hex').slice(0, 24)}.json`);
  try {
    const c = JSON.parse(readFileSync(entry, 'utf8')) as { inputs: Record<string, string>; code: string };
    if (Object.entries(c.inputs).every(([f, st]) => fileStamp(f) === st)) return { entry, code: c.code };
  } catch {}
  return { entry, code: null };
}

async function compile(file: string, entry: string | null): Promise<string> {
  const { build } = await import('esbuild');
  let code: string;
  try {
    const out = await build({
      entryPoints: [file], bundle: true, write: false, platform: 'node', format: 'esm', target: 'node20', metafile: true,
      packages: 'external', logLevel: 'silent', sourcemap: 'inline',
      // the metafile's paths are relative to this, not to wherever the process is now (module-closure.ts)
      absWorkingDir: '/',
      plugins: [
        {
          name: 'rocmflow-self',
          setup(b) {
            b.onResolve({ filter: /.*/ }, (args) => {
              if (args.kind === 'entry-point') return undefined;
              return rocmflowModule(args.path, args.importer) ?? undefined;
            });
          },
        },
      ],
      // CommonJS habits (require, __dirname) keep working as they do under tsx
      banner: { js: "import { createRequire as __rocmflowRequire } from 'node:module'; const require = __rocmflowRequire(import.meta.url);" },
      // keep import.meta.dirname/url meaning the original file's location
      define: { __dirname: JSON.stringify(dirname(file)), __filename: JSON.stringify(file), 'import.meta.dirname': JSON.stringify(dirname(file)), 'import.meta.filename': JSON.stringify(file), 'import.meta.url': JSON.stringify(pathToFileURL(file).href) },
    });
    code = out.outputFiles[0]!.text;
    const inputs = Object.fromEntries(Object.keys(out.metafile!.inputs).map((f) => resolve('/', f)).map((f) => [f, fileStamp(f)]));
    if (entry) writeCacheEntry(entry, JSON.stringify({ inputs, code }));
  } catch (e) {
    if (e instanceof RocmflowError) throw e;
    const first = (e as { errors?: { text: string; location?: { file: string; line: number } }[] }).errors?.[0];
    if (!first) throw e;
    const where = first.location ? `${first.location.file}:${first.location.line}: ` : '';
    throw new RocmflowError('E_COMPILE', `${file}: ${where}${first.text}`, { exitCode: 2 });
  }
  return code;
}

/** Write a per-user cache entry whole (a temp name, then a rename), or not at all. */
export function writeCacheEntry(entry: string, json: string): void {
  const tmp = `${entry}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, json, { mode: 0o600 });
    renameSync(tmp, entry);
  } catch {
    // a full disk only costs the next start a compile
    rmSync(tmp, { force: true });
  }
}

async function importTypeScript(file: string): Promise<Record<string, unknown>> {
  const hit = cached(file);
  const code = hit.code ?? (await compile(file, hit.entry));
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}-${randomBytes(4).toString('hex')}.mjs`);
  writeFileSync(tmp, code);
  try {
    return await import(pathToFileURL(tmp).href);
  } finally {
    rmSync(tmp, { force: true });
  }
}

let longLived = false;

/**
 * In a long-lived process (the server) every config and plugin file that is
 * not rocmflow's own goes through the bundler, JavaScript too: Node's module
 * cache would keep answering with the file as it was at first import, and
 * its imports with it, while the bundle is checked against the size and
 * mtime of every file in it on each load.
 */
export function bundleEveryImport(): void {
  longLived = true;
}

/** import() a config or plugin file, compiling TypeScript first. */
export async function importFile(file: string): Promise<Record<string, unknown>> {
  if (!process.env.ROCMFLOW_NO_BUILD_CACHE && (needsCompile(file) || (longLived && !file.startsWith(RUNNING_ROOT + '/')))) return importTypeScript(file);
  return import(pathToFileURL(file).href);
}

/**
 * The default export of a module, also when a CommonJS-compiled ESM module
 * wraps it once more.
 */
export function defaultExport(mod: Record<string, unknown>): unknown {
  let v: unknown = 'default' in mod ? mod.default : undefined;
  if (v && typeof v === 'object' && (v as { __esModule?: boolean }).__esModule && 'default' in (v as object)) v = (v as { default: unknown }).default;
  return v;
}
