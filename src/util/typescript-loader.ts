/**
 * User configs and plugins may be TypeScript. Like Vite does for its config,
 * each one is bundled with esbuild (its own relative imports inlined, npm
 * packages left as imports) into a temporary .mjs beside it, imported, and
 * the temporary file removed. No loader hooks stay registered, so
 * rocmflow's own precompiled modules load at full speed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isBuiltin } from 'node:module';
import { RocmflowError } from '../errors.js';
import { RUNNING_ROOT, SOURCE_ROOT } from './source-root.js';
import { privateDir } from './private-dir.js';
import { isLongLived } from './long-lived.js';

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

/**
 * `size:mtimeMs:ctimeMs:ino` of a file, or `missing`: what the per-user
 * cache's entries are checked against. The ctime and inode catch a file put
 * in place with its old size and mtime (`cp -p`, `rsync -a`, a rename).
 */
export function fileStamp(f: string): string {
  try {
    const st = statSync(f);
    return `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}`;
  } catch {
    return 'missing';
  }
}

/**
 * A stamp taken within two seconds of a change may not see the next one
 * (the file can change again within the clock's tick): git's racy-clean
 * rule. Entries holding such a stamp are not written.
 */
export function settledStamp(stamp: string): boolean {
  const ctime = Number(stamp.split(':')[2]);
  return stamp === 'missing' || (Number.isFinite(ctime) && Date.now() - ctime > 2000);
}

interface CacheEntry {
  inputs: Record<string, string>;
  code: string;
  /** In a long-lived process: what in the bundle it could not follow when it changes (see followProblems). */
  problems?: string[];
}

function cached(file: string): { entry: string | null; hit: CacheEntry | null } {
  const dir = privateDir(CACHE_DIR);
  if (!dir) return { entry: null, hit: null };
  // the bundle names this rocmflow build's modules by path: key on both (and on the
  // long-lived process's kind of bundle, which differs: see compile)
  const entry = join(dir, `${createHash('sha256').update(`${file}\0${RUNNING_ROOT}${isLongLived() ? '\0long-lived' : ''}`).digest('hex').slice(0, 24)}.json`);
  try {
    const c = JSON.parse(readFileSync(entry, 'utf8')) as CacheEntry;
    if (isLongLived() && !Array.isArray(c.problems)) return { entry, hit: null };
    if (Object.entries(c.inputs).every(([f, st]) => fileStamp(f) === st)) return { entry, hit: c };
  } catch {}
  return { entry, hit: null };
}

/**
 * Files that change how a bundle's imports resolve without being among its
 * inputs: every package.json (`imports`, `exports`, `type`) and
 * tsconfig/jsconfig (`paths`, `baseUrl`) from each input's directory up.
 */
function resolutionFiles(inputs: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const f of inputs) for (let d = dirname(f); !dirs.has(d); d = dirname(d)) {
    dirs.add(d);
    if (d === dirname(d)) break;
  }
  return [...dirs].flatMap((d) => ['package.json', 'tsconfig.json', 'jsconfig.json'].map((n) => join(d, n)));
}

const JS = /\.(c|m)?js$/;

/**
 * What a long-lived process could not see change in a bundle: an npm
 * package it imports (Node keeps the first one it loaded), a `require()` or
 * `import()` of anything but a Node built-in, and for JavaScript files what
 * Node itself would not load the way the bundler did (a bare name or `#`
 * import resolved by a tsconfig or package.json mapping, JSON without
 * `with { type: 'json' }`). The server declines a run whose config or
 * plugins have any, and the CLI loads them as it always does.
 */
