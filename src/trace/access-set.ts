/**
 * What a traced program touched, in the shape `rocmflow trace parse --json`
 * prints (see DESIGN.md, "Trace and trim").
 */
export interface AccessedFile {
  /**
   * The path as the program asked for it, made absolute against its cwd or
   * dirfd. `.` and `//` are removed; `..` is kept when the kernel resolved
   * the path (`resolved` known), because across a symlink `a/link/..` is not
   * `a`, and collapsed lexically otherwise.
   */
  path: string;
  /** The kernel's resolved path (from strace -y), when known; equal to `path` when no link was involved. */
  resolved: string;
}

/**
 * The files a traced workload used, from `parseTrace`/`parseTraceFiles`.
 * Arrays are deduplicated and sorted (files by path). Files the program
 * created or deleted itself, /proc and /sys are not in it.
 */
export interface AccessSet {
  /** Files successfully opened, stat'ed, read or mapped: candidates to ship. */
  files: AccessedFile[];
  /** Absolute path of every successful execve. */
  executables: string[];
  /** Lookups that failed with ENOENT (or ENOTDIR): never shipped. */
  missing: string[];
  /** Device nodes touched (/dev/...). */
  devices: string[];
}
