/**
 * rocmflow's public entry: what a project config (`rocmflow.config.ts`), a
 * task plugin or a target plugin imports. `rocmflow/plugin` is the same
 * without the config helpers.
 */
export { defineConfig } from './config/define-config.js';
export type { UserConfig, RemoteCacheConfig, ResolvedConfig } from './config/types.js';
export * from './plugin/index.js';
