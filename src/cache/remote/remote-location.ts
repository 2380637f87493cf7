/**
 * Where a remote cache URL points and how to authenticate to it. Credentials
 * come from the environment or the URL's user info, and never appear in the
 * description used for messages.
 */
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { usageError } from '../../errors.js';

export type RemoteLocation =
  | { kind: 'http'; base: URL; authorization: string | null; description: string }
  | { kind: 'dir'; dir: string; description: string };

/** `where` names the setting the URL came from, for the error message. */
export function parseRemoteLocation(raw: string, env: NodeJS.ProcessEnv, where: string): RemoteLocation {
  if (isAbsolute(raw)) return { kind: 'dir', dir: raw, description: raw };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usageError('E_CONFIG', `${where}: "${stripCredentials(raw)}" is not a URL; expected http(s)://host/path, file:///path or an absolute path`);
  }
  if (url.protocol === 'file:') {
    if (url.host && url.host !== 'localhost') throw usageError('E_CONFIG', `${where}: file URLs must name a local path (file:///mnt/cache), not host "${url.host}"`);
    const dir = fileURLToPath(url);
    return { kind: 'dir', dir, description: dir };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw usageError('E_CONFIG', `${where}: unsupported scheme "${url.protocol}"; expected http(s)://, file:// or an absolute path`);
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  url.username = '';
  url.password = '';
  url.search = '';
  url.hash = '';
  let authorization: string | null = null;
  if (env.ROCMFLOW_REMOTE_CACHE_TOKEN) authorization = `Bearer ${env.ROCMFLOW_REMOTE_CACHE_TOKEN}`;
  else if (env.ROCMFLOW_REMOTE_CACHE_USER) authorization = basic(env.ROCMFLOW_REMOTE_CACHE_USER, env.ROCMFLOW_REMOTE_CACHE_PASSWORD ?? '');
  else if (user) authorization = basic(user, pass);
  return { kind: 'http', base: url, authorization, description: url.href.replace(/\/+$/, '') };
}

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

/** `scheme://user:pass@host` → `scheme://host`, for any text that may hold a URL. */
export function stripCredentials(text: string): string {
  return text.replace(/(\w+:\/\/)[^/@\s]*@/g, '$1');
}
