/**
 * `rocmflow trim`: strace logs + a root layout → a trimmed root directory
 * with its manifest and report, optionally verified by running a command in
 * both roots. The pipeline's trim-runtime task does the same through the
 * library; this is the by-hand entry.
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { parseArgs } from '../args.js';
import { RocmflowError, usageError } from '../../errors.js';
import { parseTraceFiles } from '../../trace/parse.js';
import { assembleRoot } from '../../runtime/assemble.js';
import { computeClosure } from '../../runtime/closure.js';
import type { RootLayout } from '../../runtime/layout.js';
import { layoutFiles, trimReport } from '../../runtime/report.js';
import type { SandboxBind } from '../../runtime/sandbox.js';
import { verifyRoot } from '../../runtime/verify.js';
import { loadRegistry } from '../../plugin/load.js';
import { targetByName } from '../../plugin/select-target.js';

const USAGE = `usage: rocmflow trim TRACE... --dest DIR [options] [-- COMMAND...]

Trim a root to what the traced workload needs, assemble it into DIR, and
(when COMMAND is given) verify it by running COMMAND in the full layout and
in the trimmed root, comparing stdout. TRACE is an strace log taken inside
the layout (or the prefix of -ff logs).

  --dest DIR              where to assemble the trimmed root (must be empty)
  --base DIR              the root's base (default /)
  --layer MOUNT=DIR       mount host DIR at MOUNT inside the root (repeatable)
  --mounted GLOB          in-root paths mounted at run time, e.g. /models/** (repeatable)
  --bind DIR=MOUNT        bind host DIR at MOUNT for the verification runs (repeatable)
  --exclude GLOB          never include (repeatable; /proc, /sys, /dev always)
  --keep GLOB / --drop GLOB / --host-provided GLOB   target rules (repeatable)
  --target NAME           add that target's keep, drop and host-provided rules (e.g. gfx1151)
  --library-path DIRS     LD_LIBRARY_PATH the workload runs with (colon-separated)
  --env KEY=VALUE         environment of the verification runs (repeatable)
  --manifest FILE         manifest path (default DIR/../<name>.manifest.json)
  --report FILE           write the Markdown report there
  --json                  print one JSON object instead of lines`;

const pairs = (values: string[] | undefined, flag: string): [string, string][] =>
  (values ?? []).map((v) => {
    const eq = v.indexOf('=');
    if (eq <= 0 || eq === v.length - 1) throw usageError('E_USAGE', `trim: --${flag} expects A=B, got ${JSON.stringify(v)}`);
    return [v.slice(0, eq), v.slice(eq + 1)];
  });

/** The `rocmflow trim` command. */
export const trimCommand: Command = {
  name: 'trim',
  summary: 'trim a root to what an strace log shows it needs, assemble and verify it',
  usage: USAGE,
  async run(argv, io) {
    const multi = { type: 'string', multiple: true } as const;
    const { flags, positionals, rest } = parseArgs(argv, {
      dest: { type: 'string' }, base: { type: 'string' }, layer: multi, mounted: multi, bind: multi, exclude: multi,
      keep: multi, drop: multi, 'host-provided': multi, 'library-path': { type: 'string' }, env: multi,
      manifest: { type: 'string' }, report: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      debug: { type: 'boolean' }, target: { type: 'string' },
    }, 'trim');
    if (flags.help) {
      io.out(USAGE);
      return 0;
    }
    if (positionals.length === 0) throw usageError('E_USAGE', 'trim: give at least one strace log (rocmflow trim --help)');
    if (typeof flags.dest !== 'string') throw usageError('E_USAGE', 'trim: --dest DIR is required');
    const list = (k: string) => flags[k] as string[] | undefined;
    const layout: RootLayout = {
      base: resolve(io.cwd, (flags.base as string | undefined) ?? '/'),
      layers: pairs(list('layer'), 'layer').map(([mount, dir]) => ({ mount, source: resolve(io.cwd, dir) })),
    };
    const binds: SandboxBind[] = pairs(list('bind'), 'bind').map(([dir, dest]) => ({ source: resolve(io.cwd, dir), dest }));
    const libraryPath = (flags['library-path'] as string | undefined)?.split(':').filter(Boolean);
    const env = Object.fromEntries(pairs(list('env'), 'env'));
    if (libraryPath && env.LD_LIBRARY_PATH === undefined) env.LD_LIBRARY_PATH = libraryPath.join(':');

    // a target's rules, as the pipeline applies them: its keep rules may depend on what was loaded
    const target = typeof flags.target === 'string'
      ? targetByName(await loadRegistry({ plugins: [], configDir: io.cwd }), flags.target)
      : null;
    const trace = await parseTraceFiles(positionals.map((p) => resolve(io.cwd, p)));
    const rules = {
      keep: [...(list('keep') ?? []), ...(target?.keep ?? [])], drop: [...(list('drop') ?? []), ...(target?.drop ?? [])],
      hostProvided: [...(list('host-provided') ?? []), ...(target?.hostProvided ?? [])],
    };
    const closure = await computeClosure({
      layout, access: trace.access, libraryPath,
      exclude: list('exclude'), mounted: [...(list('mounted') ?? []), ...binds.map((b) => `${b.dest}/**`)],
      ...rules,
    });
    const byRule = closure.entries.filter((e) => e.reason === 'rule' && e.type === 'file').length;
    const dest = resolve(io.cwd, flags.dest);
    const manifest = await assembleRoot(closure, {
      layout, dest, signal: io.signal,
      manifestPath: typeof flags.manifest === 'string' ? resolve(io.cwd, flags.manifest) : undefined,
    });
    const verify = rest.length > 0 ? await verifyRoot({ trimmed: dest, full: layout, command: rest, env, binds, signal: io.signal }) : null;
    if (typeof flags.report === 'string') {
      // with the host's / as base, the full side is the layers: walking / would list the whole machine
      const full = layout.base !== '/' ? layout : layout.layers.flatMap((l) =>
        layoutFiles({ base: l.source, layers: [] }).map((f) => ({ ...f, path: l.mount.replace(/\/$/, '') + f.path })));
      await writeFile(resolve(io.cwd, flags.report), trimReport({ full, manifest }).markdown);
    }

    if (flags.json) {
      io.out(JSON.stringify({ dest, files: manifest.files, bytes: manifest.bytes, hostProvided: closure.hostProvided,
        excluded: closure.excluded.length, keptByRule: byRule, ...(target ? { target: target.name } : {}), warnings: [...trace.warnings, ...closure.warnings], verify }));
    } else {
      for (const w of [...trace.warnings, ...closure.warnings]) io.err(`warning: ${w}`);
      io.out(`trimmed root: ${dest} (${manifest.files} files, ${(manifest.bytes / 2 ** 20).toFixed(1)} MiB)${target ? `; ${target.name} rules kept ${byRule} files the trace did not show` : ''}`);
      if (closure.hostProvided.length) io.out(`host-provided (not included): ${closure.hostProvided.join(', ')}`);
      if (verify?.ok) io.out(`verified with ${verify.method}: identical output`);
    }
    if (verify && !verify.ok)
      throw new RocmflowError('E_VERIFY', `trimmed root ${dest} failed verification (${verify.method}, exit ${verify.exitCodes.trimmed} vs ${verify.exitCodes.full})`, {
        details: verify.missing.length ? ['paths the trimmed run could not find:', ...verify.missing] : [verify.trimmedStderr.trim().split('\n').slice(-3).join(' | ')],
      });
    return 0;
  },
};
