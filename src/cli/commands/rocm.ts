/**
 * `rocmflow rocm list`: the TheRock builds published for a target's GPU
 * family, newest first (by version: alpha < rc < release, nightlies by date).
 */
import { usageError } from '../../errors.js';
import { DEFAULT_INDEX, KNOWN_INDEXES, listBuilds, type Build } from '../../fetch/therock-index.js';
import { intFlag, parseArgs, type FlagSpec } from '../args.js';
import type { Command, CommandIO } from '../command.js';
import { openSession } from '../session.js';
import { targetByName } from '../../plugin/select-target.js';

const USAGE = `Usage:
  rocmflow rocm list [--target T | --family F] [--index URL] [--limit N] [--json] [--config F]
      List TheRock ROCm tarballs for a target (default gfx1151) or a GPU
      family (gfx1151, gfx110X-all, gfx120X-all, gfx94X-dcgpu, multiarch...),
      newest first: name, version, date, size.
      --index    an index page URL (a mirror), or one of: ${Object.keys(KNOWN_INDEXES).join(', ')}
                 (default ${DEFAULT_INDEX})
      --limit N  show the newest N (default 20)
      --json     print a JSON array of builds
      --config F the config file (its plugins' targets are known too)`;

const FLAGS: Record<string, FlagSpec> = {
  target: { type: 'string', short: 't' },
  family: { type: 'string' },
  index: { type: 'string' },
  limit: { type: 'string', short: 'n' },
  json: { type: 'boolean' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

/** The TheRock family of a target, from its definition's `runtime` (built-in or a plugin of the config). */
async function familyOfTarget(name: string, io: CommandIO, configFile: string | undefined): Promise<string> {
  const session = await openSession(io, { config: configFile });
  try {
    const t = targetByName(session.registry, name);
    if (t.runtime.kind !== 'therock')
      throw usageError('E_USAGE', `rocm list: target "${name}" does not use TheRock ROCm (its runtime is "${t.runtime.kind}"); use --family`);
    return t.runtime.family;
  } finally {
    await session.close();
  }
}

function humanSize(n: number | undefined): string {
  if (n === undefined) return '-';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) (v /= 1000), i++;
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

function table(builds: readonly Build[]): string[] {
  const rows = builds.map((b) => [b.name, b.version, b.mtime ? b.mtime.slice(0, 16).replace('T', ' ') : '-', humanSize(b.size)]);
  const head = ['NAME', 'VERSION', 'DATE (UTC)', 'SIZE'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === 3 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd());
}

export const rocmCommand: Command = {
  name: 'rocm',
  summary: 'list the TheRock ROCm builds available for a target',
  usage: USAGE,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
      io.out(USAGE);
      return sub ? 0 : 2;
    }
    if (sub !== 'list') throw usageError('E_USAGE', `rocm: unknown subcommand "${sub}" (expected: list)`);
    const { flags, positionals } = parseArgs(rest, FLAGS, 'rocm list');
    if (flags.help) {
      io.out(USAGE);
      return 0;
    }
    if (positionals.length > 0) throw usageError('E_USAGE', `rocm list: unexpected argument "${positionals[0]}"`);
    if (flags.target && flags.family) throw usageError('E_USAGE', 'rocm list: give --target or --family, not both');
    const family = typeof flags.family === 'string' ? flags.family : await familyOfTarget(typeof flags.target === 'string' ? flags.target : 'gfx1151', io, flags.config as string | undefined);
    const limit = intFlag(flags.limit, 'limit', 'rocm list') ?? 20;
    const index = typeof flags.index === 'string' ? flags.index : undefined;
    const builds = (await listBuilds({ index, family, signal: io.signal })).slice(0, limit);
    if (flags.json) io.out(JSON.stringify(builds, null, 2));
    else for (const line of table(builds)) io.out(line);
    return 0;
  },
};
