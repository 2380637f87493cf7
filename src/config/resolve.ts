/**
 * Validation of the user config and the one place where defaults are filled in.
 */
import { cpus } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { usageError } from '../errors.js';
import * as s from '../util/schema.js';
import type { ResolvedConfig, UserConfig } from './types.js';

const remoteSchema = s.object({
  url: s.string(),
  mode: s.optional(s.literal('read', 'read-write', 'auto')),
  instance: s.optional(s.string()),
  timeoutMs: s.optional(s.number({ min: 1, integer: true })),
  concurrency: s.optional(s.number({ min: 1, max: 64, integer: true })),
  requireSignature: s.optional(s.boolean()),
});

export const userConfigSchema = s.object({
  target: s.optional(s.string()),
  cacheDir: s.optional(s.string()),
  stateDir: s.optional(s.string()),
  default: s.optional(s.array(s.string())),
  jobs: s.optional(s.number({ min: 1, integer: true })),
  plugins: s.optional(s.array(s.string())),
  modelsDir: s.optional(s.string()),
  cache: s.optional(s.object({ remote: s.optional(remoteSchema) })),
  tasks: s.optional(s.record(s.record(s.unknownValue()))),
  targets: s.optional(s.record(s.record(s.unknownValue()))),
});

/** Validate a loaded config; errors name the file and the key path. */
export function validateUserConfig(raw: unknown, file: string): UserConfig {
  try {
    return userConfigSchema.parse(raw, '') as UserConfig;
  } catch (e) {
    if (e instanceof s.SchemaError) throw usageError('E_CONFIG', `${file}: ${e.message}`);
    throw e;
  }
}

export interface ResolveOptions {
  configFile: string | null;
  projectRoot: string;
  env: NodeJS.ProcessEnv;
  /** CLI overrides. */
  cacheDir?: string;
  target?: string;
  jobs?: number;
}

/**
 * A directory setting given as an empty string would resolve to the project
 * root itself (where the cache or the outputs would then be written and
 * collected): refused, naming where it came from. An empty environment
 * variable counts as unset, as in the shell.
 */
function dirSetting(name: string, ...sources: [string, string | undefined][]): string | undefined {
  for (const [where, v] of sources) {
    if (v === undefined) continue;
    if (v.trim() !== '') return v;
    if (!where.startsWith('$')) throw usageError('E_USAGE', `${where}: empty ${name}; give a directory, or leave it out for the default`);
  }
  return undefined;
}

export function resolveConfig(user: UserConfig, opts: ResolveOptions): ResolvedConfig {
  const root = opts.projectRoot;
  const configKey = (k: string) => `${opts.configFile ?? 'config'}: ${k}`;
  const cacheDir = dirSetting('cache directory', ['--cache-dir', opts.cacheDir], ['$ROCMFLOW_CACHE_DIR', opts.env.ROCMFLOW_CACHE_DIR], [configKey('cacheDir'), user.cacheDir]) ?? 'cache';
  const stateDir = dirSetting('state directory', [configKey('stateDir'), user.stateDir]) ?? '.rocmflow';
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(root, p));
  const remoteUrl = opts.env.ROCMFLOW_REMOTE_CACHE || user.cache?.remote?.url;
  const r = user.cache?.remote;
  return {
    configFile: opts.configFile,
    projectRoot: root,
    target: opts.target ?? opts.env.ROCMFLOW_TARGET ?? user.target ?? 'auto',
    cacheDir: abs(cacheDir),
    stateDir: abs(stateDir),
    default: user.default ?? ['package-image'],
    jobs: opts.jobs ?? user.jobs ?? Math.max(1, cpus().length),
    plugins: user.plugins ?? [],
    modelsDir: opts.env.MODEL_BASE_PATH ? abs(opts.env.MODEL_BASE_PATH) : user.modelsDir ? abs(user.modelsDir) : null,
    remote: remoteUrl
      ? {
          url: remoteUrl.replace(/\/+$/, ''),
          mode: (opts.env.ROCMFLOW_REMOTE_CACHE_MODE as 'read' | 'read-write' | 'auto' | undefined) ?? r?.mode ?? 'auto',
          instance: r?.instance ?? null,
          timeoutMs: r?.timeoutMs ?? 30_000,
          concurrency: r?.concurrency ?? 4,
          requireSignature: r?.requireSignature ?? Boolean(opts.env.ROCMFLOW_REMOTE_CACHE_KEY),
        }
      : null,
    tasks: user.tasks ?? {},
    targets: user.targets ?? {},
  };
}
