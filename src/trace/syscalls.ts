/**
 * What each path-taking syscall means for an access set: where its path
 * (and dirfd) arguments are, and whether it reads, creates or removes.
 */

/** A path argument: its index, and the index of its dirfd when it is an *at call. */
export interface PathArg {
  path: number;
  dirfd?: number;
}

/**
 * - `lookup`: the path must exist (stat, access, readlink, chmod, ...);
 * - `open`: like lookup, but flags decide whether it creates, and the fd it returns is annotated;
 * - `exec`: a successful call is an executable;
 * - `chdir`: changes the process's cwd;
 * - `create`: the path is the program's own (mkdir, mknod, symlink's new name);
 * - `remove`: the program deletes the path;
 * - `move`: first path is consumed (must exist), second is created (rename, link).
 */
export type SyscallKind = 'lookup' | 'open' | 'exec' | 'chdir' | 'create' | 'remove' | 'move';

export interface SyscallRule {
  kind: SyscallKind;
  paths: PathArg[];
  /** Index of the open flags (or of openat2's struct holding them). */
  flags?: number;
  /** Index of the *at flags word that may hold AT_EMPTY_PATH. */
  atFlags?: number;
  /** Errors that still prove the path exists (readlink on a non-link, xattr not set). */
  existsOn?: readonly string[];
}

const p0: PathArg[] = [{ path: 0 }];
const at01: PathArg[] = [{ dirfd: 0, path: 1 }];
const XATTR_EXISTS = ['ENODATA', 'ENOTSUP', 'EOPNOTSUPP', 'ERANGE'];

const rules: Record<string, SyscallRule> = {
  open: { kind: 'open', paths: p0, flags: 1 },
  openat: { kind: 'open', paths: at01, flags: 2 },
  openat2: { kind: 'open', paths: at01, flags: 2 },
  creat: { kind: 'create', paths: p0 },
  access: { kind: 'lookup', paths: p0 },
  faccessat: { kind: 'lookup', paths: at01 },
  faccessat2: { kind: 'lookup', paths: at01 },
  newfstatat: { kind: 'lookup', paths: at01, atFlags: 3 },
  fstatat64: { kind: 'lookup', paths: at01, atFlags: 3 },
  statx: { kind: 'lookup', paths: at01, atFlags: 2 },
  readlink: { kind: 'lookup', paths: p0, existsOn: ['EINVAL'] },
  readlinkat: { kind: 'lookup', paths: at01, existsOn: ['EINVAL'] },
  execve: { kind: 'exec', paths: p0 },
  execveat: { kind: 'exec', paths: at01, atFlags: 4 },
  chdir: { kind: 'chdir', paths: p0 },
  mkdir: { kind: 'create', paths: p0 },
  mkdirat: { kind: 'create', paths: at01 },
  mknod: { kind: 'create', paths: p0 },
  mknodat: { kind: 'create', paths: at01 },
  symlink: { kind: 'create', paths: [{ path: 1 }] },
  symlinkat: { kind: 'create', paths: [{ dirfd: 1, path: 2 }] },
  unlink: { kind: 'remove', paths: p0 },
  unlinkat: { kind: 'remove', paths: at01 },
  rmdir: { kind: 'remove', paths: p0 },
  rename: { kind: 'move', paths: [{ path: 0 }, { path: 1 }] },
  renameat: { kind: 'move', paths: [{ dirfd: 0, path: 1 }, { dirfd: 2, path: 3 }] },
  renameat2: { kind: 'move', paths: [{ dirfd: 0, path: 1 }, { dirfd: 2, path: 3 }] },
  link: { kind: 'move', paths: [{ path: 0 }, { path: 1 }] },
  linkat: { kind: 'move', paths: [{ dirfd: 0, path: 1 }, { dirfd: 2, path: 3 }] },
  futimesat: { kind: 'lookup', paths: at01 },
  utimensat: { kind: 'lookup', paths: at01 },
  fchmodat: { kind: 'lookup', paths: at01 },
  fchownat: { kind: 'lookup', paths: at01 },
  name_to_handle_at: { kind: 'lookup', paths: at01 },
  inotify_add_watch: { kind: 'lookup', paths: [{ path: 1 }] },
};
for (const name of ['stat', 'lstat', 'stat64', 'lstat64', 'oldstat', 'oldlstat', 'statfs', 'statfs64', 'truncate',
  'truncate64', 'utime', 'utimes', 'chmod', 'chown', 'lchown', 'chown32', 'lchown32']) {
  rules[name] = { kind: 'lookup', paths: p0 };
}
for (const name of ['getxattr', 'lgetxattr', 'setxattr', 'lsetxattr', 'listxattr', 'llistxattr', 'removexattr', 'lremovexattr']) {
  rules[name] = { kind: 'lookup', paths: p0, existsOn: XATTR_EXISTS };
}

/** The rule for a syscall name, or undefined when it takes no path we track. */
export function syscallRule(name: string): SyscallRule | undefined {
  return Object.hasOwn(rules, name) ? rules[name] : undefined;
}

/** Calls that start a new process or thread; their return value is the child's pid. */
export const FORK_CALLS: ReadonlySet<string> = new Set(['clone', 'clone2', 'clone3', 'fork', 'vfork']);

/** Errors that mean "there is nothing at this path": a lookup, never a file to ship. */
export const MISSING_ERRNOS: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR']);
