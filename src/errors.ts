/**
 * A user-facing error: bad config, bad input, a missing tool, a failed download.
 * The CLI prints `message` on one line (no stack unless --debug) and exits
 * with `exitCode`. Internal bugs stay plain `Error`s.
 */
export class RocmflowError extends Error {
  readonly code: string;
  readonly exitCode: 1 | 2;
  /** Extra lines (e.g. the paths a trimmed run could not find) shown under the message. */
  readonly details: readonly string[];

  constructor(code: string, message: string, opts: { exitCode?: 1 | 2; details?: readonly string[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RocmflowError';
    this.code = code;
    this.exitCode = opts.exitCode ?? 1;
    this.details = opts.details ?? [];
  }
}

/** Usage and config errors exit with 2. */
export function usageError(code: string, message: string, details?: readonly string[]): RocmflowError {
  return new RocmflowError(code, message, { exitCode: 2, details });
}

/**
 * Duck-typed: a plugin may throw a RocmflowError from its own copy of this
 * module (TypeScript sources loaded through tsx next to rocmflow's compiled
 * code), and that must still print as one clean line.
 */
export function isRocmflowError(e: unknown): e is RocmflowError {
  return (
    e instanceof RocmflowError ||
    (e instanceof Error && e.name === 'RocmflowError' && typeof (e as RocmflowError).code === 'string' && typeof (e as RocmflowError).exitCode === 'number')
  );
}

/** A tool that is not installed: say what to install. */
export function missingTool(tool: string, install: string): RocmflowError {
  return new RocmflowError('E_MISSING_TOOL', `${tool} not found: ${install}`);
}
