/**
 * `rocmflow exec`: run the minimal runtime that trim-runtime produced for
 * the current target (llama-server as entrypoint) with a models directory
 * mounted at /models: with podman or docker when installed (the image's
 * docker archive is loaded and its labels give the devices), else in the
 * trimmed root directory through bubblewrap, else chroot as root.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from '../command.js';
import { COMMON_FLAGS, parseArgs } from '../args.js';
import { openSession } from '../session.js';
import { resolveTarget } from '../../plugin/select-target.js';
import { Executor } from '../../engine/executor.js';
import { RocmflowError, usageError } from '../../errors.js';
import { expandDevices, sandboxArgv, which } from '../../runtime/sandbox.js';

const ENGINES = ['auto', 'podman', 'docker', 'bwrap', 'chroot'] as const;
type Engine = (typeof ENGINES)[number];

const USAGE = `usage: rocmflow exec [--model NAME] [--target T] [--models-dir DIR] [--engine auto|podman|docker|bwrap|chroot] [--dry-run] -- [llama-server args...]

Run the minimal runtime of the target (the last trim-runtime result) with
the models directory mounted read-only at /models.

  --model NAME      a file in the models directory: passes -m /models/NAME
  --models-dir DIR  the models directory (default: config modelsDir, env MODEL_BASE_PATH)
  --engine E        podman or docker when installed (auto), else bwrap, else chroot as root
  --dry-run         print the command instead of running it
  --target T        which target's runtime (default: config target, else auto)`;

/** What exec would run. */
export interface ExecPlan {
  engine: Exclude<Engine, 'auto'>;
  /** Commands to run first (loading the image). */
  before: string[][];
  argv: string[];
}

interface TrimOutput {
  rootfs: string;
  dockerArchive: string;
  env: Record<string, string>;
  devices: string[];
  repoTag: string;
}

/** The docker CLI alone is not enough: a daemon must answer (podman needs none). */
function dockerAnswers(): boolean {
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
  return r.status === 0;
}

function pickEngine(requested: Engine): Exclude<Engine, 'auto'> {
  if (requested !== 'auto') {
    if ((requested === 'podman' || requested === 'docker' || requested === 'bwrap') && !which(requested))
      throw new RocmflowError('E_MISSING_TOOL', `${requested} not found: install it, or use --engine auto`);
    if (requested === 'chroot' && process.getuid?.() !== 0) throw usageError('E_USAGE', 'exec: --engine chroot needs root');
    if (requested === 'docker' && !dockerAnswers()) throw new RocmflowError('E_DOCKER', 'docker: no daemon answers (docker info failed): start it, or use --engine podman|bwrap');
    return requested;
  }
  for (const e of ['podman', 'docker', 'bwrap'] as const) if (which(e) && (e !== 'docker' || dockerAnswers())) return e;
  if (process.getuid?.() === 0) return 'chroot';
  throw new RocmflowError('E_MISSING_TOOL', 'no podman, docker or bwrap found: apt install podman (or bubblewrap)');
}

/** Build the plan (pure apart from looking up tools and device nodes). */
export function planExec(trim: TrimOutput, opts: { engine: Engine; modelsDir: string | null; args: string[] }): ExecPlan {
  const engine = pickEngine(opts.engine);
  const args = opts.args;
  if (engine === 'podman' || engine === 'docker') {
    const argv = [engine, 'run', '--rm', '--network', 'host'];
    if (opts.modelsDir) argv.push('-v', `${opts.modelsDir}:/models:ro`);
    for (const d of expandDevices(trim.devices)) argv.push('--device', d);
    if (trim.devices.length) argv.push('--group-add', 'video');
    argv.push(trim.repoTag, ...args);
    return { engine, before: [[engine, 'load', '-i', trim.dockerArchive]], argv };
  }
  const cmd = sandboxArgv({
    root: trim.rootfs,
    binds: opts.modelsDir ? [{ source: opts.modelsDir, dest: '/models' }] : [],
    devices: trim.devices,
    env: trim.env,
    method: engine,
    command: ['/opt/llama/bin/llama-server', ...args],
  });
  return { engine, before: [], argv: cmd.argv };
}

