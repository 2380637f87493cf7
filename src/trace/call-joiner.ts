import { RocmflowError } from '../errors.js';
import type { TraceCall } from './access-collector.js';
import { LineError, lexLine, parseRet, splitArgs } from './strace-line.js';
import { FORK_CALLS } from './syscalls.js';

/** What the joiner hands on, in trace order. */
export type TraceEvent =
  | { type: 'call'; call: TraceCall }
  /** First line of a pid; `parent` is the fork-like call in flight elsewhere that most likely made it. */
  | { type: 'first'; pid: number; ts?: number; parent?: { pid: number; text: string } }
  /** `pid` is the same process as `as` (it printed unprefixed lines before others appeared). */
  | { type: 'alias'; pid: number; as: number }
  | { type: 'exit'; pid: number; ts?: number };

interface Pending {
  name: string;
  text: string;
  ts?: number;
  line: number;
}

/** The pid given to unprefixed lines when the file name does not tell it. */
export const UNPREFIXED_PID = 0;

/**
 * Lexes lines one at a time and joins `<unfinished ...>` / `<... resumed>`
 * halves per pid. A line strace would not write is an E_TRACE_PARSE error
 * naming `file:line`, unless it is the last line: a log cut off mid-line
 * (a killed strace, a full disk) only warns.
 */
export class CallJoiner {
  private readonly pending = new Map<number, Pending>();
  private readonly seen = new Set<number>();
  /** Pids returned by fork-like calls: known children, never the first process. */
  private readonly children = new Set<number>();
  private lineNo = 0;
  /** Once the first process shows its pid, its later unprefixed lines are that pid's. */
  private unprefixedPid: number;
  private deferred: { error: LineError; line: number; text: string } | undefined;
  readonly warnings: string[] = [];

  constructor(private readonly file: string, private readonly defaultPid = UNPREFIXED_PID) {
    this.unprefixedPid = defaultPid;
  }

  /** Feed one line (without its newline); returns the events it completes. */
  push(raw: string): TraceEvent[] {
    this.lineNo++;
    let line;
    try {
      line = lexLine(raw);
    } catch (e) {
      if (!(e instanceof LineError)) throw e;
      this.fail(e, raw);
      return [];
    }
    if (line.kind === 'blank') return [];
    this.flushDeferred();
    if (line.kind === 'note' || line.kind === 'signal') return [];
    const pid = line.pid ?? this.unprefixedPid;
    const events: TraceEvent[] = [];
    if (!this.seen.has(pid)) events.push(...this.first(pid, line.kind === 'resumed' ? line.name : undefined, line.ts));
    switch (line.kind) {
      case 'exit':
        this.pending.delete(pid);
        events.push({ type: 'exit', pid, ts: line.ts });
        return events;
      case 'superseded': {
        // a thread called execve; the process now carries the leader's pid
        const p = this.pending.get(line.byPid);
        this.pending.delete(line.byPid);
        if (p) this.pending.set(pid, p);
        return events;
      }
      case 'call':
        if (line.unfinished) this.pending.set(pid, { name: line.name, text: line.text, ts: line.ts, line: this.lineNo });
        else this.complete(events, pid, line.name, line.text, line.ts, raw);
        return events;
      case 'resumed': {
        const p = this.pending.get(pid);
        this.pending.delete(pid);
        if (!p || p.name !== line.name) {
          this.warnings.push(`${this.file}:${this.lineNo}: "${line.name}" resumed without its start: skipped`);
          return events;
        }
        if (line.unfinished) this.pending.set(pid, { ...p, text: p.text + line.text });
        else this.complete(events, pid, p.name, p.text + line.text, p.ts, raw);
        return events;
      }
    }
  }

  /** Call after the last line: a bad last line becomes a warning. */
  finish(): void {
    if (this.deferred) {
      const { error, line } = this.deferred;
      if (error.cutOff) this.warnings.push(`${this.file}:${line}: last line cut off (${error.message}): ignored`);
      else this.throwAt(line, error.message, this.deferred.text);
      this.deferred = undefined;
    }
  }

  private first(pid: number, resumedName: string | undefined, ts?: number): TraceEvent[] {
    this.seen.add(pid);
    // the first process printed unprefixed lines until a second one appeared
    const unprefixed = this.pending.get(this.defaultPid);
    if (resumedName !== undefined && pid !== this.defaultPid && unprefixed?.name === resumedName) {
      this.pending.delete(this.defaultPid);
      this.pending.set(pid, unprefixed);
      this.unprefixedPid = pid;
      return [{ type: 'alias', pid, as: this.defaultPid }];
    }
    let parent: { pid: number; text: string; line: number } | undefined;
    for (const [p, call] of this.pending) {
      if (p !== pid && FORK_CALLS.has(call.name) && (!parent || call.line > parent.line)) parent = { pid: p, text: call.text, line: call.line };
    }
    const firstUnprefixed = this.seen.has(this.defaultPid) && this.unprefixedPid === this.defaultPid;
    if (!parent && firstUnprefixed && pid !== this.defaultPid && !this.children.has(pid)) {
      this.unprefixedPid = pid;
      return [{ type: 'alias', pid, as: this.defaultPid }];
    }
    return [{ type: 'first', pid, ts, parent: parent && { pid: parent.pid, text: parent.text } }];
  }

  private complete(events: TraceEvent[], pid: number, name: string, text: string, ts: number | undefined, raw: string): void {
    const split = splitArgs(text);
    if (!split) return this.fail(new LineError(`"${name}" call cut short`, true), raw);
    const ret = parseRet(split.after);
    if (!ret) {
      const cut = split.after.trim() === '' || /^\s*=\s*$/.test(split.after);
      return this.fail(new LineError(`"${name}" call without a return value`, cut), raw);
    }
    if (FORK_CALLS.has(name) && ret.value !== undefined && ret.value > 0) this.children.add(ret.value);
    events.push({ type: 'call', call: { pid, ts, name, args: split.args, ret, where: `${this.file}:${this.lineNo}` } });
  }

  private fail(error: LineError, raw: string): void {
    this.flushDeferred();
    this.deferred = { error, line: this.lineNo, text: raw };
  }

  private flushDeferred(): void {
    if (this.deferred) this.throwAt(this.deferred.line, this.deferred.error.message, this.deferred.text);
  }

  private throwAt(line: number, message: string, text: string): never {
    const shown = text.length > 80 ? `${text.slice(0, 80)}...` : text;
    throw new RocmflowError('E_TRACE_PARSE', `${this.file}:${line}: ${message}: ${JSON.stringify(shown)}`);
  }
}
