/**
 * A small argv parser: `--flag`, `--flag value`, `--flag=value`, `-j 4`,
 * optional-value flags (`--force [TASK]`), `--` to end options. Unknown
 * options are usage errors with a suggestion.
 */
import { usageError } from '../errors.js';
import { nearest } from '../util/schema.js';

export interface FlagSpec {
  /** `boolean`, `string` (value required), or `optional` (value only when the next token is not a flag). */
  type: 'boolean' | 'string' | 'optional';
  short?: string;
  /** May be given several times (values collected into an array). */
  multiple?: boolean;
}

export interface Parsed {
  flags: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  /** Everything after `--`. */
  rest: string[];
}

export function parseArgs(argv: readonly string[], spec: Record<string, FlagSpec>, command: string): Parsed {
  const flags: Parsed['flags'] = {};
  const positionals: string[] = [];
  const shorts = new Map(Object.entries(spec).filter(([, s]) => s.short).map(([k, s]) => [s.short!, k]));
  const set = (name: string, v: string | boolean) => {
    const s = spec[name]!;
    if (s.multiple) flags[name] = [...((flags[name] as string[] | undefined) ?? []), String(v)];
    else flags[name] = v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return { flags, positionals, rest: argv.slice(i + 1) };
    if (!a.startsWith('-') || a === '-') {
      positionals.push(a);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      inline = eq > 0 ? a.slice(eq + 1) : undefined;
    } else {
      const n = shorts.get(a.slice(1, 2));
      if (!n) throw usageError('E_USAGE', `${command}: unknown option ${a}`);
      name = n;
      if (a.length > 2) inline = a.slice(2);
    }
    const s = spec[name];
    if (!s) {
      const near = nearest(name, Object.keys(spec));
      throw usageError('E_USAGE', `${command}: unknown option --${name}${near ? ` (did you mean --${near}?)` : ''}`);
    }
    if (s.type === 'boolean') {
      if (inline !== undefined) throw usageError('E_USAGE', `${command}: --${name} takes no value`);
      set(name, true);
    } else if (inline !== undefined) set(name, inline);
    else if (s.type === 'string') {
      const v = argv[i + 1];
      if (v === undefined || (v.startsWith('-') && v.length > 1)) throw usageError('E_USAGE', `${command}: --${name} needs a value`);
      set(name, v);
      i++;
    } else {
      const v = argv[i + 1];
      if (v !== undefined && !v.startsWith('-')) {
        set(name, v);
        i++;
      } else set(name, true);
    }
  }
  return { flags, positionals, rest: [] };
}

export function intFlag(v: unknown, name: string, command: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw usageError('E_USAGE', `${command}: --${name} expects a positive integer, got "${v}"`);
  return n;
}

/** The flags every pipeline command accepts. */
export const COMMON_FLAGS: Record<string, FlagSpec> = {
  config: { type: 'string' },
  'cache-dir': { type: 'string' },
  target: { type: 'string', short: 't' },
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};
