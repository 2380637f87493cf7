/**
 * Finds and loads the project's config, then validates it.
 *
 * - `rocmflow.config.ts` (`.mts`, `.js`, `.mjs`): imported (TypeScript is
 *   compiled first, util/typescript-loader.ts). It may export a function.
 * - `.rocmflowrc.json`, `.rocmflowrc.yaml`, `.rocmflowrc.yml`, `.rocmflowrc`
 *   (JSON or YAML), or a `"rocmflow"` key in `package.json`: read by
 *   cosmiconfig, which is loaded only then (it, with its meta-config
 *   search, cost a code config's no-op run about 8 ms; BENCHMARKS.md).
 *
 * The search goes upwards from the current directory; in each directory the
 * names above are tried in that order, and the first found wins.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { RocmflowError, usageError } from '../errors.js';
import { validateUserConfig } from './resolve.js';
import { defaultExport, importFile } from '../util/typescript-loader.js';
import type { UserConfig } from './types.js';

const CODE_NAMES = ['rocmflow.config.ts', 'rocmflow.config.mts', 'rocmflow.config.js', 'rocmflow.config.mjs'];
const RC_NAMES = ['.rocmflowrc.json', '.rocmflowrc.yaml', '.rocmflowrc.yml', '.rocmflowrc'];
const CODE_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs']);
const SEARCH_NAMES = [...CODE_NAMES, ...RC_NAMES];

function loadError(file: string, e: unknown): RocmflowError {
  const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
  return new RocmflowError('E_CONFIG_LOAD', `${file}: cannot load config: ${msg}`, { exitCode: 2, cause: e });
}

async function importConfig(file: string): Promise<unknown> {
  try {
    const mod = await importFile(file);
    return defaultExport(mod) ?? mod;
  } catch (e) {
    throw loadError(file, e);
  }
}

/**
 * A data config is data: no `$import` of other files (cosmiconfig would
 * read any path it names, and a wrong one ends up in an error message), and
 * a tree (YAML aliases could make a few lines expand exponentially when the
 * options are walked).
 */
function checkData(value: unknown, file: string): void {
  const seen = new Set<object>();
  const walk = (v: unknown, path: string): void => {
    if (typeof v !== 'object' || v === null) return;
    if (seen.has(v)) throw new RocmflowError('E_CONFIG_LOAD', `${file}: ${path || 'the config'}: a YAML alias or repeated node; write the value out`, { exitCode: 2 });
    seen.add(v);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
    else for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
  };
  walk(value, '');
  if (typeof value === 'object' && value !== null && Object.hasOwn(value, '$import'))
    throw new RocmflowError('E_CONFIG_LOAD', `${file}: $import: not supported; rocmflow reads one config file`, { exitCode: 2 });
}

/** cosmiconfig's parse errors say "YAML Error in FILE:" and then the reason, over several lines: the reason alone. */
function parseReason(e: unknown): string {
  const lines = (e instanceof Error ? e.message : String(e)).split('\n').map((l) => l.trim());
  return lines.find((l, i) => l && !(i === 0 && /^(JSON|YAML) Error in /.test(l))) ?? lines[0] ?? '';
}

/** JSON, YAML, or package.json's "rocmflow" key, through cosmiconfig. */
async function readDataConfig(file: string): Promise<unknown> {
  const { cosmiconfig, defaultLoaders } = await import('cosmiconfig');
  const checked = (load: (f: string, c: string) => unknown) => async (f: string, content: string) => {
    const v = await load(f, content);
    checkData(basename(f) === 'package.json' ? (v as { rocmflow?: unknown } | null)?.rocmflow : v, f);
    return v;
  };
  const loaders = {
    '.json': checked(defaultLoaders['.json']),
    '.yaml': checked(defaultLoaders['.yaml']),
    '.yml': checked(defaultLoaders['.yml']),
    noExt: checked(defaultLoaders.noExt),
  };
  const explorer = cosmiconfig('rocmflow', { searchPlaces: [...RC_NAMES, 'package.json'], loaders, cache: false });
  try {
    return (await explorer.load(file))?.config;
  } catch (e) {
    if (e instanceof RocmflowError) throw e;
    throw new RocmflowError('E_CONFIG_LOAD', `${file}: cannot load config: ${parseReason(e)}`, { exitCode: 2, cause: e });
  }
}

export interface LoadedConfig {
  config: UserConfig;
  /** Absolute path of the config file, or null when none was found. */
  file: string | null;
  projectRoot: string;
}

/** A package.json counts only when it has a "rocmflow" key (one that does not parse is npm's to report). */
function packageHasConfig(file: string): boolean {
  try {
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return typeof pkg === 'object' && pkg !== null && Object.hasOwn(pkg, 'rocmflow');
  } catch {
    return false;
  }
}

/** The nearest config at or above `dir`. */
function findUp(dir: string): string | null {
  for (let d = resolve(dir); ; d = dirname(d)) {
    for (const name of SEARCH_NAMES) {
      const f = resolve(d, name);
      if (existsSync(f)) return f;
    }
    const pkg = resolve(d, 'package.json');
    if (existsSync(pkg) && packageHasConfig(pkg)) return pkg;
    if (dirname(d) === d) return null;
  }
}

/** Load `--config FILE`, or search upwards from `cwd`. No config is fine: defaults apply. */
export async function loadConfig(cwd: string, explicit?: string): Promise<LoadedConfig> {
  let file: string | null = null;
  if (explicit) {
    file = resolve(cwd, explicit);
    if (!existsSync(file)) throw usageError('E_CONFIG', `${explicit}: config file not found`);
  } else {
    file = findUp(cwd);
  }
  if (!file) return { config: {}, file: null, projectRoot: cwd };
  const isCode = CODE_EXTENSIONS.has(extname(file));
  let raw = isCode ? await importConfig(file) : await readDataConfig(file);
  if (typeof raw === 'function') raw = await (raw as () => unknown)();
  const config = validateUserConfig(raw ?? {}, file);
  return { config, file, projectRoot: dirname(file) };
}
