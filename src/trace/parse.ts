import { constants } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { RocmflowError } from '../errors.js';
import { AccessCollector } from './access-collector.js';
import { CallJoiner, UNPREFIXED_PID, type TraceEvent } from './call-joiner.js';
import { unescapeStrace } from './strace-string.js';
import type { TraceParse } from './trace-parse.js';

export type { TraceParse } from './trace-parse.js';

/** Options for parsing one strace log. */
export interface ParseOptions {
  /** Working directory of the first process, when the log does not show it (`-y` shows it as `AT_FDCWD</cwd>`). */
  cwd?: string;
  /** Pid of unprefixed lines (the pid of a `-ff` file); defaults to 0. */
  pid?: number;
  /** Name used in messages (`file:line: ...`). @default "<trace>" */
  file?: string;
}

/**
 * Streaming parser: feed lines as strace writes them, then call `finish()`.
 * Lines of one log must come in order; `parseTraceFiles` merges `-ff` logs.
 */
export class TraceParser {
  private readonly collector: AccessCollector;
  private readonly joiner: CallJoiner;

  constructor(opts: ParseOptions = {}) {
    this.collector = new AccessCollector({ cwd: opts.cwd });
    this.joiner = new CallJoiner(opts.file ?? '<trace>', opts.pid ?? UNPREFIXED_PID);
  }

  push(line: string): void {
    for (const ev of this.joiner.push(line)) applyEvent(this.collector, ev);
  }

  finish(): TraceParse {
    this.joiner.finish();
    return withWarnings(this.collector.result(), this.joiner.warnings);
  }
}

/** Parse the text of one strace log (with or without pid prefixes). */
export function parseTrace(text: string, opts: ParseOptions = {}): TraceParse {
  const parser = new TraceParser({ ...opts, cwd: opts.cwd ?? firstCwd(text) });
  for (const line of text.split('\n')) parser.push(line);
  return parser.finish();
}

/**
 * Parse a log file, or the per-pid files of `strace -ff -o PREFIX`
 * (`PREFIX.<pid>`; pass the files, or just PREFIX). Per-pid files are merged
 * by timestamp when they have them (`-ttt`), else taken parent-first in pid order.
 */
export async function parseTraceFiles(paths: string[], opts: { cwd?: string } = {}): Promise<TraceParse> {
  const files = await expandPaths(paths);
  // the first process's cwd, when the log shows it: usually in its first lines, so this stops early
  let cwd = opts.cwd;
  for (const f of files) {
    if (cwd !== undefined) break;
    cwd = await firstCwdOfFile(f.path);
  }
  if (files.length === 1) {
    const parser = new TraceParser({ cwd, pid: files[0]!.pid, file: files[0]!.path });
    for await (const line of readLines(files[0]!.path)) parser.push(line);
    return parser.finish();
  }

  const collector = new AccessCollector({ cwd });
  const warnings: string[] = [];
  const all: { ev: TraceEvent; ts?: number }[] = [];
  for (const f of files) {
    const joiner = new CallJoiner(f.path, f.pid ?? UNPREFIXED_PID);
    for await (const line of readLines(f.path)) for (const ev of joiner.push(line)) all.push({ ev, ts: eventTs(ev) });
    joiner.finish();
    warnings.push(...joiner.warnings);
  }
  if (all.every((e) => e.ts !== undefined)) all.sort((a, b) => a.ts! - b.ts!); // Array.sort is stable
  for (const { ev } of all) applyEvent(collector, ev);
  return withWarnings(collector.result(), warnings);
}

/**
 * The lines of a file as it is read (as `text.split('\n')` would give them,
 * without holding the text): memory stays at one chunk plus one line.
 */