function run(argv: string[], signal: AbortSignal, stdio: 'inherit' | 'ignore' = 'inherit'): Promise<number> {
  return new Promise((res, rej) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio });
    const onAbort = () => child.kill('SIGTERM');
    signal.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => rej(new RocmflowError('E_EXEC', `cannot start ${argv[0]}: ${e.message}`)));
    child.on('close', (code, sig) => {
      signal.removeEventListener('abort', onAbort);
      res(code ?? (sig ? 130 : 1));
    });
  });
}

/** The `rocmflow exec` command. */
export const execCommand: Command = {
  name: 'exec',
  summary: 'run the minimal runtime (llama-server) with a models directory mounted',
  usage: USAGE,
  async run(argv, io) {
    const { flags, rest, positionals } = parseArgs(argv, {
      ...COMMON_FLAGS, model: { type: 'string' }, 'models-dir': { type: 'string' }, engine: { type: 'string' }, 'dry-run': { type: 'boolean' },
    }, 'exec');
    if (flags.help) {
      io.out(USAGE);
      return 0;
    }
    if (positionals.length) throw usageError('E_USAGE', `exec: put llama-server arguments after --: rocmflow exec -- ${positionals.join(' ')}`);
    const engine = (flags.engine as string | undefined) ?? 'auto';
    if (!(ENGINES as readonly string[]).includes(engine)) throw usageError('E_USAGE', `exec: --engine must be one of ${ENGINES.join(', ')}`);
    const session = await openSession(io, { config: flags.config as string | undefined, cacheDir: flags['cache-dir'] as string | undefined, target: flags.target as string | undefined });
    try {
      const { config, registry } = session;
      const { target } = await resolveTarget(config.target, registry, { targetOptions: config.targets, env: io.env });
      const out = Executor.outDir(config, target.name, 'trim-runtime');
      const rootfs = join(out, 'rootfs');
      const dockerArchive = join(out, 'images', 'minimal.docker.tar');
      const reproFile = join(out, 'reproducibility.json');
      if (!existsSync(rootfs) || !existsSync(dockerArchive) || !existsSync(reproFile))
        throw usageError('E_NO_RUNTIME', `no minimal runtime for target ${target.name} in ${out}: run \`rocmflow run trim-runtime --target ${target.name}\` first`);
      const repro = JSON.parse(readFileSync(reproFile, 'utf8')) as { target?: { env?: Record<string, string> } };
      const modelsFlag = flags['models-dir'] as string | undefined;
      const modelsDir = modelsFlag ? resolve(io.cwd, modelsFlag) : config.modelsDir;
      if (modelsDir && !existsSync(modelsDir)) throw usageError('E_USAGE', `exec: models directory ${modelsDir} does not exist`);
      const args = [...rest];
      if (typeof flags.model === 'string') {
        if (!modelsDir) throw usageError('E_USAGE', 'exec: --model needs a models directory: --models-dir DIR, modelsDir in the config, or MODEL_BASE_PATH');
        if (!existsSync(join(modelsDir, flags.model))) throw usageError('E_USAGE', `exec: --model ${flags.model}: no such file in ${modelsDir}`);
        args.unshift('-m', `/models/${flags.model}`);
      }
      const plan = planExec(
        { rootfs, dockerArchive, env: repro.target?.env ?? {}, devices: target.definition.devices, repoTag: `rocmflow/llama-${target.name}:minimal` },
        { engine: engine as Engine, modelsDir, args },
      );
      if (flags['dry-run']) {
        for (const b of plan.before) io.out(b.join(' '));
        io.out(plan.argv.join(' '));
        return 0;
      }
      for (const b of plan.before) {
        const code = await run(b, io.signal, 'ignore');
        if (code !== 0) throw new RocmflowError('E_EXEC', `${b.join(' ')} failed (exit ${code})`);
      }
      return await run(plan.argv, io.signal);
    } finally {
      await session.close();
    }
  },
};
