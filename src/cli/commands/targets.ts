/**
 * `rocmflow targets [--json] [--root DIR]`: the known targets and whether
 * each is detected on this host, and which one `--target auto` picks.
 */
import type { Command, CommandIO } from '../command.js';
import { parseArgs } from '../args.js';
import { openSession } from '../session.js';
import { chooseAutoTarget, detectTargets, orderedTargets, type DetectedTarget } from '../../plugin/select-target.js';
import type { TargetDefinition } from '../../plugin/types.js';

/** The targets to show (built-ins and the config's plugins, in the one target order) and the config's `targets.<name>` options. */
export async function loadTargets(io: CommandIO, configFile?: string): Promise<{ targets: TargetDefinition<any>[]; options: Record<string, Record<string, unknown>> }> {
  const session = await openSession(io, { config: configFile });
  try {
    return { targets: orderedTargets(session.registry), options: session.config.targets as Record<string, Record<string, unknown>> };
  } finally {
    await session.close();
  }
}

/** One row of `rocmflow targets --json`. */
export interface TargetRow {
  name: string;
  family: string;
  arch: string | null;
  description: string;
  runtime: string;
  detected: boolean;
  detection: string;
  deviceIndex: number | null;
}

export function targetRows(detected: readonly DetectedTarget[]): TargetRow[] {
  return detected.map(({ target, detection }) => ({
    name: target.name,
    family: target.family,
    arch: target.arch ?? null,
    description: target.description,
    runtime: target.runtime.kind === 'therock' ? `therock ${target.runtime.family}` : target.runtime.kind === 'dir' ? `dir ${target.runtime.path}` : target.runtime.kind,
    detected: detection.found,
    detection: detection.description,
    deviceIndex: detection.deviceIndex ?? null,
  }));
}

export const targetsCommand: Command = {
  name: 'targets',
  summary: 'list the GPU/CPU targets and which are detected here',
  usage: [
    'rocmflow targets [--json] [--root DIR] [--config F]',
    '',
    'Lists every target with its family and runtime source, whether it is',
    'detected on this host (and how), and the one --target auto picks.',
    '  --json      print {targets: [...], auto} as JSON',
    '  --root DIR  look for /sys and /dev under DIR (for fake sysfs trees)',
    '  --config F  the config file (default: rocmflow.config.* or .rocmflowrc* found from the cwd)',
  ].join('\n'),
  async run(argv, io) {
    const { flags } = parseArgs(argv, { json: { type: 'boolean' }, root: { type: 'string' }, config: { type: 'string' }, debug: { type: 'boolean' } }, 'targets');
    const root = (flags.root as string | undefined) ?? '/';
    const { targets, options } = await loadTargets(io, flags.config as string | undefined);
    const detected = await detectTargets(targets, { root, env: io.env, options });
    const rows = targetRows(detected);
    const auto = chooseAutoTarget(detected);
    if (flags.json) {
      io.out(JSON.stringify({ targets: rows, auto: auto?.target.name ?? null }, null, 2));
      return 0;
    }
    const w = (k: keyof TargetRow, title: string) => Math.max(title.length, ...rows.map((r) => String(r[k] ?? '').length));
    const [wn, wf, wr] = [w('name', 'TARGET'), w('family', 'FAMILY'), w('runtime', 'RUNTIME')];
    io.out(`${'TARGET'.padEnd(wn)}  ${'FAMILY'.padEnd(wf)}  ${'RUNTIME'.padEnd(wr)}  DETECTED`);
    for (const r of rows) io.out(`${r.name.padEnd(wn)}  ${r.family.padEnd(wf)}  ${r.runtime.padEnd(wr)}  ${r.detected ? 'yes' : 'no '}  ${r.detection}`);
    io.out('');
    io.out(auto ? `--target auto → ${auto.target.name}: ${auto.detection.description}` : '--target auto → nothing detected');
    return 0;
  },
};