export async function* readLines(path: string): AsyncGenerator<string> {
  let rest = '';
  // a trace log lies where the traced program could write (the sandbox binds its directory): a link
  // put in its place is not followed (O_NOFOLLOW), and only a regular file is read (O_NONBLOCK: a fifo
  // there does not hang the open)
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ELOOP' ? 'a symbolic link, not a log strace wrote' : (e as Error).message;
    throw new RocmflowError('E_TRACE_FILE', `cannot read trace file ${path}: ${why}`, { exitCode: 2 });
  }
  try {
    if (!(await fh.stat()).isFile()) throw new RocmflowError('E_TRACE_FILE', `cannot read trace file ${path}: not a regular file`, { exitCode: 2 });
    const stream = fh.createReadStream({ encoding: 'utf8', highWaterMark: 1 << 18, autoClose: false });
    try {
      for await (const chunk of stream as AsyncIterable<string>) {
        const text = rest + chunk;
        let start = 0;
        for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
          yield text.slice(start, nl);
          start = nl + 1;
        }
        rest = text.slice(start);
        // strace's lines are bounded by its -s limit; a line this long is not strace output
        if (rest.length > MAX_LINE) throw new RocmflowError('E_TRACE_FILE', `trace file ${path}: a line longer than ${MAX_LINE >> 20} MiB: not strace output`, { exitCode: 2 });
      }
    } catch (e) {
      if (e instanceof RocmflowError) throw e;
      throw new RocmflowError('E_TRACE_FILE', `cannot read trace file ${path}: ${(e as Error).message}`, { exitCode: 2 });
    }
  } finally {
    await fh.close();
  }
  yield rest;
}

const MAX_LINE = 16 << 20;

async function firstCwdOfFile(path: string): Promise<string | undefined> {
  for await (const line of readLines(path)) {
    const c = firstCwd(line);
    if (c !== undefined) return c;
  }
  return undefined;
}

function applyEvent(c: AccessCollector, ev: TraceEvent): void {
  switch (ev.type) {
    case 'call':
      return c.apply(ev.call);
    case 'first':
      if (!c.knows(ev.pid) && ev.parent) c.adopt(ev.pid, ev.parent.pid, ev.parent.text);
      return;
    case 'alias':
      return c.alias(ev.pid, ev.as);
    case 'exit':
      return c.exit(ev.pid);
  }
}

function eventTs(ev: TraceEvent): number | undefined {
  return ev.type === 'call' ? ev.call.ts : ev.type === 'alias' ? -Infinity : ev.ts;
}

function withWarnings(r: TraceParse, joinerWarnings: string[]): TraceParse {
  return { ...r, warnings: [...joinerWarnings, ...r.warnings] };
}

/** The first `AT_FDCWD</...>` annotation: the first process's cwd under `-y`. */
function firstCwd(text: string): string | undefined {
  const m = /AT_FDCWD<(\/(?:[^>\\]|\\.)*)>/.exec(text);
  return m ? unescapeStrace(m[1]!) : undefined;
}

/** A trace file and, for `-ff` files, the pid its name carries. */
interface TraceFile {
  path: string;
  pid?: number;
}

async function expandPaths(paths: string[]): Promise<TraceFile[]> {
  if (paths.length === 0) throw new RocmflowError('E_TRACE_FILE', 'no trace file given', { exitCode: 2 });
  const out: TraceFile[] = [];
  for (const p of paths) {
    const dir = dirname(p);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      throw new RocmflowError('E_TRACE_FILE', `${p}: no such trace file (directory ${dir} not readable)`, { exitCode: 2 });
    }
    const base = basename(p);
    if (names.includes(base)) {
      if ((await stat(p).catch(() => null))?.isDirectory())
        throw new RocmflowError('E_TRACE_FILE', `${p} is a directory; give an strace log file, or the PREFIX of strace -ff -o PREFIX`, { exitCode: 2 });
      const m = /\.(\d+)$/.exec(base);
      out.push({ path: p, pid: m ? Number(m[1]) : undefined });
      continue;
    }
    // a -ff prefix: PREFIX.<pid> files
    const perPid = names.filter((n) => n.startsWith(base + '.') && /^\d+$/.test(n.slice(base.length + 1)));
    if (perPid.length === 0) throw new RocmflowError('E_TRACE_FILE', `${p}: no such trace file (nor ${p}.<pid> files)`, { exitCode: 2 });
    for (const n of perPid) out.push({ path: join(dir, n), pid: Number(n.slice(base.length + 1)) });
  }
  if (out.length > 1) out.sort((a, b) => (a.pid ?? -1) - (b.pid ?? -1));
  return out;
}
