/**
 * Test helpers for src/trace: temp dirs (real, symlink-free paths, so they
 * compare with the kernel's resolved paths) and tracing a real command.
 */
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { parseTraceFiles, type TraceParse } from '../../src/trace/parse.js';
import { runTraced, type TracedRun } from '../../src/trace/run.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh temp dir, by its real path. Removed after the test file. */
export function tempDir(prefix = 'rocmflow-trace-test-'): string {
  const d = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  dirs.push(d);
  return d;
}

/** Run `command` under real strace in `cwd` and parse its log. */
export async function traced(command: string[], opts: { cwd: string; perPid?: boolean }): Promise<{ parse: TraceParse; run: TracedRun }> {
  const logDir = tempDir('rocmflow-trace-log-');
  const run = await runTraced({ command, cwd: opts.cwd, logPath: join(logDir, 'trace.log'), perPid: opts.perPid, capture: true });
  return { parse: await parseTraceFiles(run.logFiles), run };
}

/** The `resolved` of the file entry for `path`, if listed. */
export function resolvedOf(p: TraceParse, path: string): string | undefined {
  return p.access.files.find((f) => f.path === path)?.resolved;
}

/** Every path the parse would ship (requested and resolved). */
export function shipped(p: TraceParse): Set<string> {
  return new Set(p.access.files.flatMap((f) => [f.path, f.resolved]));
}
