import type { AccessSet } from './access-set.js';

/** A path whose lookup failed with an error other than ENOENT/ENOTDIR. */
export interface FailedAccess {
  path: string;
  /** errno name, e.g. EACCES, EEXIST, ELOOP. */
  error: string;
}

/**
 * Everything a parsed strace log says: the access set DESIGN.md defines,
 * plus the context a closure or a failed verification needs. All arrays are
 * deduplicated and sorted, so the JSON is stable.
 */
export interface TraceParse {
  access: AccessSet;
  /**
   * Paths the program made itself: files it created (O_CREAT with O_EXCL,
   * O_TRUNC or write-only, creat, or after a failed lookup), mkdir/mknod,
   * symlink, link and rename targets. Never inputs, even when read later.
   */
  created: string[];
  /** Pre-existing paths the program deleted (unlink, rmdir): not inputs either. */
  removed: string[];
  /** /proc and /sys paths it used: the kernel provides them; never shipped. */
  virtual: string[];
  /** Paths among `access.files` known to be directories (O_DIRECTORY, S_IFDIR, chdir). */
  directories: string[];
  /** Lookups that failed with another error than ENOENT/ENOTDIR (EACCES, EEXIST, ...). */
  failed: FailedAccess[];
  /** Process and thread ids seen. */
  pids: number[];
  /** Things the parser could not use (cut-off strings, a cut-off last line, unknown dirfds). */
  warnings: string[];
}
