/**
 * rocmflow's public entry: what a project config (`rocmflow.config.ts`), a
 * task plugin or a target plugin imports.
 */
export { defineConfig } from './config/define-config.js';
export type { UserConfig, RemoteCacheConfig, ResolvedConfig } from './config/types.js';
export { defineTask, defineTarget } from './plugin/define.js';
export type * from './plugin/types.js';
export { RocmflowError, usageError, missingTool } from './errors.js';
export * as s from './util/schema.js';
