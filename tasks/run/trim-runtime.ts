/**
 * trim-runtime's run: loaded when the task runs, not when the engine only
 * checks whether it is fresh (tasks/trim-runtime.ts holds the definition).
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { RocmflowError, type Detection } from '../../src/plugin/core.js';
import { computeClosure } from '../../src/runtime/closure.js';
import { hostPath } from '../../src/runtime/layout.js';
import { assembleRoot } from '../../src/runtime/assemble.js';
import { trimReport } from '../../src/runtime/report.js';
import { pipelineRuntime, MODELS_MOUNT } from '../../src/pipeline/runtime.js';
import { fullRuntime, pipelineCategory } from '../../src/pipeline/full-runtime.js';
import { verifyWorkload } from '../../src/pipeline/verify.js';
import { sandboxRunner } from '../../src/pipeline/workload-runner.js';
import { compareNumerics, numericsError, numericsFromDeps, NUMERICS_MOUNT, type NumericsResult } from '../../src/pipeline/numerics.js';
import { stripRoot } from '../../src/runtime/strip-root.js';
import { STRACE_KIT_DIR } from '../../src/runtime/strace-kit.js';
import { imageProvenance, writeRuntimeImages } from '../../src/pipeline/images.js';
import { writeReportHtml } from '../../src/report/html.js';
import { humanBytes } from '../../src/image/report.js';
import { toolVersion } from '../../src/llama/toolchain.js';
import { workloadSpeed, type WorkloadResult, type WorkloadSpec, type WorkloadSpeed } from '../../src/llama/workload.js';
import type { AccessSet } from '../../src/trace/access-set.js';
import { allocatedBytes, pruneRootFatbins, type PrunedFile } from '../../src/runtime/prune-fatbins.js';
import { scanCoverage } from '../../src/fatbin/scan-coverage.js';
import { coverageFacts, coverageMarkdown, gpuArch, judgeCoverage, pruneSettings } from '../../src/pipeline/coverage.js';
import type { RunContext, TaskResult } from '../../src/plugin/types.js';
import { rocmflowVersion, strictCoverage, type TrimRuntimeOptions } from '../trim-runtime.js';

/** What trim-runtime reads back from strace-trace's workload.json. */
interface TraceRecord {
  target: string;
  detection: Detection;
  env: Record<string, string>;
  gpu: boolean;
  /** Traced without the target's GPU (--no-device): device-only files come from the keep rules. */
  noDevice?: boolean;
  spec: WorkloadSpec;
  cli: string;
  texts: Record<string, string>;
  result?: WorkloadResult;
  numerics?: NumericsResult | null;
}

function speedLine(full: WorkloadSpeed | null, trimmed: WorkloadSpeed | null): string[] {
  if (!full?.serverTokensPerSecond || !trimmed?.serverTokensPerSecond) return [];
  return [`generation: ${full.serverTokensPerSecond} tokens/s traced in the full runtime (under strace), ${trimmed.serverTokensPerSecond} tokens/s in the trimmed root`];
}

const readJson = async <T>(path: string): Promise<T> => JSON.parse(await readFile(path, 'utf8')) as T;
const readJsonIf = async (path: string): Promise<unknown> => (existsSync(path) ? readJson(path) : null);

/** What the full image took as made before: the snapshot, and layers of earlier runs. */
function reuseNote(w: { reusedSnapshot: boolean; reusedLayers: number; full: { layers: readonly unknown[] } }): string {
  const parts = [...(w.reusedSnapshot ? ['the GPU runtime layer is the snapshot'] : []), ...(w.reusedLayers ? [`${w.reusedLayers} of ${w.full.layers.length} layers made on an earlier run`] : [])];
  return parts.length ? `; ${parts.join(', ')}` : '';
}


/** The pruning section of report.md. */
function pruneMarkdown(files: readonly PrunedFile[], settings: ReturnType<typeof pruneSettings>): string[] {
  if (!settings) return ['## Fat binaries', '', 'Not pruned (`pruneFatBinaries` is off for this target).', ''];
  if (files.length === 0) return ['## Fat binaries', '', 'No library of the trimmed root carries device code.', ''];
  return [
    '## Fat binaries', '',
    `Device code of other arches removed from each GPU library (${settings.keep ? `kept: ${settings.keep.join(', ')}` : `kept: the target${settings.fallback ? ' and the generic ISA / newest PTX covering it' : ''}`}); dropped code objects are holes, so the apparent size stays and the bytes on disk go.`, '',
    '| file | kept | dropped | apparent | on disk before → after |', '|---|---|---|---|---|',
    ...files.map((f) => `| \`${f.path}\` | ${f.keep.join(', ') || '-'} | ${f.skipped ?? (Object.entries(f.dropped).map(([a, b]) => `${a} ${humanBytes(b)}`).join(', ') || '-')} | ${humanBytes(f.apparent)} | ${humanBytes(f.allocatedBefore)} → ${humanBytes(f.allocatedAfter)} |`),
    '',
  ];
}

