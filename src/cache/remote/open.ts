import type { ResolvedConfig } from '../../config/types.js';
import type { RemoteCache } from './types.js';

/**
 * The configured remote cache, or null. Implementations load lazily so a
 * run without a remote pays nothing for them.
 */
export async function openRemote(
  config: ResolvedConfig,
  opts: { env: NodeJS.ProcessEnv; warn: (message: string) => void },
): Promise<RemoteCache | null> {
  if (!config.remote) return null;
  const { createRemote } = await import('./create.js');
  return createRemote(config.remote, opts);
}
