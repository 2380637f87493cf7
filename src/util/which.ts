import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

/** The executable `cmd` would run as: a path given as is, else the first match in `path`'s absolute directories. */
export function which(cmd: string, path = process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'): string | null {
  const runnable = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (cmd.includes('/')) return runnable(cmd) ? cmd : null;
  for (const dir of path.split(':')) {
    if (!dir || !isAbsolute(dir)) continue;
    const p = join(dir, cmd);
    if (runnable(p)) return p;
  }
  return null;
}
