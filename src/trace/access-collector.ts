import type { AccessedFile } from './access-set.js';
import { absolutize, isDevice, isVirtual } from './paths.js';
import { parseAnnotated, parseQuoted } from './strace-string.js';
import type { Ret } from './strace-line.js';
import { FORK_CALLS, MISSING_ERRNOS, syscallRule, type PathArg, type SyscallRule } from './syscalls.js';
import type { TraceParse } from './trace-parse.js';

/** One complete syscall (halves already joined), in trace order. */
export interface TraceCall {
  pid: number;
  ts?: number;
  name: string;
  args: string[];
  ret: Ret;
  /** `file:line` for messages. */
  where: string;
}

/** Threads made with CLONE_FS share one cwd, CLONE_FILES one fd table: hence the shared objects. */
interface Proc {
  fs: { cwd?: string };
  fds: Map<number, string>;
}

interface Located {
  /** Absolute, `..` kept (the kernel resolved it, maybe across symlinks). */
  path: string;
  /** Absolute, `..` collapsed lexically. */
  lexical: string;
}

const MAX_WARNINGS = 100;

/**
 * Turns joined syscalls into an access set. Tracks each process's cwd and fd
 * table (for traces without `-y`), which paths the program created or
 * deleted itself, and which lookups failed.
 */
export class AccessCollector {
  private readonly procs = new Map<number, Proc>();
  private defaultCwd: string | undefined;
  private readonly files = new Map<string, AccessedFile & { kernel: boolean }>();
  private readonly executables = new Set<string>();
  private readonly missing = new Set<string>();
  private readonly devices = new Set<string>();
  private readonly virtual = new Set<string>();
  private readonly dirs = new Set<string>();
  /** Paths the program owns right now (created and not since removed). */
  private readonly owned = new Set<string>();
  private readonly created = new Set<string>();
  private readonly removed = new Set<string>();
  private readonly failed = new Map<string, string>();
  private readonly pids = new Set<number>();
  private readonly warnings: string[] = [];
  private dropped = 0;

  constructor(opts: { cwd?: string } = {}) {
    this.defaultCwd = opts.cwd;
  }

  warn(message: string): void {
    if (this.warnings.length < MAX_WARNINGS) this.warnings.push(message);
    else this.dropped++;
  }

  knows(pid: number): boolean {
    return this.procs.has(pid);
  }

  /** Start tracking `child`, inheriting from `parent` as the clone flags say. */
  adopt(child: number, parent: number | undefined, cloneText: string): void {
    const p = parent === undefined ? undefined : this.proc(parent);
    this.pids.add(child);
    this.procs.set(child, {
      fs: p && /\bCLONE_FS\b/.test(cloneText) ? p.fs : { cwd: p?.fs.cwd },
      fds: p && /\bCLONE_FILES\b/.test(cloneText) ? p.fds : new Map(p?.fds),
    });
  }

  /** Make `alias` the same process as `pid` (a pid first seen without its prefix). */
  alias(alias: number, pid: number): void {
    this.procs.set(alias, this.proc(pid));
    this.pids.add(alias);
  }

  /** The pid is gone: a later process with the same number starts afresh. */
  exit(pid: number): void {
    this.procs.delete(pid);
  }

  private proc(pid: number): Proc {
    let p = this.procs.get(pid);
    if (!p) {
      p = { fs: {}, fds: new Map() };
      this.procs.set(pid, p);
      this.pids.add(pid);
    }
    return p;
  }

  apply(call: TraceCall): void {
    const { name, args, ret } = call;
    const proc = this.proc(call.pid);
    const ok = ret.value !== undefined && ret.value >= 0;
    if (FORK_CALLS.has(name)) {
      if (ok && ret.value! > 0 && !this.knows(ret.value!)) this.adopt(ret.value!, call.pid, args.join(','));
      return;
    }
    if (this.trackFds(proc, call, ok)) return;
    const rule = syscallRule(name);
    if (!rule) return;
    const atFlags = rule.atFlags === undefined ? '' : (args[rule.atFlags] ?? '');
    const first = rule.paths[0]!;
    if (/\bAT_EMPTY_PATH\b/.test(atFlags) && parseQuoted(args[first.path] ?? '')?.value === '') {
      // fstat/fexecve of an fd: the file was already counted when it was opened
      if (rule.kind === 'exec' && ok) {
        const fd = parseAnnotated(args[first.dirfd!] ?? '');
        const path = fd.isPath ? fd.annotation : proc.fds.get(Number(fd.head));
        if (path) this.executables.add(path);
      }
      return;
    }
    const where = this.locate(proc, call, first);
    if (!where) return;
    const exists = ok || (ret.errno !== undefined && (rule.existsOn?.includes(ret.errno) ?? false));
    if (!exists) return this.failure(rule, where, ret);
    this.success(rule, proc, call, where);
  }

