/**
 * A CLI command: `rocmflow <name> ...`. Commands print through `io` and
 * return an exit code; only src/cli turns outcomes into exit codes.
 * Throwing a RocmflowError is also fine: main prints its one-line message
 * and exits with its exitCode (2 for usage/config errors, 1 otherwise).
 */
export interface CommandIO {
  /** Write a line to stdout. */
  out(line: string): void;
  /** Write a line to stderr. */
  err(line: string): void;
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  /** Is stdout a terminal (and colour allowed)? */
  readonly color: boolean;
  /** Cancelled on SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
  /** Where live output (the run's reporter) is drawn; process.stdout when absent. */
  readonly stdout?: Pick<NodeJS.WriteStream, 'write' | 'isTTY' | 'columns'>;
  /**
   * Set by the server (src/server/): `run` may only find every task fresh,
   * and throws `NotANoOp` (engine/executor.ts) before doing any work.
   */
  readonly onlyFresh?: boolean;
}

export interface Command {
  /** e.g. `trace` (subcommands are parsed by the command itself). */
  name: string;
  /** One line for `rocmflow --help`. */
  summary: string;
  /** Usage text shown by `rocmflow <name> --help`. */
  usage: string;
  run(argv: string[], io: CommandIO): Promise<number>;
}