export async function run(ctx: RunContext<TrimRuntimeOptions>): Promise<TaskResult> {
  const def = ctx.target.definition;
  const traceOut = ctx.deps['strace-trace']!.outDir;
  const traced = await readJson<TraceRecord>(join(traceOut, 'workload.json'));
  const access = await readJson<AccessSet>(join(traceOut, 'access.json'));
  const rt = await pipelineRuntime(ctx.deps, { cacheDir: ctx.cacheDir, projectRoot: ctx.projectRoot });

  // milliseconds per step, for the report
  const timings: Record<string, number> = {};
  let since = performance.now();
  const mark = (step: string) => ((timings[step] = Math.round(performance.now() - since)), (since = performance.now()));

  // 1. closure and assembly
  const closure = await computeClosure({
    layout: rt.layout, access,
    mounted: [`${MODELS_MOUNT}/**`, `${NUMERICS_MOUNT}/**`],
    exclude: [`${STRACE_KIT_DIR}/**`, `${traceOut}/**`, '/tmp/**'],
    keep: def.keep, drop: def.drop, hostProvided: def.hostProvided,
    // resolve DT_NEEDED the way the traced run's loader did (the target may set LD_LIBRARY_PATH)
    libraryPath: traced.env.LD_LIBRARY_PATH ? traced.env.LD_LIBRARY_PATH.split(':').filter(Boolean) : undefined,
  });
  for (const w of closure.warnings) ctx.log.warn(w);
  const noDevice = traced.noDevice === true;
  // what the keep rules added beyond the trace (and what that needs): on a run without the device, everything only a device loads
  const traceOnly = await computeClosure({
    layout: rt.layout, access, mounted: [`${MODELS_MOUNT}/**`, `${NUMERICS_MOUNT}/**`], exclude: [`${STRACE_KIT_DIR}/**`, `${traceOut}/**`, '/tmp/**'],
    keep: [], drop: def.drop, hostProvided: def.hostProvided,
    libraryPath: traced.env.LD_LIBRARY_PATH ? traced.env.LD_LIBRARY_PATH.split(':').filter(Boolean) : undefined,
  });
  const traceSet = new Set(traceOnly.entries.map((e) => e.path));
  const byRule = closure.entries.filter((e) => e.type === 'file' && !traceSet.has(e.path)).map((e) => e.path);
  mark('closure');
  const rootfs = join(ctx.outDir, 'rootfs');
  const manifestPath = join(ctx.outDir, 'rootfs.manifest.json');
  const assembling = ctx.progress.start('assemble the trimmed root', { unit: 'files' });
  let manifest = await assembleRoot(closure, { layout: rt.layout, dest: rootfs, manifestPath, signal: ctx.signal, onProgress: (done, total) => assembling.update(done, total) });
  assembling.done();
  mark('assemble');
  if (ctx.options.strip ?? true) {
    const bar = ctx.progress.start('strip ELF files', { unit: 'bytes' });
    const stripped = await stripRoot(rootfs, manifest, manifestPath, { onProgress: (done, total) => bar.update(done, total) });
    bar.done();
    manifest = stripped.manifest;
    ctx.log.info(`stripped ${stripped.stripped} ELF files: ${humanBytes(stripped.saved)} saved`);
    mark('strip');
  }
  // fat binaries: prune to the target (after strip, which would fill the holes), then check what the root covers
  const arch = gpuArch(ctx.target, traced.detection);
  const pruning = pruneSettings(ctx.target);
  let pruned: PrunedFile[] = [];
  if (pruning && (arch || pruning.keep)) {
    const bar = ctx.progress.start('prune fat binaries', { unit: 'bytes' });
    const r = await pruneRootFatbins(rootfs, manifest, manifestPath, { target: arch ?? '', ...pruning, signal: ctx.signal, onProgress: (done, total) => bar.update(done, total) });
    bar.done();
    manifest = r.manifest;
    pruned = r.files;
    for (const u of r.unreadable) ctx.log.warn(`not pruned: ${u}`);
    const saved = pruned.reduce((n, f) => n + f.allocatedBefore - f.allocatedAfter, 0);
    ctx.log.info(`pruned ${pruned.filter((f) => !f.skipped).length} of ${pruned.length} GPU libraries: ${humanBytes(saved)} less on disk`);
    mark('prune fat binaries');
  } else if (pruning) ctx.log.warn(`fat binaries not pruned: the arch of ${ctx.target.name} is unknown (set targets.${ctx.target.name}.computeCapability, or list the arches in pruneFatBinaries)`);
  const findings = arch ? await scanCoverage([{ dir: rootfs, as: '/' }], arch, { signal: ctx.signal }) : [];
  const coverageLines = arch ? judgeCoverage(findings, arch, { strict: strictCoverage(ctx.config.tasks), where: 'in the trimmed root', task: 'trim-runtime', warn: (m) => ctx.log.warn(m) }) : [];
  const allocated = await allocatedBytes(rootfs, manifest);
  ctx.log.info(`trimmed root: ${manifest.files} files, ${humanBytes(manifest.bytes)} (${humanBytes(allocated)} on disk)`);
  // empty mount points: chroot (and container runtimes) mount onto them; nothing is written into the root later
  for (const [d, mode] of [['dev', 0o755], ['proc', 0o555], ['sys', 0o555], ['tmp', 0o1777]] as const) {
    if (!existsSync(join(rootfs, d))) await mkdir(join(rootfs, d), { mode });
    await chmod(join(rootfs, d), mode);
  }

  // 2. verification: the traced workload, in the trimmed root, must say the same
  const bar = ctx.progress.start('verify the trimmed root', { unit: 'steps', total: traced.spec.requests.length + 2 });
  const verify = await verifyWorkload({
    rootfs, full: rt.layout, expected: traced.texts, spec: traced.spec, gpu: traced.gpu,
    paths: { binDir: rt.binDir, model: `${MODELS_MOUNT}/model.gguf`, cli: traced.cli },
    // the driver's own libraries (libcuda, libnvidia-*) come from the host at run time, as a container runtime mounts them
    binds: [{ source: rt.modelsDir, dest: MODELS_MOUNT }, ...closure.hostProvided.map((p) => ({ source: hostPath(rt.layout, p), dest: p }))],
    devices: noDevice ? [] : def.devices, env: traced.env,
    workDir: ctx.workDir, signal: ctx.signal, log: (l) => ctx.log.info(`verify: ${l}`), onStep: (done) => bar.update(done),
  });
  bar.done();
  if (!verify.ok) {
    const why = verify.error ?? `texts differ for ${verify.differing.join(', ')}`;
    throw new RocmflowError('E_VERIFY', `trim-runtime: the trimmed root ${rootfs} failed verification (${verify.method}): ${why}`, {
      details: verify.missing.length ? ['paths the trimmed run could not find:', ...verify.missing] : verify.differing.map((n) => `${n}: expected ${JSON.stringify(traced.texts[n])}, got ${JSON.stringify(verify.texts[n])}`),
    });
  }
  const requests = traced.spec.requests.length;

  // the numeric check again, in the trimmed root: the minimal image against the CPU, not only against the full runtime
  const numerics = await numericsFromDeps(ctx.deps);
  let trimmedNumerics: NumericsResult | null = null;
  if (numerics) {
    const nbar = ctx.progress.start('numerics in the trimmed root', { unit: 'steps' });
    const runner = await sandboxRunner({
      root: rootfs,
      binds: [{ source: rt.modelsDir, dest: MODELS_MOUNT }, { source: numerics.dir, dest: NUMERICS_MOUNT }, ...closure.hostProvided.map((p) => ({ source: hostPath(rt.layout, p), dest: p }))],
      devices: def.devices, env: traced.env, signal: ctx.signal,
    });
    try {
      trimmedNumerics = await compareNumerics({ runner, binDir: rt.binDir, model: `${MODELS_MOUNT}/model.gguf`, reference: numerics.reference, gpu: traced.gpu, where: 'trimmed root' });
    } finally {
      nbar.done();
    }
    if (!trimmedNumerics.ok) throw numericsError(trimmedNumerics);
  }
  mark('verification');

  // 3. images
  const full = await fullRuntime(rt.layout, closure);
  mark('full runtime listing');
  const images = join(ctx.outDir, 'images');
  await mkdir(images, { recursive: true });
  const snapshot = join(ctx.deps['snapshot-rocm']!.outDir, 'rocm.tar.zst');
  const buildInfo = await readJson<Parameters<typeof imageProvenance>[0]['build']>(join(ctx.deps['build-llama']!.outDir, 'build-info.json'));
  const provenance = imageProvenance({ build: buildInfo, runtime: await readJsonIf(join(ctx.deps['fetch-rocm']!.outDir, 'fetch.json')) as never, family: def.family });
  const written = await writeRuntimeImages({
    rootfs, full: full.entries, rocmSnapshot: rt.runtimeRoot ? snapshot : undefined, isStoredBlob: ctx.isStoredBlob, outDir: images,
    layerMemo: { dir: join(ctx.cacheDir, 'layers'), storedBlob: ctx.storedBlob, version: rocmflowVersion() },
    target: ctx.target.name, env: traced.env, devices: def.devices, provenance, rocmflowVersion: rocmflowVersion(), signal: ctx.signal,
    progress: ctx.progress,
    workload: {
      target: ctx.target.name, spec: traced.spec, cli: traced.cli, texts: traced.texts, gpu: traced.gpu, noDevice, env: traced.env,
      model: await readJson<{ sha256: string; size: number }>(join(ctx.deps.model!.outDir, 'model.json')).then((m) => ({ sha256: m.sha256, size: m.size })),
      hostProvided: closure.hostProvided,
      numerics: numerics ? {
        spec: numerics.reference.spec, textSha256: numerics.textSha256, weightType: numerics.reference.weightType,
        group: numerics.reference.group, thresholds: numerics.reference.thresholds,
      } : null,
    },
  });
  mark('images');
  for (const [k, ms] of Object.entries(written.timings)) timings[`images: ${k}`] = ms;

  // 4. report
  const report = trimReport({ full: full.files, manifest, categorize: pipelineCategory });
  const sizes = new Map(full.files.map((f) => [f.path, f.size]));
  const addedByRule = { files: byRule.length, bytes: byRule.reduce((n, p) => n + (sizes.get(p) ?? 0), 0), paths: byRule };
  const gpuName = def.arch ?? ctx.target.name;
  const device = noDevice
    ? { run: false, note: `not run on a ${gpuName}: traced with --no-device (no device node; HIP found no GPU, ggml's CPU backend ran); files only a device loads were added by the ${ctx.target.name} keep rules` }
    : { run: def.family !== 'cpu', note: def.family === 'cpu' ? 'cpu target' : `traced on the ${gpuName}` };
  const model = (await readJson<{ sha256: string; size: number }>(join(ctx.deps.model!.outDir, 'model.json')));
  const imageSizes = Object.fromEntries((['minimal', 'full', 'base'] as const).map((k) => {
    const i = written[k];
    const archives = [i.ociArchive, i.dockerArchive].filter((a): a is string => !!a).map((a) => relative(ctx.outDir, a));
    const layout = i.ociDir ? { layout: relative(ctx.outDir, i.ociDir) } : {};
    return [k, { name: i.name, version: provenance.version, compressed: i.compressedSize, uncompressed: i.uncompressedSize, layers: i.layers.length, digest: i.manifestDigest, archives, ...layout }];
  })) as Record<'minimal' | 'full' | 'base', { name: string; version: string; compressed: number; uncompressed: number; layers: number; digest: string; archives: string[]; layout?: string }>;
  const reportJson = {
    target: ctx.target.name,
    device,
    addedByRule,
    ...report.json,
    hostProvided: closure.hostProvided,
    fullDefinition: { layers: rt.layout.layers.map((l) => l.mount), libraryDirs: full.libraryDirs },
    verify: { ok: true, method: verify.method, requests, cli: traced.cli, texts: verify.texts, speed: { full: workloadSpeed(traced.result), trimmed: workloadSpeed(verify.result) } },
    numerics: numerics ? { reference: numerics.reference, full: traced.numerics ?? null, trimmed: trimmedNumerics } : null,
    images: imageSizes,
    reusedRocmSnapshot: written.reusedSnapshot,
    reusedLayers: written.reusedLayers,
    model: { bytes: model.size, sha256: model.sha256 },
    // the trimmed root's three sizes: st_size summed, st_blocks × 512 summed, the minimal image's compressed layers
    sizes: { apparent: manifest.bytes, allocated, compressed: imageSizes.minimal.compressed },
    fatbins: { prune: pruning, arch, files: pruned },
    coverage: coverageFacts(findings),
    timings,
  };
  await writeFile(join(ctx.outDir, 'report.json'), JSON.stringify(reportJson, null, 2) + '\n');
  const ruleDirs = new Map<string, number>();
  for (const p of byRule) {
    const d = p.slice(0, p.lastIndexOf('/')) || '/';
    ruleDirs.set(d, (ruleDirs.get(d) ?? 0) + 1);
  }
  const md = [
    ...(noDevice ? [`> **Not run on a ${gpuName} GPU.** ${device.note}. Only a run on the GPU shows whether anything else is needed.`, ''] : []),
    report.markdown,
    '## Added by rule, not by the trace', '',
    `${addedByRule.files} files, ${humanBytes(addedByRule.bytes)}, kept by the ${ctx.target.name} rules (and what they need) beyond what the traced run loaded:`, '',
    ...([...ruleDirs].sort().map(([d, n]) => `- \`${d}/\`: ${n} files`)), ...(ruleDirs.size ? [] : ['none']), '',
    '## The full runtime', '',
    `Every file of ${rt.layout.layers.map((l) => `\`${l.mount}\``).join(' and ')}, plus every file directly in the base directories the trimmed closure took libraries from (${full.libraryDirs.map((d) => `\`${d}\``).join(', ') || 'none'}): what a hand-written Dockerfile copying those directories would ship.`, '',
    `Sizes of the trimmed root: ${humanBytes(manifest.bytes)} apparent (file sizes), ${humanBytes(allocated)} allocated on disk, ${humanBytes(imageSizes.minimal.compressed)} as compressed image layers.`, '',
    ...(def.family === 'cpu' ? [] : pruneMarkdown(pruned, pruning)),
    ...(arch ? coverageMarkdown(findings, arch, 'the trimmed root') : []),
    '## Host-provided (not bundled)', '', ...(closure.hostProvided.length ? closure.hostProvided.map((p) => `- \`${p}\``) : ['none']), '',
    '## Verification', '',
    `${requests} server requests and one ${traced.cli} run gave the same text in the trimmed root as in the traced full runtime (${verify.method}).`, '',
    ...(numerics && trimmedNumerics ? [
      '### Numbers against a CPU reference', '',
      `\`llama-perplexity --kl-divergence\` on a ${numerics.reference.spec.chunks}×${numerics.reference.spec.ctxSize}-token text against a CPU build of the same llama.cpp (${numerics.reference.weightType ?? 'unknown'} weights, ${numerics.reference.group} limits: mean KLD ≤ ${numerics.reference.thresholds.meanKld}, max KLD ≤ ${numerics.reference.thresholds.maxKld}, same top token ≥ ${(numerics.reference.thresholds.minSameTop * 100).toFixed(0)}%; reference PPL ${numerics.reference.ppl}):`, '',
      '| where | mean KLD | max KLD | same top token | PPL | within limits |', '|---|---|---|---|---|---|',
      ...[traced.numerics, trimmedNumerics].filter((r): r is NumericsResult => !!r).map((r) => `| ${r.where} | ${r.meanKld} | ${r.maxKld} | ${(r.sameTop * 100).toFixed(2)}% | ${r.ppl ?? '?'} | ${r.ok ? 'yes' : r.failures.join('; ')} |`), '',
    ] : ['Numeric check: disabled.', '']),
    '## Images', '',
    `- minimal: ${humanBytes(imageSizes.minimal.uncompressed)} uncompressed, ${humanBytes(imageSizes.minimal.compressed)} zstd (${imageSizes.minimal.digest})`,
    `- full: ${humanBytes(imageSizes.full.uncompressed)} uncompressed, ${humanBytes(imageSizes.full.compressed)} zstd (${imageSizes.full.digest})`,
    `- base (the full image without llama.cpp): ${humanBytes(imageSizes.base.uncompressed)} uncompressed, ${humanBytes(imageSizes.base.compressed)} zstd (${imageSizes.base.digest})`, '',
  ].join('\n');
  await writeFile(join(ctx.outDir, 'report.md'), md);

  // 5. reproducibility record
  const tools: Record<string, string | null> = {};
  for (const t of ['strace', 'bwrap', 'cmake', 'zstd', 'git']) tools[t] = await toolVersion(t);
  const repro = {
    rocmflow: rocmflowVersion(),
    node: process.version,
    target: { name: ctx.target.name, family: def.family, arch: def.arch ?? null, detection: traced.detection, env: traced.env },
    device,
    addedByRule: { files: addedByRule.files, bytes: addedByRule.bytes },
    rocm: await readJsonIf(join(ctx.deps['fetch-rocm']!.outDir, 'fetch.json')),
    llama: await readJsonIf(join(ctx.deps['build-llama']!.outDir, 'build-info.json')),
    model: await readJsonIf(join(ctx.deps.model!.outDir, 'model.json')),
    workload: { spec: traced.spec, cli: traced.cli, texts: traced.texts },
    numerics: numerics ? { reference: numerics.reference, full: traced.numerics ?? null, trimmed: trimmedNumerics } : null,
    tools,
    images: imageSizes,
    rootfs: { files: manifest.files, bytes: manifest.bytes, allocated },
    fatbins: { prune: pruning, pruned: pruned.filter((f) => !f.skipped).map((f) => ({ path: f.path, keep: f.keep, dropped: f.dropped })) },
  };
  await writeFile(join(ctx.outDir, 'reproducibility.json'), JSON.stringify(repro, null, 2) + '\n');
  const html = await writeReportHtml(ctx.outDir);

  const ratio = imageSizes.full.uncompressed ? (imageSizes.full.uncompressed / imageSizes.minimal.uncompressed).toFixed(1) : '?';
  return {
    summary: [
      ...(noDevice ? [`NOT RUN ON A ${gpuName.toUpperCase()} GPU (--no-device): traced and verified on the CPU fallback; ${addedByRule.files} files (${humanBytes(addedByRule.bytes)}) added by the ${ctx.target.name} rules instead of by the trace (report.md lists them)`] : []),
      `minimal image: ${imageSizes.minimal.name}, ${humanBytes(imageSizes.minimal.uncompressed)} (${humanBytes(imageSizes.minimal.compressed)} zstd) against ${humanBytes(imageSizes.full.uncompressed)} full: ${ratio}x smaller`,
      `  podman load -i ${join(images, 'minimal.oci.tar')} (docker load -i ${join(images, 'minimal.docker.tar')})`,
      `  podman run --rm --network host -v ${rt.modelsDir}:${MODELS_MOUNT}:ro ${imageSizes.minimal.name}   (serves ${MODELS_MOUNT}/model.gguf on :8080; --entrypoint ${traced.cli} runs the CLI)`,
      `full and base images: OCI layouts ${join(images, 'full.oci')} and ${join(images, 'base.oci')} (podman pull oci:DIR; rocmflow verify and push read them as they are)${reuseNote(written)}`,
      `trimmed root: ${manifest.files} files, ${humanBytes(manifest.bytes)} apparent, ${humanBytes(allocated)} on disk, ${humanBytes(imageSizes.minimal.compressed)} compressed layers; of ${report.json.full.files} files, ${humanBytes(report.json.full.bytes)}; model (${humanBytes(model.size)}) mounted at ${MODELS_MOUNT}, not included`,
      `verified: ${requests} server requests + 1 ${traced.cli} run gave identical text in the trimmed root (${verify.method})`,
      ...(trimmedNumerics ? [trimmedNumerics.line] : []),
      ...speedLine(workloadSpeed(traced.result), workloadSpeed(verify.result)),
      ...(pruned.some((f) => !f.skipped) ? [`fat binaries pruned to ${pruned.find((f) => !f.skipped)!.keep.join(', ')}: ${pruned.filter((f) => !f.skipped).map((f) => `${f.path.split('/').pop()} ${humanBytes(f.allocatedBefore)} → ${humanBytes(f.allocatedAfter)}`).join(', ')} on disk`] : []),
      ...coverageLines,
      ...(closure.hostProvided.length ? [`host-provided, not bundled: ${closure.hostProvided.join(', ')}`] : []),
      `timings: ${Object.entries(timings).filter(([k]) => !k.startsWith('images: ')).map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`).join(', ')} (per image, the minimal one written alongside the other two: ${Object.entries(written.timings).map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`).join(', ')})`,
      `report: ${html}`,
      `reproducibility record: ${join(ctx.outDir, 'reproducibility.json')}`,
    ],
    facts: {
      sizes: reportJson.sizes,
      coverage: reportJson.coverage,
      fatbins: pruned.filter((f) => !f.skipped).map((f) => ({ path: f.path, keep: f.keep, dropped: f.dropped, apparent: f.apparent, allocatedBefore: f.allocatedBefore, allocatedAfter: f.allocatedAfter })),
    },
  };
}
