/**
 * The rocmflow CLI entry: picks the command, sets up cancellation, prints
 * errors on one line, and is the only place that decides exit codes
 * (0 ok, 1 a task failed, 2 usage or config error).
 */
import { isRocmflowError } from '../errors.js';
import type { CommandIO } from './command.js';
import { nearest } from '../util/schema.js';
import { COMMANDS, type CommandEntry } from './commands/index.js';

function makeIO(ac: AbortController): CommandIO {
  const color = !!process.stdout.isTTY && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';
  // a reader that stops early (`rocmflow fatbin list ... | head`) ends the output, and the work with it, without a stack trace
  let closed = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    closed = true;
    ac.abort(new Error('standard output was closed'));
  });
  return {
    out: (line) => void (closed || process.stdout.write(line + '\n')),
    err: (line) => process.stderr.write(line + '\n'),
    cwd: process.cwd(),
    env: process.env,
    color,
    signal: ac.signal,
  };
}

function help(commands: readonly CommandEntry[]): string {
  const w = Math.max(...commands.map((c) => c.name.length));
  return [
    'rocmflow: build, trace, trim and package minimal llama.cpp runtimes, with a content cache',
    '',
    'usage: rocmflow <command> [options]',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'rocmflow <command> --help shows its options. --debug prints stack traces.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const ac = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    process.stderr.write(`\nrocmflow: ${sig}: stopping running tasks (again to force)\n`);
    ac.abort(new Error(`interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const io = makeIO(ac);
  const debug = argv.includes('--debug');
  const json = argv.includes('--json');
  const [name, ...rest] = argv;
  try {
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      io.out(help(COMMANDS));
      return name ? 0 : 2;
    }
    if (name === '--version' || name === '-V') {
      const pkg = (await import('../../package.json', { with: { type: 'json' } })).default;
      io.out(pkg.version);
      return 0;
    }
    const entry = COMMANDS.find((c) => c.name === name);
    if (!entry) {
      const near = nearest(name, COMMANDS.map((c) => c.name));
      io.err(`rocmflow: unknown command "${name}"${near ? ` (did you mean "${near}"?)` : ''}; see rocmflow --help`);
      return 2;
    }
    const cmd = await entry.load();
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(cmd.usage);
      return 0;
    }
    return await cmd.run(rest, io);
  } catch (e) {
    if (isRocmflowError(e)) {
      if (json) io.out(JSON.stringify({ type: 'error', code: e.code, message: e.message, details: e.details }));
      io.err(`rocmflow: ${e.message}`);
      for (const d of e.details) io.err(`  ${d}`);
      if (debug && e.stack) io.err(e.stack);
      return e.exitCode;
    }
    const err = e as Error;
    if (ac.signal.aborted) {
      io.err('rocmflow: interrupted');
      return 1;
    }
    io.err(`rocmflow: internal error: ${err?.message ?? err}`);
    if (debug) io.err(String(err?.stack));
    else io.err('  (run with --debug for the stack trace)');
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
