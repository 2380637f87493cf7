/**
 * What most commands need: the config, the registry of tasks and targets,
 * and (opened lazily) the cache index.
 */
import { dirname } from 'node:path';
import { loadConfig } from '../config/load.js';
import { resolveConfig } from '../config/resolve.js';
import type { ResolvedConfig } from '../config/types.js';
import { CacheIndex } from '../cache/cache-index.js';
import { loadRegistry, type Registry } from '../plugin/load.js';
import { checkTaskOptions, parseTargetOptionsMap } from '../plugin/check-config.js';
import type { CommandIO } from './command.js';

export interface Session {
  config: ResolvedConfig;
  registry: Registry;
  index(): Promise<CacheIndex>;
  close(): Promise<void>;
}

export interface SessionFlags {
  config?: string;
  cacheDir?: string;
  target?: string;
  jobs?: number;
  /** `--no-device`: GPU targets go on without their GPU (tasks.detect-target.noDevice). */
  noDevice?: boolean;
}

export async function openSession(io: CommandIO, flags: SessionFlags): Promise<Session> {
  const loaded = await loadConfig(io.cwd, flags.config);
  const resolved = resolveConfig(loaded.config, {
    configFile: loaded.file,
    projectRoot: loaded.projectRoot,
    env: io.env,
    cacheDir: flags.cacheDir,
    target: flags.target,
    jobs: flags.jobs,
  });
  const registry = await loadRegistry({ plugins: resolved.plugins, configDir: loaded.file ? dirname(loaded.file) : io.cwd });
  for (const w of registry.warnings) io.err(`warning: ${w}`);
  // the config against what loaded: once, before any command does anything
  checkTaskOptions(registry, resolved.tasks, loaded.file);
  const config: ResolvedConfig = { ...resolved, targets: parseTargetOptionsMap(registry, resolved.targets, loaded.file) };
  if (flags.noDevice) {
    const tasks = config.tasks as Record<string, unknown>;
    (config as { tasks: unknown }).tasks = { ...tasks, 'detect-target': { ...((tasks['detect-target'] as object | undefined) ?? {}), noDevice: true } };
  }
  let index: Promise<CacheIndex> | undefined;
  return {
    config,
    registry,
    index: () => (index ??= CacheIndex.open(config.cacheDir)),
    close: async () => {
      if (index) await (await index).close();
    },
  };
}