function followProblems(meta: { inputs: Record<string, { imports: { path: string; external?: boolean; original?: string; with?: Record<string, string> }[] }> }, code: string): string[] {
  const problems: string[] = [];
  for (const [from, input] of Object.entries(meta.inputs)) {
    const js = JS.test(from);
    for (const imp of input.imports) {
      const spec = imp.original ?? imp.path;
      if (imp.external) {
        if (!isBuiltin(imp.path) && !imp.path.startsWith(RUNNING_ROOT + '/')) problems.push(`imports the package ${spec}`);
      } else if (js && !/^[./]/.test(spec)) problems.push(`imports ${spec} through a bundler mapping Node does not apply`);
      // Node takes a relative path as written: no extension added, no directory index
      else if (js && resolve('/', dirname(from), spec) !== resolve('/', imp.path)) problems.push(`imports ${spec}, which Node would not find as written`);
      else if (js && imp.path.endsWith('.json') && imp.with?.type !== 'json') problems.push(`imports ${spec} without with { type: 'json' }`);
    }
  }
  // a template-literal import() the bundler expanded to the files it found then (a new one would be missed)
  if (/\b__glob\b/.test(code)) problems.push('calls import() with a pattern');
  for (const m of code.matchAll(/\b(require|import)\s*\(\s*(?:(["'])([^"'\\]*)\2\s*\))?/g)) {
    if (m[3] === undefined || !(isBuiltin(m[3]) || m[3].startsWith(RUNNING_ROOT + '/'))) problems.push(`calls ${m[1]}(${m[3] === undefined ? '…' : JSON.stringify(m[3])})`);
  }
  return [...new Set(problems)];
}

async function compile(file: string, entry: string | null): Promise<CacheEntry> {
  const { build } = await import('esbuild');
  const longLived = isLongLived();
  // a long-lived process bundles JavaScript too, to see it change, and must then not lend it what
  // Node would not give it (require, __dirname); nor keep source maps it has no use for
  const js = JS.test(file);
  let result: CacheEntry;
  try {
    const out = await build({
      entryPoints: [file], bundle: true, write: false, platform: 'node', format: 'esm', target: 'node20', metafile: true,
      packages: 'external', logLevel: 'silent', sourcemap: longLived ? false : 'inline',
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
      ...(longLived && js
        ? {}
        : { banner: { js: "import { createRequire as __rocmflowRequire } from 'node:module'; const require = __rocmflowRequire(import.meta.url);" } }),
      // keep import.meta.dirname/url meaning the original file's location
      define: {
        ...(longLived && js ? {} : { __dirname: JSON.stringify(dirname(file)), __filename: JSON.stringify(file) }),
        'import.meta.dirname': JSON.stringify(dirname(file)), 'import.meta.filename': JSON.stringify(file), 'import.meta.url': JSON.stringify(pathToFileURL(file).href),
      },
    });
    const code = out.outputFiles[0]!.text;
    const sources = Object.keys(out.metafile!.inputs).map((f) => resolve('/', f));
    const inputs = Object.fromEntries([...sources, ...resolutionFiles(sources)].map((f) => [f, fileStamp(f)]));
    result = { inputs, code, ...(longLived ? { problems: followProblems(out.metafile as never, code) } : {}) };
    if (entry && Object.values(inputs).every(settledStamp)) writeCacheEntry(entry, JSON.stringify(result));
  } catch (e) {
    if (e instanceof RocmflowError) throw e;
    const first = (e as { errors?: { text: string; location?: { file: string; line: number } }[] }).errors?.[0];
    if (!first) throw e;
    const where = first.location ? `${first.location.file}:${first.location.line}: ` : '';
    throw new RocmflowError('E_COMPILE', `${file}: ${where}${first.text}`, { exitCode: 2 });
  }
  return result;
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

/**
 * Where a bundle of `file` is written to be imported: beside it, except for
 * rocmflow's own sources (run from TypeScript, as under vitest), whose
 * directories the compiled mirror's check watches (bin/build-cache.js): a
 * file appearing there for a moment made every start look at the trees
 * again, and a server take its own code for changed. Their bundles go
 * under the package's node_modules/.cache, from where the same packages
 * resolve.
 */
function tempDirFor(file: string): string {
  const rel = relative(SOURCE_ROOT, file);
  if (rel.startsWith('..') || !/^(src|tasks|plugins)\//.test(rel)) return dirname(file);
  const dir = join(SOURCE_ROOT, 'node_modules', '.cache', 'rocmflow-ts');
  try {
    mkdirSync(dir, { recursive: true });
    return dir;
  } catch {
    return dirname(file);
  }
}

async function importTypeScript(file: string): Promise<Record<string, unknown>> {
  const { entry, hit } = cached(file);
  const bundle = hit ?? (await compile(file, entry));
  if (bundle.problems?.length) throw new Error(`${file} ${bundle.problems[0]}: a long-lived process cannot see that change`);
  const code = bundle.code;
  // beside the file, so that the packages it imports resolve as from the file itself; a long-lived
  // process imports no packages (followProblems), so its bundles go to its private directory, not
  // into the project on every request (where another run's input walk could see them)
  const privateTmp = isLongLived() ? privateDir(CACHE_DIR) : null;
  const tmp = join(privateTmp ?? tempDirFor(file), `.${basename(file)}.${process.pid}-${randomBytes(4).toString('hex')}.mjs`);
  writeFileSync(tmp, code);
  try {
    return await import(pathToFileURL(tmp).href);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * import() a config or plugin file, compiling TypeScript first. In a
 * long-lived process (the server) every file that is not rocmflow's own
 * goes through the bundler, JavaScript too: Node's module cache would keep
 * answering with the file as it was at first import, and its imports with
 * it, while a bundle is checked against every file that went into it on
 * each load (and refused when it holds what cannot be checked).
 */
export async function importFile(file: string): Promise<Record<string, unknown>> {
  if (isLongLived() ? !file.startsWith(RUNNING_ROOT + '/') : needsCompile(file) && !process.env.ROCMFLOW_NO_BUILD_CACHE) return importTypeScript(file);
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
