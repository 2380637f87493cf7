/**
 * trim-runtime: the full runtime + the traced access set + the target's
 * rules → a trimmed root (`rootfs/`), verified by running the traced
 * workload inside it (identical texts or the task fails, listing the paths
 * the trimmed run missed), then written as OCI images: the minimal runtime
 * and the full one it is measured against. Also the trim report and the
 * reproducibility record.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { defineTask, RocmflowError, s, type Detection } from '../src/plugin/index.js';
import { PACKAGE_ROOT } from '../src/plugin/load.js';
import { computeClosure } from '../src/runtime/closure.js';
import { hostPath } from '../src/runtime/layout.js';
import { assembleRoot } from '../src/runtime/assemble.js';
import { trimReport } from '../src/runtime/report.js';
import { pipelineRuntime, MODELS_MOUNT } from '../src/pipeline/runtime.js';
import { fullRuntime, pipelineCategory } from '../src/pipeline/full-runtime.js';
import { verifyWorkload } from '../src/pipeline/verify.js';
import { stripRoot } from '../src/runtime/strip-root.js';
import { STRACE_KIT_DIR } from '../src/runtime/strace-kit.js';
import { imageProvenance, writeRuntimeImages } from '../src/pipeline/images.js';
import { writeReportHtml } from '../src/report/html.js';
import { humanBytes } from '../src/image/report.js';
import { toolVersion } from '../src/llama/toolchain.js';
import type { WorkloadResult, WorkloadSpec } from '../src/llama/workload.js';
import type { AccessSet } from '../src/trace/access-set.js';

/** What trim-runtime reads back from strace-trace's workload.json. */
interface TraceRecord {
  target: string;
  detection: Detection;
  env: Record<string, string>;
  gpu: boolean;
  spec: WorkloadSpec;
  cli: string;
  texts: Record<string, string>;
  result?: WorkloadResult;
}

/** Generation and prompt speed of a workload run: the mean over the server requests, and the CLI's own. */
function speedOf(r: WorkloadResult | null | undefined): { serverTokensPerSecond: number | null; serverPromptPerSecond: number | null; cliTokensPerSecond: number | null; loadMs: number | null } | null {
  if (!r) return null;
  const t = r.requests.map((q) => q.timings).filter((x): x is NonNullable<typeof x> => !!x);
  const mean = (xs: number[]) => (xs.length ? Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 10) / 10 : null);
  return {
    serverTokensPerSecond: mean(t.map((x) => x.predictedPerSecond)),
    serverPromptPerSecond: mean(t.map((x) => x.promptPerSecond)),
    cliTokensPerSecond: r.cli.timings.predictedPerSecond ?? null,
    loadMs: r.server.loadMs,
  };
}

function speedLine(full: ReturnType<typeof speedOf>, trimmed: ReturnType<typeof speedOf>): string[] {
  if (!full?.serverTokensPerSecond || !trimmed?.serverTokensPerSecond) return [];
  return [`generation: ${full.serverTokensPerSecond} tokens/s traced in the full runtime (under strace), ${trimmed.serverTokensPerSecond} tokens/s in the trimmed root`];
}

const readJson = async <T>(path: string): Promise<T> => JSON.parse(await readFile(path, 'utf8')) as T;
const readJsonIf = async (path: string): Promise<unknown> => (existsSync(path) ? readJson(path) : null);