  private failure(rule: SyscallRule, where: Located, ret: Ret): void {
    if (ret.errno === undefined) return; // `= ?`: the call never returned
    if (MISSING_ERRNOS.has(ret.errno)) {
      if (rule.kind !== 'remove') this.missing.add(where.lexical);
    } else this.failed.set(where.lexical, ret.errno);
  }

  private success(rule: SyscallRule, proc: Proc, call: TraceCall, where: Located): void {
    const { args, ret } = call;
    switch (rule.kind) {
      case 'lookup':
        this.input(where);
        if (args.some((a) => /\bstx?_mode=S_IFDIR\b/.test(a))) this.dirs.add(where.lexical);
        return;
      case 'open':
        return this.open(rule, proc, call, where);
      case 'exec':
        this.executables.add(where.lexical);
        return this.input(where);
      case 'chdir':
        proc.fs.cwd = where.lexical;
        this.dirs.add(where.lexical);
        return this.input(where);
      case 'create':
        if (call.name === 'creat' && ret.value !== undefined) proc.fds.set(ret.value, ret.path ?? where.lexical);
        return this.create(where.lexical);
      case 'remove':
        return this.remove(where.lexical);
      case 'move': {
        const target = this.locate(proc, call, rule.paths[1]!);
        if (this.owned.has(where.lexical)) {
          if (call.name.startsWith('rename')) this.owned.delete(where.lexical);
        } else this.input(where);
        if (target) this.create(target.lexical);
        return;
      }
    }
  }

  private open(rule: SyscallRule, proc: Proc, call: TraceCall, where: Located): void {
    const { args, ret } = call;
    let flags = args[rule.flags!] ?? '';
    if (call.name === 'openat2') flags = /flags=([\w|]+)/.exec(flags)?.[1] ?? '';
    const has = (f: string) => new RegExp(`\\b${f}\\b`).test(flags);
    if (ret.value !== undefined) proc.fds.set(ret.value, ret.path ?? where.lexical);
    if (has('O_TMPFILE')) return; // an unnamed file inside a directory
    if (has('O_DIRECTORY')) this.dirs.add(where.lexical);
    const target = ret.path ?? where.lexical;
    // Writing without reading, or truncating, means the old content does not matter;
    // O_CREAT after a failed lookup means the program made the file.
    const makes = has('O_CREAT') && !isDevice(where.lexical) &&
      (has('O_EXCL') || has('O_TRUNC') || has('O_WRONLY') || this.missing.has(where.lexical) || this.owned.has(target));
    if (makes) {
      this.create(where.lexical);
      if (target !== where.lexical) this.create(target);
      return;
    }
    this.input(where, ret.path);
  }

  /** A successful access of something that must exist: a file to ship, a device, or /proc. */
  private input(where: Located, resolved?: string): void {
    const { lexical } = where;
    if (isVirtual(lexical) || (resolved !== undefined && isVirtual(resolved))) {
      this.virtual.add(lexical);
      return;
    }
    if (isDevice(lexical)) {
      this.devices.add(lexical);
      return;
    }
    if (this.owned.has(lexical) || (resolved !== undefined && this.owned.has(resolved))) return;
    const entry = resolved === undefined
      ? { path: lexical, resolved: lexical, kernel: false }
      : { path: where.path, resolved, kernel: true };
    const seen = this.files.get(entry.path);
    if (!seen || (!seen.kernel && entry.kernel)) this.files.set(entry.path, entry);
  }

  private create(path: string): void {
    this.owned.add(path);
    this.created.add(path);
  }

  private remove(path: string): void {
    if (this.owned.delete(path)) return;
    // a pre-existing file the program deletes is not one it needs
    this.removed.add(path);
    for (const [key, f] of this.files) if (key === path || f.resolved === path) this.files.delete(key);
  }

