/**
 * `rocmflow doctor [--json] [--root DIR]`: what this host has and lacks for
 * the pipeline: host tools (with versions and how to install the missing
 * ones), GPUs (KFD nodes, NVIDIA), /dev/kfd access, and the target
 * `--target auto` would pick. Exits 0 when everything `--target auto` needs
 * is present, 1 otherwise.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command, CommandIO } from '../command.js';
import { parseArgs } from '../args.js';
import { chooseAutoTarget, detectTargets } from '../../plugin/select-target.js';
import { loadTargets } from './targets.js';
import type { TargetDefinition } from '../../plugin/types.js';
import { readKfdNodes } from '../../gpu/kfd.js';
import { queryNvidia } from '../../gpu/nvidia.js';

/** A host tool doctor checks. */
interface ToolCheck {
  name: string;
  /** argv that prints the version. */
  version: string[];
  install: string;
  /** Needed for every pipeline run; optional ones only improve or enable extras. */
  required: boolean;
  why: string;
}

const TOOLS: ToolCheck[] = [
  { name: 'strace', version: ['strace', '-V'], install: 'apt install strace (dnf install strace)', required: true, why: 'traces the workload' },
  { name: 'bwrap', version: ['bwrap', '--version'], install: 'apt install bubblewrap (dnf install bubblewrap)', required: true, why: 'verifies the trimmed root without root' },
  { name: 'cmake', version: ['cmake', '--version'], install: 'apt install cmake (dnf install cmake)', required: true, why: 'builds llama.cpp' },
  { name: 'git', version: ['git', '--version'], install: 'apt install git (dnf install git)', required: true, why: 'checks out llama.cpp' },
  { name: 'c++', version: ['c++', '--version'], install: 'apt install g++ (dnf install gcc-c++)', required: true, why: 'compiles llama.cpp' },
  { name: 'tar', version: ['tar', '--version'], install: 'apt install tar', required: true, why: 'unpacks ROCm tarballs' },
  { name: 'zstd', version: ['zstd', '--version'], install: 'apt install zstd (dnf install zstd)', required: true, why: 'compresses snapshots and images' },
  { name: 'ccache', version: ['ccache', '--version'], install: 'apt install ccache', required: false, why: 'makes rebuilds fast' },
  { name: 'ninja', version: ['ninja', '--version'], install: 'apt install ninja-build', required: false, why: 'faster builds with exact progress' },
  { name: 'skopeo', version: ['skopeo', '--version'], install: 'apt install skopeo', required: false, why: 'pushes the images to a registry (rocmflow push)' },
  { name: 'umoci', version: ['umoci', '--version'], install: 'apt install umoci', required: false, why: 'unpacks OCI images' },
  { name: 'podman', version: ['podman', '--version'], install: 'apt install podman runc', required: false, why: 'runs the image (rocmflow exec)' },
  { name: 'docker', version: ['docker', '--version'], install: 'apt install docker.io (or see docs.docker.com/engine/install)', required: false, why: 'runs the image when its daemon answers (rocmflow exec)' },
  { name: 'nvidia-smi', version: ['nvidia-smi', '--version'], install: 'install the NVIDIA driver', required: false, why: 'detects NVIDIA GPUs' },
  { name: 'hipcc', version: ['hipcc', '--version'], install: 'not needed: fetch-rocm brings ROCm\'s compiler', required: false, why: 'HIP compiler of a system ROCm' },
];

/** The first line of a tool's version output, or null when it cannot run. */
function probe(argv: string[], env: NodeJS.ProcessEnv): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { env, encoding: 'utf8', timeout: 15_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return resolve(null);
      const line = `${stdout}\n${stderr}`.split('\n').map((l) => l.trim()).find((l) => /\d/.test(l));
      resolve(err && !line ? null : (line ?? '').replace(/^\*+\s*|\s*\*+$/g, ''));
    });
  });
}

/** What doctor found; `--json` prints it. */
export interface DoctorReport {
  tools: { name: string; found: boolean; version: string | null; required: boolean; install: string; why: string }[];
  amdGpus: { node: number; arch: string | null; deviceIndex: number | null; integrated: boolean; renderNode: string | null }[];
  nvidiaGpus: { index: number; name: string; computeCapability: string | null }[];
  kfd: { exists: boolean; readWrite: boolean };
  auto: { target: string; description: string } | null;
  /** Lines saying what is missing for `--target auto`; empty when ready. */
  problems: string[];
}

