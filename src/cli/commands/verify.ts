/**
 * `rocmflow verify`: check images built elsewhere on the machine with the
 * GPU (see src/pipeline/verify-image.ts).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from '../command.js';
import { parseArgs } from '../args.js';
import { RocmflowError, usageError } from '../../errors.js';
import { verifyImages } from '../../pipeline/verify-image.js';
import type { ImageWorkload } from '../../pipeline/images.js';
import { loadRegistry } from '../../plugin/load.js';
import { targetByName } from '../../plugin/select-target.js';

const USAGE = `usage: rocmflow verify --full IMAGE --minimal IMAGE --model FILE [options]

Run on the machine with the GPU: unpack the full and the minimal image
(built here or elsewhere, e.g. in CI with --no-device), run the workload
they were verified with in both on this machine's GPU, compare the texts,
report tokens/s, trace the minimal run and list every path it failed to
open that the full image has (what the trim missed), and check the numbers
of both against a CPU reference (the full image's llama.cpp with no device,
or --reference). Exits 1 when texts differ, a run fails or the numbers are
beyond the limits.

IMAGE is an OCI archive (minimal.oci.tar), an OCI layout directory, a
docker archive (minimal.docker.tar), or a root directory.

  --full IMAGE          the full image (or its root)
  --minimal IMAGE       the minimal image (or its root)
  --model FILE          the model the images were verified with (mounted at /models)
  --workload FILE       strace-trace's workload.json, for roots or images without the workload label
  --reference DIR       numerics-reference's output (reference.json, base.kld) as the CPU reference
  --host-provided PATH  bind this host file at the same path (the GPU driver's libraries; repeatable);
                        images name theirs in their label, roots need it
  --no-numerics         skip the numeric check
  --no-device           run without the GPU (CPU fallback), to check images where there is none
  --work-dir DIR        where to unpack (default: a temp directory, removed afterwards)
  --keep                keep the work directory
  --out FILE            write the result as JSON there
  --json                print the result as one JSON object`;

/** The `rocmflow verify` command. */
export const verifyCommand: Command = {
  name: 'verify',
  summary: 'check full and minimal images on the GPU machine: texts, tokens/s, what the trim missed, numbers',
  usage: USAGE,
  async run(argv, io) {
    const str = { type: 'string' } as const;
    const bool = { type: 'boolean' } as const;
    const { flags, positionals } = parseArgs(argv, {
      full: str, minimal: str, model: str, workload: str, reference: str, 'no-numerics': bool, 'no-device': bool,
      'work-dir': str, keep: bool, 'host-provided': { type: 'string', multiple: true }, out: str, json: bool, help: { type: 'boolean', short: 'h' }, debug: bool,
    }, 'verify');
    if (flags.help) {
      io.out(USAGE);
      return 0;
    }
    if (positionals.length) throw usageError('E_USAGE', `verify: unexpected argument ${JSON.stringify(positionals[0])} (rocmflow verify --help)`);
    for (const k of ['full', 'minimal', 'model'] as const) if (typeof flags[k] !== 'string') throw usageError('E_USAGE', `verify: --${k} is required (rocmflow verify --help)`);
    const at = (k: string) => (typeof flags[k] === 'string' ? resolve(io.cwd, flags[k] as string) : undefined);
    let workload: ImageWorkload | undefined;
    if (at('workload')) {
      try {
        workload = JSON.parse(await readFile(at('workload')!, 'utf8')) as ImageWorkload;
      } catch (e) {
        throw usageError('E_USAGE', `verify: --workload ${at('workload')}: ${(e as Error).message}`);
      }
    }
    const given = at('work-dir');
    const workDir = given ?? await mkdtemp(join(tmpdir(), 'rocmflow-verify-'));
    let lastStep = '';
    try {
      const r = await verifyImages({
        full: at('full')!, minimal: at('minimal')!, model: at('model')!, workload, reference: at('reference'),
        hostProvided: ((flags['host-provided'] as string[] | undefined) ?? []).map((p) => {
          if (!p.startsWith('/')) throw usageError('E_USAGE', `verify: --host-provided ${p}: give an absolute path`);
          return p;
        }),
        targetRules: async (name) => {
          const registry = await loadRegistry({ plugins: [], configDir: io.cwd });
          if (!registry.targets.has(name)) return null;
          const def = targetByName(registry, name);
          return { devices: def.devices, hostProvided: def.hostProvided ?? [] };
        },
        noNumerics: flags['no-numerics'] === true, noDevice: flags['no-device'] === true, workDir, signal: io.signal,
        log: (l) => { if (!flags.json) io.err(l); },
        onProgress: (step) => {
          if (step !== lastStep && !flags.json) io.err(step);
          lastStep = step;
        },
      });
      if (at('out')) await writeFile(at('out')!, JSON.stringify(r, null, 2) + '\n');
      if (flags.json) io.out(JSON.stringify(r));
      else for (const l of r.lines) io.out(l);
      if (!r.ok) throw new RocmflowError('E_VERIFY', `verify: ${r.failures[0]}`, { details: [...r.failures.slice(1), ...(r.missed.length ? ['paths the minimal run failed to open that the full image has:', ...r.missed] : [])] });
      return 0;
    } finally {
      if (!given && flags.keep !== true) await rm(workDir, { recursive: true, force: true });
      else if (flags.keep === true || given) io.err(`work directory: ${workDir}`);
    }
  },
};
