/**
 * Finds and loads rocmflow.config.ts (cosmiconfig), then validates it.
 * TypeScript configs are imported through the tsx loader the CLI registered.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { cosmiconfig } from 'cosmiconfig';
import { RocmflowError, usageError } from '../errors.js';
import { validateUserConfig } from './resolve.js';
import { defaultExport, importFile } from '../util/typescript-loader.js';
import type { UserConfig } from './types.js';

const SEARCH_PLACES = ['rocmflow.config.ts', 'rocmflow.config.mts', 'rocmflow.config.js', 'rocmflow.config.mjs'];

async function importLoader(filepath: string): Promise<unknown> {
  try {
    const mod = await importFile(filepath);
    return defaultExport(mod) ?? mod;
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new RocmflowError('E_CONFIG_LOAD', `${filepath}: cannot load config: ${msg}`, { exitCode: 2, cause: e });
  }
}

export interface LoadedConfig {
  config: UserConfig;
  /** Absolute path of the config file, or null when none was found. */
  file: string | null;
  projectRoot: string;
}

/** The nearest config file at or above `dir`. */
function findUp(dir: string): string | null {
  for (let d = resolve(dir); ; d = dirname(d)) {
    for (const name of SEARCH_PLACES) {
      const f = resolve(d, name);
      if (existsSync(f)) return f;
    }
    if (dirname(d) === d) return null;
  }
}

/** Load `--config FILE`, or search upwards from `cwd`. No config is fine: defaults apply. */
export async function loadConfig(cwd: string, explicit?: string): Promise<LoadedConfig> {
  const loaders = { '.ts': importLoader, '.mts': importLoader, '.js': importLoader, '.mjs': importLoader };
  const explorer = cosmiconfig('rocmflow', { searchPlaces: SEARCH_PLACES, loaders, cache: false });
  let file: string | null = null;
  if (explicit) {
    file = resolve(cwd, explicit);
    if (!existsSync(file)) throw usageError('E_CONFIG', `${explicit}: config file not found`);
  } else {
    file = findUp(cwd);
  }
  if (!file) return { config: {}, file: null, projectRoot: cwd };
  const found = await explorer.load(file);
  if (!found) return { config: {}, file, projectRoot: dirname(file) };
  let raw = found.config;
  if (typeof raw === 'function') raw = await (raw as () => unknown)();
  const config = validateUserConfig(raw ?? {}, found.filepath);
  return { config, file: found.filepath, projectRoot: dirname(found.filepath) };
}
