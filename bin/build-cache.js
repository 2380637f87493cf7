// rocmflow runs from TypeScript sources with no build step for the user:
// on start it checks whether its compiled mirror is current and, if not,
// transpiles src/, tasks/ and plugins/ with esbuild (file by file, same
// layout) in about a tenth of a second. The mirror then loads as plain
// JavaScript, with no loader hooks in the way; tsx is registered only when
// a user's TypeScript config or plugin loads.
//
// The check is one stat per source file and per source directory, against
// the stamps the last full look recorded (`current.json`): an edit changes
// its file's size or mtime, and a file added, removed or renamed changes
// its directory's mtime. Only when a stamp differs does it list the trees
// again and hash every name, size and mtime into the mirror's signature.
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const DIRS = ['src', 'tasks', 'plugins'];

/** `size:mtimeMs` of a path, or `-` when it is missing. */
function stampOf(path) {
  const st = statSync(path, { throwIfNoEntry: false });
  return st ? `${st.size}:${st.mtimeMs}` : '-';
}

/** The sources (paths relative to ROOT, sorted) and every directory looked into, with their stamps. */
function survey() {
  const files = [];
  const dirs = [];
  const walk = (rel) => {
    dirs.push([rel, stampOf(join(ROOT, rel))]);
    let names;
    try {
      names = readdirSync(join(ROOT, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of names) {
      const p = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) files.push(p);
    }
  };
  for (const d of DIRS) walk(d);
  files.sort();
  return { files, dirs, stamps: files.map((f) => [f, stampOf(join(ROOT, f))]) };
}

function signature(stamps) {
  const h = createHash('sha256');
  h.update(readFileSync(join(ROOT, 'package.json')));
  h.update(stamps.map(([f, st]) => `${f}:${st}\n`).join(''));
  return h.digest('hex');
}

/** The mirror the recorded stamps name, when every one of them still holds. */
function recorded(base) {
  let rec;
  try {
    rec = JSON.parse(readFileSync(join(base, 'current.json'), 'utf8'));
  } catch {
    return null;
  }
  if (typeof rec?.sig !== 'string' || !/^[0-9a-f]{64}$/.test(rec.sig) || !Array.isArray(rec.stamps) || !Array.isArray(rec.dirs)) return null;
  if (stampOf(join(ROOT, 'package.json')) !== rec.pkg) return null;
  for (const [p, st] of rec.dirs) if (stampOf(join(ROOT, p)) !== st) return null;
  for (const [p, st] of rec.stamps) if (stampOf(join(ROOT, p)) !== st) return null;
  return rec.sig;
}

function record(base, sig, look, pkg) {
  const tmp = join(base, `current.json.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, JSON.stringify({ sig, pkg, dirs: look.dirs, stamps: look.stamps }));
    renameSync(tmp, join(base, 'current.json'));
  } catch {
    // only costs the next start a full look
    rmSync(tmp, { force: true });
  }
}

function mirrorDir() {
  const inPackage = join(ROOT, 'node_modules', '.cache', 'rocmflow-build');
  try {
    mkdirSync(inPackage, { recursive: true });
    return inPackage;
  } catch {
    // a read-only checkout: the system's tmp, which every user can write,
    // so only a directory this user made and alone can write (what it
    // holds is run); else no mirror, and the sources run through tsx
    const uid = process.getuid?.() ?? 0;
    const dir = join(tmpdir(), `rocmflow-build-${uid}-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}`);
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch {}
    const st = lstatSync(dir, { throwIfNoEntry: false });
    if (st?.isDirectory() && st.uid === uid && !(st.mode & 0o022)) return dir;
    process.stderr.write(`rocmflow: warning: ${dir}: not a directory of this user's alone; running the sources through tsx\n`);
    return null;
  }
}

/**
 * The mirror the last look recorded, while every stamp it recorded still
 * holds; null when a source changed since (nothing is built). A long-lived
 * process (the server) asks this to learn whether it still runs the
 * sources as they are.
 */
export function currentRoot() {
  if (process.env.ROCMFLOW_NO_BUILD_CACHE) return null;
  const base = mirrorDir();
  const sig = base && recorded(base);
  return sig && existsSync(join(base, sig.slice(0, 16), '.complete')) ? join(base, sig.slice(0, 16)) : null;
}

/** Returns the directory holding the compiled tree (src/, tasks/, plugins/, package.json). */
export async function compiledRoot() {
  if (process.env.ROCMFLOW_NO_BUILD_CACHE) return null;
  const base = mirrorDir();
  if (!base) return null;
  const known = recorded(base);
  if (known && existsSync(join(base, known.slice(0, 16), '.complete'))) return join(base, known.slice(0, 16));
  // stamps taken before the signature: a file changed after this look
  // fails the next start's check and is built again then
  const pkg = stampOf(join(ROOT, 'package.json'));
  const look = survey();
  const sig = signature(look.stamps);
  const current = join(base, sig.slice(0, 16));
  if (existsSync(join(current, '.complete'))) {
    record(base, sig, look, pkg);
    return current;
  }
  const files = look.files.map((f) => join(ROOT, f));
  const { build } = await import('esbuild');
  const tmp = `${current}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  await build({
    entryPoints: files,
    outdir: tmp,
    outbase: ROOT,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    bundle: false,
    logLevel: 'error',
  });
  copyFileSync(join(ROOT, 'package.json'), join(tmp, 'package.json'));
  // lets the compiled code map imports of the TypeScript sources onto itself
  writeFileSync(join(tmp, '.source-root'), ROOT);
  if (!base.startsWith(join(ROOT, 'node_modules'))) symlinkSync(join(ROOT, 'node_modules'), join(tmp, 'node_modules'));
  writeFileSync(join(tmp, '.complete'), sig);
  try {
    renameSync(tmp, current);
  } catch {
    // another process finished the same build first
    rmSync(tmp, { recursive: true, force: true });
  }
  // older builds of this checkout: a process started before the sources
  // changed may still be running from one, so only those idle for a day go
  for (const d of readdirSync(base)) {
    if (d === sig.slice(0, 16) || d === 'current.json') continue;
    try {
      if (Date.now() - statSync(join(base, d)).mtimeMs > 86_400_000) rmSync(join(base, d), { recursive: true, force: true });
    } catch {}
  }
  record(base, sig, look, pkg);
  return current;
}
