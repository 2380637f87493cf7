// rocmflow runs from TypeScript sources with no build step for the user:
// on start it checks (one stat per source file) whether its compiled
// mirror is current and, if not, transpiles src/, tasks/ and plugins/ with
// esbuild (file by file, same layout) in about a tenth of a second. The
// mirror then loads as plain JavaScript, with no loader hooks in the way;
// tsx is registered only when a user's TypeScript config or plugin loads.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const DIRS = ['src', 'tasks', 'plugins'];

function sources() {
  const out = [];
  const walk = (d) => {
    let names;
    try {
      names = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of names) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
    }
  };
  for (const d of DIRS) walk(join(ROOT, d));
  return out.sort();
}

function signature(files) {
  const h = createHash('sha256');
  h.update(readFileSync(join(ROOT, 'package.json')));
  for (const f of files) {
    const st = statSync(f);
    h.update(`${relative(ROOT, f)}:${st.size}:${st.mtimeMs}\n`);
  }
  return h.digest('hex');
}

function mirrorDir() {
  const inPackage = join(ROOT, 'node_modules', '.cache', 'rocmflow-build');
  try {
    mkdirSync(inPackage, { recursive: true });
    return inPackage;
  } catch {
    return join(tmpdir(), `rocmflow-build-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}`);
  }
}

/** Returns the directory holding the compiled tree (src/, tasks/, plugins/, package.json). */
export async function compiledRoot() {
  if (process.env.ROCMFLOW_NO_BUILD_CACHE) return null;
  const files = sources();
  const sig = signature(files);
  const base = mirrorDir();
  const current = join(base, sig.slice(0, 16));
  if (existsSync(join(current, '.complete'))) return current;
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
    if (d === sig.slice(0, 16)) continue;
    try {
      if (Date.now() - statSync(join(base, d)).mtimeMs > 86_400_000) rmSync(join(base, d), { recursive: true, force: true });
    } catch {}
  }
  return current;
}