function rocmflowVersion(): string {
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/** `tasks.trim-runtime` options. */
export interface TrimRuntimeOptions {
  /** Strip symbol tables and debug sections from the trimmed root's ELF files (before verification). @default true */
  strip?: boolean;
}

export default defineTask<TrimRuntimeOptions>({
  name: 'trim-runtime',
  description: 'Trim the full runtime to what the trace needs, verify it with the same workload, write the minimal and full OCI images and the report',
  deps: ['strace-trace', 'build-llama', 'fetch-rocm', 'model', 'snapshot-rocm'],
  options: s.object({ strip: s.optional(s.boolean()) }),
  inputs(ctx) {
    const baseRoot = (ctx.config.tasks['strace-trace'] as { baseRoot?: string } | undefined)?.baseRoot ?? null;
    const def = ctx.target.definition;
    return {
      // the rules decide what is kept; the base root decides where the system files come from
      params: { baseRoot, strip: ctx.options.strip ?? true, keep: def.keep as never, drop: def.drop, hostProvided: def.hostProvided, devices: def.devices, version: rocmflowVersion() },
      env: ['SOURCE_DATE_EPOCH'],
      tools: ['bwrap --version', 'zstd --version', 'strip --version'],
    };
  },
  outputs: ['rootfs', 'rootfs.manifest.json', 'images', 'report.md', 'report.json', 'report.html', 'reproducibility.json'],
  async run(ctx) {
    const def = ctx.target.definition;
    const traceOut = ctx.deps['strace-trace']!.outDir;
    const traced = await readJson<TraceRecord>(join(traceOut, 'workload.json'));
    const access = await readJson<AccessSet>(join(traceOut, 'access.json'));
    const baseRoot = (ctx.config.tasks['strace-trace'] as { baseRoot?: string } | undefined)?.baseRoot;
    const rt = await pipelineRuntime(ctx.deps, { baseRoot, projectRoot: ctx.projectRoot });

    // milliseconds per step, for the report
    const timings: Record<string, number> = {};
    let since = performance.now();
    const mark = (step: string) => ((timings[step] = Math.round(performance.now() - since)), (since = performance.now()));

    // 1. closure and assembly
    const closure = await computeClosure({
      layout: rt.layout, access,
      mounted: [`${MODELS_MOUNT}/**`],
      exclude: [`${STRACE_KIT_DIR}/**`, `${traceOut}/**`, '/tmp/**'],
      keep: def.keep, drop: def.drop, hostProvided: def.hostProvided,
      // resolve DT_NEEDED the way the traced run's loader did (the target may set LD_LIBRARY_PATH)
      libraryPath: traced.env.LD_LIBRARY_PATH ? traced.env.LD_LIBRARY_PATH.split(':').filter(Boolean) : undefined,
    });
    for (const w of closure.warnings) ctx.log.warn(w);
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
    ctx.log.info(`trimmed root: ${manifest.files} files, ${humanBytes(manifest.bytes)}`);
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
      devices: def.devices, env: traced.env,
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
      rootfs, full: full.entries, rocmSnapshot: rt.runtimeRoot ? snapshot : undefined, outDir: images, workDir: ctx.workDir,
      target: ctx.target.name, env: traced.env, devices: def.devices, provenance, rocmflowVersion: rocmflowVersion(), signal: ctx.signal,
      progress: ctx.progress,
    });
    mark('images');
    for (const [k, ms] of Object.entries(written.timings)) timings[`images: ${k}`] = ms;

    // 4. report
    const report = trimReport({ full: full.files, manifest, categorize: pipelineCategory });
    const model = (await readJson<{ sha256: string; size: number }>(join(ctx.deps.model!.outDir, 'model.json')));
    const imageSizes = Object.fromEntries((['minimal', 'full', 'base'] as const).map((k) => {
      const i = written[k];
      const archives = [i.ociArchive, i.dockerArchive].filter((a): a is string => !!a).map((a) => relative(ctx.outDir, a));
      return [k, { name: i.name, version: provenance.version, compressed: i.compressedSize, uncompressed: i.uncompressedSize, layers: i.layers.length, digest: i.manifestDigest, archives }];
    })) as Record<'minimal' | 'full' | 'base', { name: string; version: string; compressed: number; uncompressed: number; layers: number; digest: string; archives: string[] }>;
    const reportJson = {
      target: ctx.target.name,
      ...report.json,
      hostProvided: closure.hostProvided,
      fullDefinition: { layers: rt.layout.layers.map((l) => l.mount), libraryDirs: full.libraryDirs },
      verify: { ok: true, method: verify.method, requests, cli: traced.cli, texts: verify.texts, speed: { full: speedOf(traced.result), trimmed: speedOf(verify.result) } },
      images: imageSizes,
      reusedRocmSnapshot: written.reusedSnapshot,
      model: { bytes: model.size, sha256: model.sha256 },
      timings,
    };
    await writeFile(join(ctx.outDir, 'report.json'), JSON.stringify(reportJson, null, 2) + '\n');
    const md = [
      report.markdown,
      '## The full runtime', '',
      `Every file of ${rt.layout.layers.map((l) => `\`${l.mount}\``).join(' and ')}, plus every file directly in the base directories the trimmed closure took libraries from (${full.libraryDirs.map((d) => `\`${d}\``).join(', ') || 'none'}): what a hand-written Dockerfile copying those directories would ship.`, '',
      '## Host-provided (not bundled)', '', ...(closure.hostProvided.length ? closure.hostProvided.map((p) => `- \`${p}\``) : ['none']), '',
      '## Verification', '',
      `${requests} server requests and one ${traced.cli} run gave the same text in the trimmed root as in the traced full runtime (${verify.method}).`, '',
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
      rocm: await readJsonIf(join(ctx.deps['fetch-rocm']!.outDir, 'fetch.json')),
      llama: await readJsonIf(join(ctx.deps['build-llama']!.outDir, 'build-info.json')),
      model: await readJsonIf(join(ctx.deps.model!.outDir, 'model.json')),
      workload: { spec: traced.spec, cli: traced.cli, texts: traced.texts },
      tools,
      images: imageSizes,
      rootfs: { files: manifest.files, bytes: manifest.bytes },
    };
    await writeFile(join(ctx.outDir, 'reproducibility.json'), JSON.stringify(repro, null, 2) + '\n');
    const html = await writeReportHtml(ctx.outDir);

    const ratio = imageSizes.full.uncompressed ? (imageSizes.full.uncompressed / imageSizes.minimal.uncompressed).toFixed(1) : '?';
    return {
      summary: [
        `minimal image: ${imageSizes.minimal.name}, ${humanBytes(imageSizes.minimal.uncompressed)} (${humanBytes(imageSizes.minimal.compressed)} zstd) against ${humanBytes(imageSizes.full.uncompressed)} full: ${ratio}x smaller`,
        `  podman load -i ${join(images, 'minimal.oci.tar')} (docker load -i ${join(images, 'minimal.docker.tar')})`,
        `  podman run --rm --network host -v ${rt.modelsDir}:${MODELS_MOUNT}:ro ${imageSizes.minimal.name}   (serves ${MODELS_MOUNT}/model.gguf on :8080; --entrypoint ${traced.cli} runs the CLI)`,
        `trimmed root: ${manifest.files} files, ${humanBytes(manifest.bytes)} of ${report.json.full.files} files, ${humanBytes(report.json.full.bytes)}; model (${humanBytes(model.size)}) mounted at ${MODELS_MOUNT}, not included`,
        `verified: ${requests} server requests + 1 ${traced.cli} run gave identical text in the trimmed root (${verify.method})`,
        ...speedLine(speedOf(traced.result), speedOf(verify.result)),
        ...(closure.hostProvided.length ? [`host-provided, not bundled: ${closure.hostProvided.join(', ')}`] : []),
        `timings: ${Object.entries(timings).filter(([k]) => !k.startsWith('images: ')).map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`).join(', ')} (images: ${Object.entries(written.timings).map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`).join(', ')})`,
        `report: ${html}`,
        `reproducibility record: ${join(ctx.outDir, 'reproducibility.json')}`,
      ],
    };
  },
});

