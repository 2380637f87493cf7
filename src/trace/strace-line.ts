import { parseAnnotated } from './strace-string.js';

/**
 * One line of strace output, lexed but not yet interpreted. Handles the pid
 * prefix (`1234  ` from `-f -o`, `[pid  1234] ` on stderr, none with one
 * process or in `-ff` files), `-t`/`-tt`/`-ttt` timestamps, `-T` durations,
 * `<unfinished ...>` / `<... name resumed>` halves, signals and exit lines.
 */
export type TraceLine =
  | { kind: 'call'; pid?: number; ts?: number; name: string; text: string; unfinished: boolean }
  | { kind: 'resumed'; pid?: number; ts?: number; name: string; text: string; unfinished: boolean }
  | { kind: 'exit'; pid?: number; ts?: number; how: string }
  | { kind: 'superseded'; pid?: number; ts?: number; byPid: number }
  | { kind: 'signal'; pid?: number; ts?: number }
  | { kind: 'note' }
  | { kind: 'blank' };

/** Why a line could not be lexed; `cutOff` when it looks like a complete line cut short. */
export class LineError extends Error {
  constructor(message: string, readonly cutOff: boolean) {
    super(message);
  }
}

const UNFINISHED = /\s*<unfinished \.\.\.>\s*$/;
const TIME = /^(?:(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)|(\d+\.\d+))\s+/;

/** Lex one line (without its newline). Throws LineError for anything strace does not write. */
export function lexLine(raw: string): TraceLine {
  let s = raw.replace(/\r$/, '').trimStart();
  if (s === '') return { kind: 'blank' };
  if (s.startsWith('strace: ') || s.startsWith('[ Process PID=')) return { kind: 'note' };

  let pid: number | undefined;
  let m = /^\[pid\s+(\d+)\]\s+/.exec(s) ?? /^(\d+)\s+/.exec(s);
  if (m) {
    pid = Number(m[1]);
    s = s.slice(m[0].length);
  }
  let ts: number | undefined;
  m = TIME.exec(s);
  if (m) {
    ts = m[4] !== undefined ? Number(m[4]) : Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
    s = s.slice(m[0].length);
  }

  if (s.startsWith('---')) {
    if (!/---\s*$/.test(s)) throw new LineError('signal line without its closing ---', true);
    return { kind: 'signal', pid, ts };
  }
  if (s.startsWith('+++')) {
    m = /^\+\+\+ superseded by execve in pid (\d+) \+\+\+$/.exec(s.trimEnd());
    if (m) return { kind: 'superseded', pid, ts, byPid: Number(m[1]) };
    m = /^\+\+\+ ((?:exited with -?\d+|killed by \w+(?: \(core dumped\))?)) \+\+\+$/.exec(s.trimEnd());
    if (m) return { kind: 'exit', pid, ts, how: m[1]! };
    throw new LineError('unrecognised +++ line', true);
  }
  m = /^<\.\.\. ([A-Za-z_][A-Za-z0-9_]*) resumed>\s?/.exec(s);
  if (m) {
    const rest = s.slice(m[0].length);
    const unfinished = UNFINISHED.test(rest);
    return { kind: 'resumed', pid, ts, name: m[1]!, text: unfinished ? rest.replace(UNFINISHED, '') : rest, unfinished };
  }
  m = /^([A-Za-z_][A-Za-z0-9_]*)\(/.exec(s);
  if (m) {
    const rest = s.slice(m[0].length);
    const unfinished = UNFINISHED.test(rest);
    return { kind: 'call', pid, ts, name: m[1]!, text: unfinished ? rest.replace(UNFINISHED, '') : rest, unfinished };
  }
  // `<... resumed` or `open` alone are the start of a real line that was cut short
  const cutOff = /^(?:<\.{1,3}(?: \w*(?: r\w*)?)?|<|[A-Za-z_]\w*|[\d.:]+|\[(?:p(?:i(?:d\s*\d*)?)?)?)$/.test(s);
  throw new LineError('not an strace line', cutOff);
}

/** A complete call: name, argument tokens and the raw return text. */
export interface CallText {
  args: string[];
  /** Everything after the closing parenthesis, e.g. ` = 3</x>` or ` = -1 ENOENT (...)`. */
  after: string;
}

/**
 * Split the text after `name(` into top-level argument tokens, honouring
 * quotes, nesting, `/* comments *\/` and `<annotations>`. Returns undefined
 * when the line ends before the closing parenthesis (a cut-off line).
 */
export function splitArgs(text: string): CallText | undefined {
  const args: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      if (i >= text.length) return undefined;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) return undefined;
      i = end + 1;
    } else if (c === '<' && i > start && /[\w)]/.test(text[i - 1]!)) {
      // an fd annotation: ends at '>' ('>' inside a path is escaped); a socket's brackets may hold "->"
      // (`<UNIX:[1->2]>`), a path's are only characters of its name (`</w/d[>`)
      const isPath = text[i + 1] === '/';
      let j = i + 1;
      while (j < text.length && text[j] !== '>') {
        if (text[j] === '\\') j++;
        else if (text[j] === '[' && !isPath) {
          const close = text.indexOf(']', j);
          if (close < 0) return undefined;
          j = close;
        }
        j++;
      }
      if (j >= text.length) return undefined;
      i = j;
    } else if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') depth--;
    else if (c === ')') {
      if (depth === 0) {
        const last = text.slice(start, i).trim();
        if (last !== '' || args.length > 0) args.push(last);
        return { args, after: text.slice(i + 1) };
      }
      depth--;
    } else if (c === ',' && depth === 0) {
      args.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  return undefined;
}

/** A parsed return value: `= 3</x>`, `= -1 ENOENT (...)`, `= ?`. */
export interface Ret {
  /** The numeric value; undefined for `?` (the call never returned). */
  value?: number;
  /** The `-y` path of a returned fd, decoded; undefined for pipes, sockets or no annotation. */
  path?: string;
  /** The errno name of a failed call. */
  errno?: string;
}

/** Parse the text after the closing parenthesis. Undefined when it is not `= ...`. */
export function parseRet(after: string): Ret | undefined {
  const m = /^\s*=\s*(-?\d+|0x[0-9a-fA-F]+|\?)(<(?:[^<>\\]|\\.)*(?:<[^<>]*>)?>)?(?:\s+([A-Z][A-Z0-9_]*))?/.exec(after);
  if (!m) return undefined;
  const ret: Ret = {};
  if (m[1] !== '?') ret.value = Number(m[1]);
  if (m[2]) {
    const a = parseAnnotated(m[1] + m[2]);
    if (a.isPath) ret.path = a.annotation;
  }
  if (m[3]) ret.errno = m[3];
  return ret;
}
