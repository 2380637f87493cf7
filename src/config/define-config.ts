import type { UserConfig } from './types.js';

/** Identity helper that types `rocmflow.config.ts`. */
export function defineConfig(config: UserConfig): UserConfig {
  return config;
}
