/**
 * Verify images on the machine that has the GPU (`rocmflow verify`): images
 * built elsewhere (CI, a laptop with --no-device) are unpacked, the
 * workload they were verified with (their `org.rocmflow.workload` label) runs
 * in the full and in the minimal root on this machine's GPU, the texts are
 * compared, tokens/s reported, and the minimal run is traced to list every
 * path it failed to open that the full image has: what the trim missed. The
 * numeric check runs too: the evaluation text through the full image's own
 * llama.cpp on the CPU (no device node in the sandbox: ggml's CPU backend of
 * the same build), then through both roots on the GPU, judged with the
 * limits the build machine used.
 */
import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { RocmflowError } from '../errors.js';
import { sha256 } from '../util/canonical.js';
import { sha256File } from '../util/sha256-file.js';
import { unpackImage, type UnpackedImage } from '../image/unpack.js';
import { sandboxRunner } from './workload-runner.js';
import { cliCommand, differingTexts, runCompletionCli, runWorkload, textsOf, workloadSpeed, type WorkloadSpeed } from '../llama/workload.js';
import { evalText } from '../llama/eval-text.js';
import { DEFAULT_NUMERICS_SPEC, DEFAULT_THRESHOLDS, perplexityBaseCommand, parseBasePerplexity, thresholdGroup, type NumericsSpec } from '../llama/numerics.js';
import { compareNumerics, modelWeightType, NUMERICS_MOUNT, withLostLogRetry, type NumericsReference, type NumericsResult } from './numerics.js';
import { expandDevices, which, type SandboxBind } from '../runtime/sandbox.js';
import { resolveInRoot } from '../runtime/layout.js';
import { matchAny } from '../util/glob.js';
import { parseTraceFiles } from '../trace/parse.js';
import { LLAMA_MOUNT, MODELS_MOUNT } from './runtime.js';
import { WORKLOAD_LABEL, type ImageWorkload } from './images.js';

export interface VerifyImagesOptions {
  /** The full image: an OCI archive or layout, a docker archive, or its root directory. */
  full: string;
  /** The minimal image, in any of the same forms. */
  minimal: string;
  /** The model file the images were verified with. */
  model: string;
  /** The workload record (strace-trace's workload.json) when neither image carries the label. */
  workload?: ImageWorkload;
  /** numerics-reference's output directory (reference.json, base.kld): the build machine's CPU reference instead of one made here. */
  reference?: string;
  /** Run without the GPU (CPU fallback): for proving the command where there is none. */
  noDevice?: boolean;
  /**
   * The target's device nodes (globs) and host-provided patterns, from its
   * definition here: what a label may name, and the device nodes of roots
   * without a label. Null for a target this rocmflow does not know.
   */
  targetRules?(target: string): Promise<{ devices: string[]; hostProvided: string[] } | null>;
  /** More in-root paths to bind from the host (the GPU driver's libraries), beyond the workload record's. */
  hostProvided?: string[];
  /** Skip the numeric check. */
  noNumerics?: boolean;
  /** Scratch space: the unpacked roots, the trace and the numerics files. */
  workDir: string;
  signal?: AbortSignal;
  log?(line: string): void;
  onProgress?(step: string, done: number, total: number): void;
}

export interface RootRun {
  texts: Record<string, string>;
  error: string | null;
  speed: WorkloadSpeed | null;
}

export interface VerifyImagesResult {
  ok: boolean;
  target: string;
  gpu: boolean;
  devices: string[];
  images: { full: { kind: UnpackedImage['kind']; digest: string | null }; minimal: { kind: UnpackedImage['kind']; digest: string | null } };
  model: { sha256: string; matches: boolean | null };
  full: RootRun;
  minimal: RootRun;
  /** Names whose text differs between the full and the minimal root here. */
  differing: string[];
  /** Whether this machine's texts equal the build machine's (they may not: another device computes other floats). */
  sameAsBuild: boolean;
  /** In-root paths the minimal run failed to open that the full image has. */
  missed: string[];
  numerics: { reference: { where: string; ppl: number | null; seconds: number }; limitsFrom: string; full: NumericsResult | null; minimal: NumericsResult | null } | null;
  /** Why it failed, one line each. */
  failures: string[];
  lines: string[];
}

