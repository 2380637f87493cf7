/**
 * `rocmflow exec`: run the minimal image that trim-runtime produced for the
 * current target with a models directory mounted at /models: with podman,
 * or docker when its daemon answers (the image is loaded from its archive,
 * with the flags this machine needs, found by probing once and remembered in
 * the state directory), else the trimmed root directory through bubblewrap,
 * else chroot as root. llama-server by default; `--entrypoint` runs another
 * program of the image (llama-completion, ...).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command, CommandIO } from '../command.js';
import { COMMON_FLAGS, parseArgs } from '../args.js';
import { openSession } from '../session.js';
import { resolveTarget } from '../../plugin/select-target.js';
import { Executor } from '../../engine/executor.js';
import { RocmflowError, usageError } from '../../errors.js';
import { expandDevices, sandboxArgv, which } from '../../runtime/sandbox.js';
import { cachedProbe, runArgv, type ContainerEngine, type EngineName } from '../../runtime/container-engine.js';
import { SERVE_ENV } from '../../pipeline/images.js';
import { LLAMA_MOUNT, MODELS_MOUNT } from '../../pipeline/runtime.js';

const ENGINES = ['auto', 'podman', 'docker', 'bwrap', 'chroot'] as const;
type Engine = (typeof ENGINES)[number];

const USAGE = `usage: rocmflow exec [--model NAME] [--entrypoint PROGRAM] [--target T] [--models-dir DIR] [--engine auto|podman|docker|bwrap|chroot] [--dry-run] -- [ARGS...]

Run the minimal image of the target (the last trim-runtime result) with
the models directory mounted read-only at /models. Without arguments
llama-server serves /models/model.gguf on port 8080.

  --model NAME        a file in the models directory: passes -m /models/NAME
  --entrypoint PROG   run another program of the image, e.g. llama-completion
  --models-dir DIR    the models directory (default: config modelsDir, env MODEL_BASE_PATH)
  --engine E          podman, else docker when its daemon answers (auto), else bwrap, else chroot as root
  --dry-run           print the commands instead of running them
  --target T          which target's image (default: config target, else auto)

podman and docker get the flags this machine needs (storage driver, cgroup
manager, OCI runtime, limits), found by trying the defaults once and
remembered in <stateDir>/container-engines.json.`;

/** What exec would run. */
export interface ExecPlan {
  engine: Exclude<Engine, 'auto'>;
  /** Commands to run first (loading the image). */
  before: string[][];
  argv: string[];
  /** Why the engine got its flags. */
  notes: string[];
}

interface TrimOutput {
  rootfs: string;
  dockerArchive: string;
  image: string;
  env: Record<string, string>;
  devices: string[];
}

function run(argv: string[], signal: AbortSignal): Promise<number> {
  return new Promise((res, rej) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' });
    const onAbort = () => child.kill('SIGTERM');
    signal.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => rej(new RocmflowError('E_EXEC', `cannot start ${argv[0]}: ${e.message}`)));
    child.on('close', (code, sig) => {
      signal.removeEventListener('abort', onAbort);
      res(code ?? (sig ? 130 : 1));
    });
  });
}

/** The in-image program: a name in /opt/llama/bin, or an absolute path. */
function program(entrypoint: string | undefined): string {
  if (!entrypoint) return `${LLAMA_MOUNT}/bin/llama-server`;
  if (entrypoint.startsWith('/')) return entrypoint;
  if (!/^[A-Za-z0-9._-]+$/.test(entrypoint)) throw usageError('E_USAGE', `exec: --entrypoint ${JSON.stringify(entrypoint)}: give a program name (llama-completion) or an absolute in-image path`);
  return `${LLAMA_MOUNT}/bin/${entrypoint}`;
}

/** The container engine to use: podman or docker with probed flags; null for the sandbox methods. */
async function containerEngine(
  requested: Engine, trim: TrimOutput, probeFile: string, opts: { dryRun: boolean; io: CommandIO },
): Promise<{ method: Exclude<Engine, 'auto'>; engine: (ContainerEngine & { cached: boolean }) | null }> {
  const candidates: EngineName[] = requested === 'podman' || requested === 'docker' ? [requested] : requested === 'auto' ? ['podman', 'docker'] : [];
  const why: string[] = [];
  for (const name of candidates) {
    if (!which(name)) {
      if (requested !== 'auto') throw new RocmflowError('E_MISSING_TOOL', `${name} not found: install it, or use --engine auto`);
      continue;
    }
    try {
      const engine = await cachedProbe(probeFile, {
        name, archive: opts.dryRun ? undefined : trim.dockerArchive, image: trim.image, check: [program(undefined), '--version'],
        probe: !opts.dryRun, signal: opts.io.signal, log: (l) => opts.io.err(l),
      });
      return { method: name, engine };
    } catch (e) {
      if (requested !== 'auto' || !(e instanceof RocmflowError)) throw e;
      why.push(e.message);
    }
  }
  for (const w of why) opts.io.err(`rocmflow exec: not using it: ${w}`);
  if (requested === 'bwrap' && !which('bwrap')) throw new RocmflowError('E_MISSING_TOOL', 'bwrap not found: apt install bubblewrap, or use --engine auto');
  if (requested === 'chroot' && process.getuid?.() !== 0) throw usageError('E_USAGE', 'exec: --engine chroot needs root');
  if (requested === 'bwrap' || requested === 'chroot') return { method: requested, engine: null };
  if (which('bwrap')) return { method: 'bwrap', engine: null };
  if (process.getuid?.() === 0) return { method: 'chroot', engine: null };
  throw new RocmflowError('E_MISSING_TOOL', 'no podman, docker or bwrap found: apt install podman (or bubblewrap)');
}

