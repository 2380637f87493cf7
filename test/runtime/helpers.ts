/**
 * Helpers for the runtime tests: temp directories, C programs compiled with
 * the system's cc, and the full trace → closure → assemble → verify round
 * trip that every workload test goes through.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { assembleRoot, type RootManifest } from '../../src/runtime/assemble.js';
import { computeClosure, type Closure, type ClosureOptions } from '../../src/runtime/closure.js';
import type { RootLayout } from '../../src/runtime/layout.js';
import type { SandboxBind } from '../../src/runtime/sandbox.js';
import { traceInRoot, type TraceInRootResult } from '../../src/runtime/trace-in-root.js';
import { verifyRoot, type VerifyResult } from '../../src/runtime/verify.js';

const made: string[] = [];

/** A fresh temp directory, removed by `cleanTemps`. */
export function temp(prefix = 'rocmflow-rt-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

export function cleanTemps(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Write a file, making its parents. */
export function put(path: string, text: string, mode?: number): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text, mode === undefined ? undefined : { mode });
  return path;
}

/** Compile C source with cc; `args` go before the output (e.g. `-shared`, `-Wl,-rpath,...`). */
export function cc(source: string, out: string, args: string[] = []): string {
  const src = put(out + '.c', source);
  mkdirSync(dirname(out), { recursive: true });
  execFileSync('cc', ['-O1', '-o', out, src, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  rmSync(src);
  return out;
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

/** Everything one trim round trip produced. */
export interface RoundTrip {
  traced: TraceInRootResult;
  closure: Closure;
  manifest: RootManifest;
  root: string;
  verify: VerifyResult;
}

/** Trace `command` in `layout`, trim, assemble into a temp dir, and verify it there. */
export async function roundTrip(
  layout: RootLayout,
  command: string[],
  opts: { env?: Record<string, string>; binds?: SandboxBind[]; cwd?: string; perPid?: boolean; closure?: Partial<ClosureOptions> } = {},
): Promise<RoundTrip> {
  const run = { env: opts.env, binds: opts.binds, cwd: opts.cwd };
  const traced = await traceInRoot({ ...run, layout, command, perPid: opts.perPid });
  if (traced.run.exitCode !== 0) throw new Error(`traced run failed (${traced.run.exitCode}): ${traced.run.stderr}`);
  const closure = await computeClosure({
    layout,
    access: traced.trace.access,
    mounted: (opts.binds ?? []).map((b) => `${b.dest}/**`),
    libraryPath: opts.env?.LD_LIBRARY_PATH?.split(':'),
    ...opts.closure,
  });
  const out = temp('rocmflow-root-');
  const root = join(out, 'root');
  const manifest = await assembleRoot(closure, { layout, dest: root });
  const verify = await verifyRoot({ trimmed: root, full: layout, command, ...run });
  return { traced, closure, manifest, root, verify };
}