/** The workload label of an image, parsed and checked for the fields the run needs. */
export function workloadOf(labels: Record<string, string>, what: string): ImageWorkload | null {
  const raw = labels[WORKLOAD_LABEL];
  if (raw === undefined) return null;
  let w: ImageWorkload;
  try {
    w = JSON.parse(raw) as ImageWorkload;
  } catch (e) {
    throw new RocmflowError('E_BAD_IMAGE', `${what}: label ${WORKLOAD_LABEL} is not JSON (${(e as Error).message})`);
  }
  return checkWorkload(w, `${what}: label ${WORKLOAD_LABEL}`);
}

/** A workload record (label or workload.json) must hold what the run reads. */
export function checkWorkload(w: ImageWorkload, what: string): ImageWorkload {
  const bad = (why: string) => new RocmflowError('E_BAD_IMAGE', `${what}: ${why}`);
  if (!w || typeof w !== 'object') throw bad('not an object');
  const spec = w.spec;
  if (!spec || !Array.isArray(spec.requests) || typeof spec.seed !== 'number' || typeof spec.ctxSize !== 'number' || !spec.cli) throw bad('"spec" is not a workload spec');
  for (const r of spec.requests) if (typeof r?.name !== 'string' || typeof r.prompt !== 'string' || typeof r.nPredict !== 'number') throw bad('a request has no name, prompt or nPredict');
  if (typeof w.cli !== 'string' || !/^[A-Za-z0-9._-]+$/.test(w.cli)) throw bad(`"cli" ${JSON.stringify(w.cli)} is not a program name`);
  if (!w.texts || typeof w.texts !== 'object') throw bad('"texts" is missing');
  if (w.hostProvided !== undefined && (!Array.isArray(w.hostProvided) || w.hostProvided.some((p) => typeof p !== 'string' || !p.startsWith('/') || p.split('/').includes('..'))))
    throw bad('"hostProvided" must list absolute paths');
  if (w.env !== undefined && (!w.env || typeof w.env !== 'object' || Object.values(w.env).some((v) => typeof v !== 'string'))) throw bad('"env" must map names to strings');
  return { ...w, hostProvided: w.hostProvided ?? [], numerics: numericsSettingsOk(w.numerics) ? w.numerics : null, texts: w.texts };
}

/** The label's numeric settings, as written by trim-runtime (strace-trace's workload.json holds a result there instead). */
function numericsSettingsOk(n: unknown): n is NonNullable<ImageWorkload['numerics']> {
  const v = n as ImageWorkload['numerics'];
  const num = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0;
  return !!v && typeof v === 'object' && !!v.spec && Number.isInteger(v.spec.ctxSize) && v.spec.ctxSize > 0 && Number.isInteger(v.spec.chunks) && v.spec.chunks > 0
    && ['float', 'q8', 'quant'].includes(v.group) && !!v.thresholds && num(v.thresholds.meanKld) && num(v.thresholds.maxKld) && num(v.thresholds.minSameTop)
    && typeof v.textSha256 === 'string';
}

/** Numeric settings for images without them (roots, --workload): the defaults for the model's weight type. */
async function defaultNumerics(model: string): Promise<NonNullable<ImageWorkload['numerics']>> {
  const weightType = await modelWeightType(model);
  const group = thresholdGroup(weightType);
  const { threads: _t, ...spec } = DEFAULT_NUMERICS_SPEC;
  return { spec: { ...spec, threads: 0 }, textSha256: sha256(evalText()), weightType, group, thresholds: DEFAULT_THRESHOLDS[group] };
}

/**
 * Each host bind's mount point in the root, made when missing (an empty
 * file for a file, a directory otherwise) at the place the path resolves to
 * inside the root: an image may carry the driver directory as a link
 * (`usr/local/nvidia -> ...`) whose target it lacks. Returns the binds with
 * their resolved in-root destinations.
 */
