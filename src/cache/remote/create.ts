/**
 * Builds the configured remote cache: the Bazel HTTP protocol backend for
 * http(s) URLs, the shared-directory backend for file:// URLs and absolute
 * paths, wrapped in the policy of RemoteCacheClient.
 */
import type { ResolvedConfig } from '../../config/types.js';
import { usageError } from '../../errors.js';
import type { RemoteBackend } from './backend.js';
import { DirBackend } from './dir-backend.js';
import { HttpBackend } from './http-backend.js';
import { RemoteCacheClient } from './remote-cache-client.js';
import { parseRemoteLocation } from './remote-location.js';

export type RemoteConfig = NonNullable<ResolvedConfig['remote']>;

const INSTANCE = /^(?!.*(^|\/)\.\.?(\/|$))[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;
const MODES = ['read', 'read-write', 'auto'] as const;

/** Is this a CI environment (`CI` set, non-empty and not "false")? */
export function isCI(env: NodeJS.ProcessEnv): boolean {
  const v = env.CI?.trim().toLowerCase();
  return !!v && v !== 'false' && v !== '0';
}

export function createRemote(remote: RemoteConfig, opts: { env: NodeJS.ProcessEnv; warn(message: string): void }): RemoteCacheClient {
  const { env } = opts;
  const where = env.ROCMFLOW_REMOTE_CACHE ? 'ROCMFLOW_REMOTE_CACHE' : 'cache.remote.url';
  if (!(MODES as readonly string[]).includes(remote.mode)) {
    const src = env.ROCMFLOW_REMOTE_CACHE_MODE ? 'ROCMFLOW_REMOTE_CACHE_MODE' : 'cache.remote.mode';
    throw usageError('E_CONFIG', `${src}: expected "read", "read-write" or "auto", got "${remote.mode}"`);
  }
  if (remote.instance !== null && !INSTANCE.test(remote.instance))
    throw usageError('E_CONFIG', `cache.remote.instance: "${remote.instance}" must be path segments of letters, digits, ".", "_" or "-" (no "..")`);
  const loc = parseRemoteLocation(remote.url, env, where);
  const backend: RemoteBackend =
    loc.kind === 'http'
      ? new HttpBackend({
          base: loc.base, instance: remote.instance, authorization: loc.authorization, timeoutMs: remote.timeoutMs, concurrency: remote.concurrency,
        })
      : new DirBackend(loc.dir, remote.instance);
  return new RemoteCacheClient(backend, {
    canWrite: remote.mode === 'read-write' || (remote.mode === 'auto' && isCI(env)),
    secret: env.ROCMFLOW_REMOTE_CACHE_KEY || null,
    requireSignature: remote.requireSignature,
    concurrency: remote.concurrency,
    warn: opts.warn,
  });
}