/** Build the plan from the chosen engine. */
export function planExec(
  trim: TrimOutput, method: Exclude<Engine, 'auto'>, engine: ContainerEngine | null,
  opts: { modelsDir: string | null; entrypoint?: string; args: string[]; interactive: boolean },
): ExecPlan {
  const binds = opts.modelsDir ? [{ source: opts.modelsDir, dest: MODELS_MOUNT }] : [];
  if (engine) {
    const argv = runArgv(engine, {
      image: trim.image, entrypoint: opts.entrypoint ? program(opts.entrypoint) : undefined, args: opts.args, binds,
      devices: expandDevices(trim.devices), groups: trim.devices.length ? ['video'] : [], interactive: opts.interactive,
    });
    return { engine: method, before: [[engine.bin, ...engine.global, 'load', '-i', trim.dockerArchive]], argv, notes: engine.reasons };
  }
  const cmd = sandboxArgv({
    root: trim.rootfs, binds, devices: trim.devices,
    // what the image's config sets: the serving defaults and the target's environment
    env: { ...SERVE_ENV, ...trim.env },
    method: method === 'chroot' ? 'chroot' : 'bwrap', command: [program(opts.entrypoint), ...opts.args],
  });
  return { engine: method, before: [], argv: cmd.argv, notes: [] };
}

/** The `rocmflow exec` command. */
export const execCommand: Command = {
  name: 'exec',
  summary: 'run the minimal image (llama-server) with a models directory mounted',
  usage: USAGE,
  async run(argv, io) {
    const { flags, rest, positionals } = parseArgs(argv, {
      ...COMMON_FLAGS, model: { type: 'string' }, 'models-dir': { type: 'string' }, engine: { type: 'string' }, entrypoint: { type: 'string' }, 'dry-run': { type: 'boolean' },
    }, 'exec');
    if (flags.help) {
      io.out(USAGE);
      return 0;
    }
    if (positionals.length) throw usageError('E_USAGE', `exec: put the program's arguments after --: rocmflow exec -- ${positionals.join(' ')}`);
    const engine = (flags.engine as string | undefined) ?? 'auto';
    if (!(ENGINES as readonly string[]).includes(engine)) throw usageError('E_USAGE', `exec: --engine must be one of ${ENGINES.join(', ')}`);
    const entrypoint = flags.entrypoint as string | undefined;
    if (entrypoint !== undefined) program(entrypoint);
    const session = await openSession(io, { config: flags.config as string | undefined, cacheDir: flags['cache-dir'] as string | undefined, target: flags.target as string | undefined });
    try {
      const { config, registry } = session;
      const { target } = await resolveTarget(config.target, registry, { targetOptions: config.targets, env: io.env });
      const out = Executor.outDir(config, target.name, 'trim-runtime');
      const rootfs = join(out, 'rootfs');
      const dockerArchive = join(out, 'images', 'minimal.docker.tar');
      const reportFile = join(out, 'report.json');
      const reproFile = join(out, 'reproducibility.json');
      const rerun = `run \`rocmflow run trim-runtime --target ${target.name}\``;
      if (!existsSync(rootfs) || !existsSync(dockerArchive) || !existsSync(reproFile) || !existsSync(reportFile))
        throw usageError('E_NO_RUNTIME', `no minimal runtime for target ${target.name} in ${out}: ${rerun} first`);
      const repro = readJson(reproFile) as { target?: { env?: Record<string, string> } };
      const image = (readJson(reportFile) as { images?: { minimal?: { name?: unknown } } }).images?.minimal?.name;
      if (typeof image !== 'string') throw usageError('E_NO_RUNTIME', `${reportFile} names no minimal image (made by an older rocmflow): ${rerun}`);
      const modelsFlag = flags['models-dir'] as string | undefined;
      const modelsDir = modelsFlag ? resolve(io.cwd, modelsFlag) : config.modelsDir;
      if (modelsDir && !existsSync(modelsDir)) throw usageError('E_USAGE', `exec: models directory ${modelsDir} does not exist`);
      const args = [...rest];
      if (typeof flags.model === 'string') {
        if (!modelsDir) throw usageError('E_USAGE', 'exec: --model needs a models directory: --models-dir DIR, modelsDir in the config, or MODEL_BASE_PATH');
        if (!existsSync(join(modelsDir, flags.model))) throw usageError('E_USAGE', `exec: --model ${flags.model}: no such file in ${modelsDir}`);
        args.unshift('-m', `${MODELS_MOUNT}/${flags.model}`);
      }
      const trim: TrimOutput = { rootfs, dockerArchive, image, env: repro.target?.env ?? {}, devices: target.definition.devices };
      const dryRun = !!flags['dry-run'];
      const chosen = await containerEngine(engine as Engine, trim, join(config.stateDir, 'container-engines.json'), { dryRun, io });
      const plan = planExec(trim, chosen.method, chosen.engine, { modelsDir, entrypoint, args, interactive: !!process.stdin.isTTY && !dryRun });
      if (dryRun) {
        for (const b of plan.before) io.out(b.join(' '));
        io.out(plan.argv.join(' '));
        for (const n of plan.notes) io.out(`# ${n}`);
        return 0;
      }
      if (chosen.engine?.cached === false) for (const n of plan.notes) io.err(`rocmflow exec: ${chosen.method} needs ${n}`);
      return await run(plan.argv, io.signal);
    } finally {
      await session.close();
    }
  },
};

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch (e) {
    throw new RocmflowError('E_BAD_STATE', `${file}: not readable JSON (${(e as Error).message}): rerun trim-runtime`);
  }
}
