import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { usageError } from '../../errors.js';
import { parseTraceFiles, type TraceParse } from '../../trace/parse.js';
import { runTraced } from '../../trace/run.js';
import type { Command, CommandIO } from '../command.js';

const USAGE = `Usage:
  rocmflow trace parse FILE... [--json] [--full] [--cwd DIR]
      Parse an strace log (or the PREFIX.<pid> files of strace -ff -o PREFIX).
  rocmflow trace run [--out FILE] [--per-pid] [--json] [--full] -- CMD [ARGS...]
      Run CMD under strace, then parse its log. Exits with CMD's exit code.

  --json      print the access set as JSON: {files, executables, missing, devices}
  --full      with --json, also print created, removed, virtual, directories, failed, pids, warnings
  --cwd DIR   working directory of the first process, for logs made without -y
  --out FILE  keep the strace log here (default: a temporary file, removed afterwards)
  --per-pid   write one log per process (strace -ff)`;

const SHOWN = 10;

/** `rocmflow trace parse|run`: strace logs to access sets. */
export const traceCommand: Command = {
  name: 'trace',
  summary: 'Run a command under strace, or parse an strace log, into the files it needs',
  usage: USAGE,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    if (sub === 'parse') return parseSub(rest, io);
    if (sub === 'run') return runSub(rest, io);
    if (sub === undefined || sub === '--help' || sub === '-h') {
      io.out(USAGE);
      return sub === undefined ? 2 : 0;
    }
    throw usageError('E_USAGE', `trace: unknown subcommand "${sub}" (expected parse or run)`);
  },
};

const OUTPUT_OPTIONS = { json: { type: 'boolean' }, full: { type: 'boolean' } } as const;

/** node:util's parse errors are usage errors. */
function usage<T>(what: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw usageError('E_USAGE', `trace ${what}: ${(e as Error).message}`);
  }
}

async function parseSub(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = usage('parse', () => parseArgs({
    args: argv, allowPositionals: true, strict: true, options: { ...OUTPUT_OPTIONS, cwd: { type: 'string' } },
  }));
  if (positionals.length === 0) throw usageError('E_USAGE', 'trace parse: no trace file given');
  const files = positionals.map((p) => resolve(io.cwd, p));
  const parsed = await parseTraceFiles(files, { cwd: values.cwd });
  print(parsed, io, Boolean(values.json), Boolean(values.full));
  return 0;
}

async function runSub(argv: string[], io: CommandIO): Promise<number> {
  const dash = argv.indexOf('--');
  const own = dash < 0 ? [] : argv.slice(0, dash);
  const command = dash < 0 ? argv : argv.slice(dash + 1);
  const { values, positionals } = usage('run', () => parseArgs({
    args: own, allowPositionals: true, strict: true,
    options: { ...OUTPUT_OPTIONS, out: { type: 'string' }, 'per-pid': { type: 'boolean' } },
  }));
  if (positionals.length > 0) throw usageError('E_USAGE', `trace run: unexpected "${positionals[0]}" before --`);
  if (command.length === 0 || (dash < 0 && command[0]!.startsWith('-'))) {
    throw usageError('E_USAGE', 'trace run: no command given (rocmflow trace run [options] -- CMD ARGS...)');
  }
  const tmp = values.out ? undefined : await mkdtemp(join(tmpdir(), 'rocmflow-trace-'));
  const logPath = values.out ? resolve(io.cwd, values.out) : join(tmp!, 'strace.log');
  try {
    const run = await runTraced({
      command, cwd: io.cwd, env: io.env as Record<string, string>, logPath,
      perPid: Boolean(values['per-pid']), signal: io.signal, capture: true,
    });
    // the traced command's own output goes to stderr, so stdout stays the parse
    for (const line of `${run.stdout ?? ''}${run.stderr ?? ''}`.split('\n').filter(Boolean)) io.err(line);
    const parsed = await parseTraceFiles(run.logFiles);
    print(parsed, io, Boolean(values.json), Boolean(values.full));
    if (!values.json) io.out(`command ${run.signal ? `killed by ${run.signal}` : `exited with ${run.exitCode}`}; log: ${values.out ? run.logFiles.join(' ') : '(removed)'}`);
    return run.exitCode ?? 1;
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

function print(p: TraceParse, io: CommandIO, json: boolean, full: boolean): void {
  for (const w of p.warnings) io.err(`warning: ${w}`);
  if (json) {
    io.out(JSON.stringify(full ? p : p.access, null, 2));
    return;
  }
  const a = p.access;
  io.out(`${a.files.length} files, ${a.executables.length} executables, ${a.missing.length} missing, ` +
    `${a.devices.length} devices, ${p.created.length} created by the program (${p.pids.length} processes)`);
  const list = (title: string, items: string[]) => {
    if (items.length === 0) return;
    io.out(`${title}:`);
    for (const i of items.slice(0, SHOWN)) io.out(`  ${i}`);
    if (items.length > SHOWN) io.out(`  ... ${items.length - SHOWN} more`);
  };
  list('executables', a.executables);
  list('files', a.files.map((f) => (f.path === f.resolved ? f.path : `${f.path} -> ${f.resolved}`)));
  list('devices', a.devices);
  list('missing', a.missing);
}