async function mountHostBinds(root: string, binds: readonly SandboxBind[], log: (l: string) => void): Promise<SandboxBind[]> {
  const out: SandboxBind[] = [];
  for (const b of binds) {
    const r = await resolveInRoot({ base: root, layers: [] }, b.dest);
    // links in the image that lead through a missing directory and back up with ".." name a place the walk never
    // checked (below another link, out of the root): the mount point is not made there
    if (r.climbsPastMissing)
      throw new RocmflowError('E_BAD_IMAGE', `verify: ${root}: the mount point for ${b.dest} goes through links to a missing directory and back up with "..": refused`);
    const at = join(root, r.path);
    if (!r.stat) {
      await mkdir(dirname(at), { recursive: true });
      if ((await stat(b.source)).isDirectory()) await mkdir(at);
      else await writeFile(at, '', { flag: 'wx' });
      log(`mount point ${r.path}${r.path !== b.dest ? ` (for ${b.dest})` : ''} made in ${root}`);
    }
    out.push({ ...b, dest: r.path });
  }
  return out;
}

/** Without the target's definition, a device a label may name: the GPU nodes of the kinds rocmflow knows. */
const GPU_DEVICE = /^\/dev\/(kfd|dri\/(renderD|card)[0-9*[\]-]*|nvidia[a-z0-9*[\]-]*)$/;

/** Host-provided files are the driver's libraries: they live in a library directory. */
const LIBRARY_DIR = /\/lib(32|64|x32)?\//;

const isSystem = (p: string) => /^\/(proc|sys|dev|tmp)(\/|$)/.test(p) || p.startsWith(`${MODELS_MOUNT}/`) || p.startsWith(`${NUMERICS_MOUNT}/`) || p === MODELS_MOUNT || p === NUMERICS_MOUNT;