export async function doctorReport(root: string, env: NodeJS.ProcessEnv, targets: readonly TargetDefinition<any>[], options: Record<string, Record<string, unknown>> = {}): Promise<DoctorReport> {
  const tools = await Promise.all(TOOLS.map(async (t) => {
    const version = await probe(t.version, env);
    return { name: t.name, found: version !== null, version, required: t.required, install: t.install, why: t.why };
  }));
  const kfdNodes = (await readKfdNodes(root)).filter((n) => n.isGpu);
  const nvidia = await queryNvidia({ env });
  const kfdPath = join(root, 'dev/kfd');
  const exists = await access(kfdPath, constants.F_OK).then(() => true, () => false);
  const readWrite = exists && (await access(kfdPath, constants.R_OK | constants.W_OK).then(() => true, () => false));
  const detected = await detectTargets(targets, { root, env, options });
  const auto = chooseAutoTarget(detected);
  const problems: string[] = [];
  for (const t of tools) if (t.required && !t.found) problems.push(`${t.name} not found: ${t.install}`);
  if (auto) {
    for (const [cmd, install] of Object.entries(auto.target.tools ?? {})) {
      if (!tools.some((t) => t.name === cmd) && (await probe([cmd, '--version'], env)) === null) problems.push(`${cmd} not found (needed by ${auto.target.name}): ${install}`);
    }
    if (auto.target.family === 'rocm' && !readWrite)
      problems.push(exists ? '/dev/kfd is not readable and writable: add yourself to the render and video groups' : '/dev/kfd missing: the amdgpu driver is not loaded');
  }
  return {
    tools,
    amdGpus: kfdNodes.map((n) => ({ node: n.node, arch: n.arch, deviceIndex: n.deviceIndex, integrated: n.integrated, renderNode: n.drmRenderMinor !== null ? `/dev/dri/renderD${n.drmRenderMinor}` : null })),
    nvidiaGpus: nvidia.gpus.map((g) => ({ index: g.index, name: g.name, computeCapability: g.computeCapability })),
    kfd: { exists, readWrite },
    auto: auto ? { target: auto.target.name, description: auto.detection.description } : null,
    problems,
  };
}

function print(r: DoctorReport, io: CommandIO): void {
  const w = Math.max(...r.tools.map((t) => t.name.length));
  io.out('Tools');
  for (const t of r.tools) {
    const state = t.found ? `ok       ${t.version}` : `${t.required ? 'MISSING ' : 'missing '} ${t.install} (${t.why})`;
    io.out(`  ${t.name.padEnd(w)}  ${state}`);
  }
  io.out('');
  io.out('GPUs');
  if (r.amdGpus.length === 0) io.out('  AMD: none (no KFD GPU nodes)');
  for (const g of r.amdGpus) io.out(`  AMD: ${g.arch} (${g.integrated ? 'integrated' : 'discrete'}) KFD node ${g.node}, HIP device ${g.deviceIndex}${g.renderNode ? `, ${g.renderNode}` : ''}`);
  if (r.nvidiaGpus.length === 0) io.out('  NVIDIA: none');
  for (const g of r.nvidiaGpus) io.out(`  NVIDIA: ${g.name} (compute ${g.computeCapability ?? '?'}) device ${g.index}`);
  io.out(`  /dev/kfd: ${r.kfd.exists ? (r.kfd.readWrite ? 'accessible' : 'present but not accessible') : 'missing'}`);
  io.out('');
  io.out(r.auto ? `Recommended: --target ${r.auto.target} (${r.auto.description})` : 'Recommended: no target detected');
  if (r.problems.length) {
    io.out('');
    io.out(`Missing for --target auto (${r.problems.length}):`);
    for (const p of r.problems) io.out(`  ${p}`);
  } else io.out('Everything --target auto needs is present.');
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'check host tools, GPUs and /dev/kfd; recommend a --target',
  usage: [
    'rocmflow doctor [--json] [--root DIR] [--config F]',
    '',
    'Checks the tools the pipeline needs (with versions and install hints),',
    'lists AMD (KFD) and NVIDIA GPUs, checks /dev/kfd access and says which',
    '--target auto picks. Exit code 0 when everything that target needs is present.',
    '  --json      print the report as JSON',
    '  --root DIR  look for /sys and /dev under DIR (for fake sysfs trees)',
    '  --config F  the config file (its plugins and targets.<name> options count)',
  ].join('\n'),
  async run(argv, io) {
    const { flags } = parseArgs(argv, { json: { type: 'boolean' }, root: { type: 'string' }, config: { type: 'string' }, debug: { type: 'boolean' } }, 'doctor');
    const { targets, options } = await loadTargets(io, flags.config as string | undefined);
    const report = await doctorReport((flags.root as string | undefined) ?? '/', io.env, targets, options);
    if (flags.json) io.out(JSON.stringify(report, null, 2));
    else print(report, io);
    return report.problems.length ? 1 : 0;
  },
};