  /** Keep the fd table for traces without `-y`; returns true when the call was an fd call. */
  private trackFds(proc: Proc, call: TraceCall, ok: boolean): boolean {
    const { name, args, ret } = call;
    const fdPath = (tok: string | undefined) => {
      const a = parseAnnotated(tok ?? '');
      return a.isPath ? a.annotation : proc.fds.get(Number(a.head));
    };
    switch (name) {
      case 'close':
        if (ok) proc.fds.delete(Number(parseAnnotated(args[0] ?? '').head));
        return true;
      case 'dup': case 'dup2': case 'dup3': case 'fcntl': case 'fcntl64': {
        if (name.startsWith('fcntl') && !/^F_DUPFD/.test(args[1] ?? '')) return true;
        const path = fdPath(args[0]);
        if (ok && path !== undefined) proc.fds.set(ret.value!, path);
        return true;
      }
      case 'fchdir': {
        const path = fdPath(args[0]);
        if (ok && path !== undefined) proc.fs.cwd = path;
        return true;
      }
      case 'getcwd': {
        const cwd = parseQuoted(args[0] ?? '');
        if (ok && cwd && !cwd.truncated && cwd.value.startsWith('/')) proc.fs.cwd = cwd.value;
        return true;
      }
    }
    return false;
  }

  /** Make a path argument absolute against its dirfd or the process's cwd. */
  private locate(proc: Proc, call: TraceCall, arg: PathArg): Located | undefined {
    const str = parseQuoted(call.args[arg.path] ?? '');
    if (!str) return undefined; // NULL or a pointer strace could not read
    if (str.truncated) {
      this.warn(`${call.where}: ${call.name} path cut short by strace ("${str.value}..."): not counted; raise strace -s`);
      return undefined;
    }
    let base: string | undefined;
    if (!str.value.startsWith('/')) {
      const fd = arg.dirfd === undefined ? undefined : parseAnnotated(call.args[arg.dirfd] ?? '');
      if (fd === undefined || fd.head === 'AT_FDCWD') {
        if (fd?.isPath) {
          proc.fs.cwd = fd.annotation;
          this.defaultCwd ??= fd.annotation;
        }
        base = proc.fs.cwd ?? this.defaultCwd;
      } else base = fd.isPath ? fd.annotation : proc.fds.get(Number(fd.head));
      if (base === undefined) {
        this.warn(`${call.where}: ${call.name} of relative path "${str.value}" with unknown ${fd && fd.head !== 'AT_FDCWD' ? `fd ${fd.head}` : 'cwd'}: not counted`);
        return undefined;
      }
    } else if (arg.dirfd !== undefined) {
      // an absolute path ignores the dirfd, but its annotation still tells the cwd
      const fd = parseAnnotated(call.args[arg.dirfd] ?? '');
      if (fd.head === 'AT_FDCWD' && fd.isPath) {
        proc.fs.cwd = fd.annotation;
        this.defaultCwd ??= fd.annotation;
      }
    }
    return { path: absolutize(base ?? '/', str.value, false), lexical: absolutize(base ?? '/', str.value) };
  }

  /** The collected result, sorted and deduplicated. */
  result(): TraceParse {
    const sorted = (s: Iterable<string>) => [...s].sort();
    const files = [...this.files.values()].map(({ path, resolved }) => ({ path, resolved }))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const present = new Set(files.flatMap((f) => [f.path, f.resolved]));
    const warnings = [...this.warnings];
    if (this.dropped > 0) warnings.push(`${this.dropped} more warnings not shown`);
    return {
      access: {
        files,
        executables: sorted(this.executables),
        // a lookup that failed before the program made the path, or before it appeared, is not missing
        missing: sorted([...this.missing].filter((p) => !present.has(p) && !this.created.has(p))),
        devices: sorted(this.devices),
      },
      created: sorted(this.created),
      removed: sorted(this.removed),
      virtual: sorted(this.virtual),
      directories: sorted([...this.dirs].filter((d) => present.has(d))),
      failed: [...this.failed].map(([path, error]) => ({ path, error })).sort((a, b) => (a.path < b.path ? -1 : 1)),
      pids: [...this.pids].sort((a, b) => a - b),
      warnings,
    };
  }
}