export async function verifyImages(o: VerifyImagesOptions): Promise<VerifyImagesResult> {
  const log = o.log ?? (() => undefined);
  await mkdir(o.workDir, { recursive: true });
  if (!existsSync(o.model)) throw new RocmflowError('E_USAGE', `verify: model ${o.model} does not exist`, { exitCode: 2 });
  // the images' programs run here as root: only bwrap (no capabilities, own pid namespace) confines them
  if (!which('bwrap'))
    throw new RocmflowError('E_SANDBOX', 'verify: images made elsewhere run only under bubblewrap (apt install bubblewrap); the chroot fallback does not confine root', { exitCode: 2 });

  // 1. the roots
  const full = await unpackImage(o.full, { dest: join(o.workDir, 'full'), signal: o.signal, onProgress: (s, d, t) => o.onProgress?.(`full image: ${s}`, d, t) });
  const minimal = await unpackImage(o.minimal, { dest: join(o.workDir, 'minimal'), signal: o.signal, onProgress: (s, d, t) => o.onProgress?.(`minimal image: ${s}`, d, t) });
  const w = o.workload ? checkWorkload(o.workload, 'verify --workload')
    : workloadOf(minimal.config.labels, o.minimal) ?? workloadOf(full.config.labels, o.full);
  if (!w) throw new RocmflowError('E_USAGE', `verify: neither image carries the ${WORKLOAD_LABEL} label (roots or images from an older rocmflow): give --workload FILE (strace-trace's workload.json)`, { exitCode: 2 });
  const target = full.config.labels['org.rocmflow.target'] ?? minimal.config.labels['org.rocmflow.target'] ?? w.target ?? 'unknown';

  // 2. the device. The images name their device nodes and the host files a container runtime binds (the GPU
  // driver's libraries). An image is input from elsewhere: what it names is taken only where the target's own
  // definition on this machine allows it (a label naming /dev/sda or /etc/shadow is refused); roots given as
  // directories carry no label, and the definition's device nodes are used
  const rules = await o.targetRules?.(target) ?? null;
  const label = minimal.config.labels['org.rocmflow.devices'] ?? full.config.labels['org.rocmflow.devices'];
  const declared = label !== undefined ? label.split(',').filter(Boolean) : rules?.devices ?? [];
  for (const d of label !== undefined ? declared : []) {
    if (!(rules ? rules.devices.includes(d) || matchAny(d, rules.devices) : GPU_DEVICE.test(d)))
      throw new RocmflowError('E_BAD_IMAGE', `verify: label org.rocmflow.devices names ${d}, which is not a device node of target ${target}${rules ? ` (${rules.devices.join(', ') || 'none'})` : ''}: refused`);
  }
  if (label === undefined && !declared.length && target !== 'cpu' && !o.noDevice) log(`warning: no device nodes known for target ${target}: the workload runs without a GPU`);
  const present = expandDevices(declared);
  if (declared.length && !present.length && !o.noDevice)
    throw new RocmflowError('E_NO_DEVICE', `verify: the ${target} images need ${declared.join(', ')}, and none is here: run this on the machine with the GPU (or --no-device to check the images on the CPU fallback)`, { exitCode: 2 });
  for (const p of w.hostProvided) {
    if (!rules || !matchAny(p, rules.hostProvided) || !LIBRARY_DIR.test(p.slice(0, p.lastIndexOf('/') + 1)))
      throw new RocmflowError('E_BAD_IMAGE', `verify: the workload label names ${p} as provided by the host, which target ${target}'s host-provided rules ${rules ? `(${rules.hostProvided.join(', ') || 'none'}) do not cover` : 'cannot confirm (unknown target)'}: refused (give --host-provided to bind it)`);
  }
  const devices = o.noDevice ? [] : present;
  const gpu = devices.length > 0;

  const modelDigest = await sha256File(o.model);
  const modelMatches = w.model?.sha256 ? modelDigest === w.model.sha256 : null;
  if (modelMatches === false) log(`warning: ${o.model} is not the model the images were verified with (sha256 ${w.model.sha256.slice(0, 12)}…): the texts cannot match the build machine's`);

  const hostBinds: SandboxBind[] = [];
  for (const p of [...new Set([...w.hostProvided, ...(o.hostProvided ?? [])])]) {
    if (existsSync(p)) hostBinds.push({ source: p, dest: p });
    else if (gpu) log(`warning: host-provided ${p} is not on this machine (the GPU driver's libraries come from the host)`);
  }
  // the image's environment (a root has none: the workload record's, as traced)
  const envOf = (img: UnpackedImage) => Object.fromEntries(Object.entries(img.kind === 'root' ? (w.env ?? {}) : img.config.env).filter(([k]) => !k.startsWith('LLAMA_ARG_')));
  // a container runtime makes the mount points of what it binds from the host (the GPU driver's libraries); so does this
  const modelBind: SandboxBind = { source: join(o.model, '..'), dest: MODELS_MOUNT };
  const rootBinds = new Map<UnpackedImage, SandboxBind[]>();
  for (const img of [full, minimal]) rootBinds.set(img, [modelBind, ...await mountHostBinds(img.root, hostBinds, log)]);
  const bindsOf = (img: UnpackedImage) => rootBinds.get(img)!;
  // the model under its own name: bind its directory and point at the file
  const modelInRoot = `${MODELS_MOUNT}/${o.model.split('/').pop()}`;
  const paths = { binDir: `${LLAMA_MOUNT}/bin`, model: modelInRoot, cli: w.cli };

  const runIn = async (img: UnpackedImage, name: string, traceDir?: string): Promise<{ run: RootRun; logs: string[] }> => {
    const runner = await sandboxRunner({ method: 'bwrap', root: img.root, binds: bindsOf(img), devices, env: envOf(img), traceDir, signal: o.signal });
    try {
      const r = await runWorkload({ spec: w.spec, paths, runner, gpu, signal: o.signal, log: (l) => log(`${name}: ${l}`) });
      return { run: { texts: textsOf(r), error: null, speed: workloadSpeed(r) }, logs: runner.logs };
    } catch (e) {
      o.signal?.throwIfAborted();
      const details = (e as { details?: readonly string[] }).details ?? [];
      return { run: { texts: {}, error: [(e as Error).message, ...details.slice(-3)].join(' | '), speed: null }, logs: runner.logs };
    }
  };

  // 3. the workload in both roots, then the minimal one traced
  log(`workload in the full root (${gpu ? devices.join(', ') : 'no device'})`);
  const fullRun = await runIn(full, 'full');
  log('workload in the minimal root');
  const minRun = await runIn(minimal, 'minimal');
  log('workload in the minimal root, traced');
  const traceDir = join(o.workDir, 'trace');
  await mkdir(traceDir, { recursive: true });
  const traced = await runIn(minimal, 'minimal (traced)', traceDir);
  const logs = traced.logs.filter((l) => existsSync(l));
  const missed = new Set<string>();
  if (logs.length) {
    const trace = await parseTraceFiles(logs, { cwd: '/' });
    const layout = { base: full.root, layers: [] };
    for (const p of trace.access.missing) {
      if (isSystem(p)) continue;
      const r = await resolveInRoot(layout, p).catch(() => null);
      if (r?.stat) missed.add(p);
    }
  }

  const failures: string[] = [];
  if (fullRun.run.error) failures.push(`the full root: ${fullRun.run.error}`);
  if (minRun.run.error) failures.push(`the minimal root: ${minRun.run.error}`);
  let differing = !fullRun.run.error && !minRun.run.error ? differingTexts(fullRun.run.texts, minRun.run.texts) : [];
  // the CLI's tokens go through llama.cpp's logger, which is not flushed at exit: a CLI text alone differing is run
  // again in both roots (twice at most) before it counts
  for (let i = 0; differing.length === 1 && differing[0] === 'cli' && i < 2; i++) {
    for (const [img, run] of [[full, fullRun.run], [minimal, minRun.run]] as const) {
      const runner = await sandboxRunner({ method: 'bwrap', root: img.root, binds: bindsOf(img), devices, env: envOf(img), signal: o.signal });
      const r = await runCompletionCli(runner, cliCommand(w.spec, paths, gpu), paths.cli).catch(() => null);
      if (r) run.texts.cli = r.stdout;
    }
    differing = differingTexts(fullRun.run.texts, minRun.run.texts);
  }
  if (differing.length) failures.push(`texts differ between the full and the minimal root: ${differing.join(', ')}`);
  const sameAsBuild = !fullRun.run.error && differingTexts(w.texts, fullRun.run.texts).length === 0;

  // 4. numbers against a CPU reference
  let numerics: VerifyImagesResult['numerics'] = null;
  const settings = w.numerics ?? await defaultNumerics(o.model);
  if (!o.noNumerics && !fullRun.run.error) {
    const dir = join(o.workDir, 'numerics');
    await mkdir(dir, { recursive: true });
    let spec: NumericsSpec = { ...settings.spec, threads: Math.min(16, availableParallelism()) };
    let refWhere: string;
    let refPpl: number | null = null;
    let refSeconds = 0;
    let refDir = dir;
    if (o.reference) {
      const rec = JSON.parse(await readFile(join(o.reference, 'reference.json'), 'utf8').catch(() => {
        throw new RocmflowError('E_USAGE', `verify --reference: ${o.reference}/reference.json is missing`, { exitCode: 2 });
      })) as NumericsReference;
      if (!existsSync(join(o.reference, 'base.kld'))) throw new RocmflowError('E_USAGE', `verify --reference: ${o.reference}/base.kld is missing`, { exitCode: 2 });
      refDir = o.reference;
      // the comparison reads its tokens from that base file: its context size and chunks are the reference's
      if (rec.spec && Number.isInteger(rec.spec.ctxSize) && Number.isInteger(rec.spec.chunks)) spec = { ...spec, ctxSize: rec.spec.ctxSize, chunks: rec.spec.chunks };
      refWhere = `the build machine's CPU build (${rec.build?.commit?.slice(0, 12) ?? 'local tree'})`;
      refPpl = rec.ppl;
    } else {
      const text = evalText();
      if (sha256(text) !== settings.textSha256) log('warning: this rocmflow generates another evaluation text than the one that built the images; the limits still apply');
      await writeFile(join(dir, 'eval.txt'), text);
      refWhere = 'the full image\'s llama.cpp on the CPU (no device in the sandbox)';
      log(`numerics: reference run, ${refWhere}`);
      const started = Date.now();
      const runner = await sandboxRunner({ method: 'bwrap', root: full.root, binds: [...bindsOf(full), { source: dir, dest: NUMERICS_MOUNT, rw: true }], devices: [], env: envOf(full), signal: o.signal });
      const cmd = perplexityBaseCommand({ bin: `${paths.binDir}/llama-perplexity`, model: modelInRoot, text: `${NUMERICS_MOUNT}/eval.txt`, baseFile: `${NUMERICS_MOUNT}/base.kld`, spec });
      refPpl = await withLostLogRetry('verify: the CPU reference run', async () => {
        const r = await runner.run(cmd, 'perplexity-base');
        if (r.exitCode !== 0) throw new RocmflowError('E_NUMERICS', `verify: the CPU reference run of llama-perplexity in the full root exited with ${r.exitCode}: ${`${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-3).join(' | ').slice(0, 400)}`);
        const ppl = parseBasePerplexity(`${r.stdout}\n${r.stderr}`);
        if (ppl === null) throw new RocmflowError('E_NUMERICS', 'verify: the CPU reference run of llama-perplexity printed no final perplexity');
        return ppl;
      });
      refSeconds = (Date.now() - started) / 1000;
    }
    const reference: NumericsReference = {
      enabled: true, spec, weightType: settings.weightType, group: settings.group, thresholds: settings.thresholds,
      build: null, ppl: refPpl, tokensScored: null, seconds: refSeconds,
    };
    const compare = async (img: UnpackedImage, where: string) => {
      const runner = await sandboxRunner({ method: 'bwrap', root: img.root, binds: [...bindsOf(img), { source: refDir, dest: NUMERICS_MOUNT }], devices, env: envOf(img), signal: o.signal });
      log(`numerics: ${where}`);
      return compareNumerics({ runner, binDir: paths.binDir, model: modelInRoot, reference, gpu, where }).catch((e: Error) => {
        failures.push(e.message);
        return null;
      });
    };
    const nf = await compare(full, `full image${gpu ? ' on the GPU' : ''}`);
    const nm = minRun.run.error ? null : await compare(minimal, `minimal image${gpu ? ' on the GPU' : ''}`);
    for (const r of [nf, nm]) if (r && !r.ok) failures.push(`numerics (${r.where}) beyond the ${r.group} limits: ${r.failures.join('; ')}`);
    numerics = { reference: { where: refWhere, ppl: refPpl, seconds: refSeconds }, limitsFrom: w.numerics ? 'the images' : `the defaults for ${settings.weightType ?? 'unknown'} weights`, full: nf, minimal: nm };
  }

  const tps = (r: RootRun) => r.speed?.serverTokensPerSecond ?? null;
  const lines = [
    `${target}: ${gpu ? `on this machine's GPU (${devices.join(', ')})` : 'WITHOUT a GPU (CPU fallback)'}; images: full ${full.kind}${full.digest ? ` ${full.digest.slice(0, 19)}` : ''}, minimal ${minimal.kind}${minimal.digest ? ` ${minimal.digest.slice(0, 19)}` : ''}`,
    fullRun.run.error || minRun.run.error ? `workload failed: ${[fullRun.run.error && `full: ${fullRun.run.error}`, minRun.run.error && `minimal: ${minRun.run.error}`].filter(Boolean).join('; ')}`
      : differing.length ? `texts DIFFER between the full and the minimal root: ${differing.join(', ')}`
        : `texts: ${Object.keys(fullRun.run.texts).length} identical in the full and the minimal root (${w.spec.requests.length} server requests + ${w.cli})${sameAsBuild ? '; the same as on the build machine' : '; not the build machine\'s texts (another device computes other floats)'}`,
    ...(tps(fullRun.run) !== null && tps(minRun.run) !== null ? [`generation: ${tps(fullRun.run)} tokens/s in the full root, ${tps(minRun.run)} tokens/s in the minimal root (server requests, mean)`] : []),
    missed.size ? `the minimal run failed to open ${missed.size} paths the full image has (what the trim missed): ${[...missed].sort().slice(0, 8).join(', ')}${missed.size > 8 ? ', …' : ''}` : 'the minimal run failed to open no path the full image has',
    ...(numerics ? [`numerics reference: ${numerics.reference.where}, PPL ${numerics.reference.ppl ?? '?'}`, ...[numerics.full, numerics.minimal].filter((r): r is NumericsResult => !!r).map((r) => r.line)] : ['numerics: not checked']),
    ...(modelMatches === false ? ['warning: not the model the images were verified with'] : []),
  ];
  return {
    ok: failures.length === 0, target, gpu, devices,
    images: { full: { kind: full.kind, digest: full.digest }, minimal: { kind: minimal.kind, digest: minimal.digest } },
    model: { sha256: modelDigest, matches: modelMatches },
    full: fullRun.run, minimal: minRun.run, differing, sameAsBuild, missed: [...missed].sort(), numerics, failures, lines,
  };
}
