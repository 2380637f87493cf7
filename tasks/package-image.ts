/**
 * package-image: compressed exports of the minimal and the full image for
 * distribution (`exports/<name>.oci.tar.zst` and `.tar.gz`), and a size
 * report comparing them uncompressed and compressed.
 */
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { defineTask, RocmflowError, s } from '../src/plugin/core.js';
import { EXPORT_ZSTD_LEVEL, type Compression } from '../src/image/levels.js';
import type { CompressedFormat, ImageSize } from '../src/image/report.js';

/** `tasks.package-image` options. */
export interface PackageImageOptions {
  /** @default ["zstd", "gzip"] */
  formats?: CompressedFormat[];
  /** zstd level of the exports. @default 19 */
  zstdLevel?: number;
}

const EXT: Record<CompressedFormat, string> = { zstd: 'zst', gzip: 'gz' };

async function compressFile(src: string, dest: string, format: Compression, level: number | undefined, signal: AbortSignal): Promise<number> {
  const { createCompressor } = await import('../src/image/compress.js');
  const tmp = `${dest}.tmp`;
  const out = createWriteStream(tmp);
  const c = createCompressor(out, { format, level, signal });
  try {
    await pipeline(createReadStream(src), c.input, { signal });
    const r = await c.done;
    await rename(tmp, dest);
    return r.compressed.size;
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

interface TrimReportJson {
  full: { files: number };
  trimmed: { files: number };
  images: Record<'minimal' | 'full', { uncompressed: number; layers: number }>;
}

export default defineTask<PackageImageOptions>({
  name: 'package-image',
  description: 'Compressed exports (zstd -19, gzip) of the minimal and full images, and a size report',
  deps: ['trim-runtime'],
  options: s.object({
    formats: s.optional(s.array(s.literal('zstd', 'gzip'))),
    zstdLevel: s.optional(s.number({ integer: true, min: 1, max: 22 })),
  }),
  inputs(ctx) {
    return { params: { formats: ctx.options.formats ?? ['zstd', 'gzip'], zstdLevel: ctx.options.zstdLevel ?? EXPORT_ZSTD_LEVEL }, tools: ['zstd --version'] };
  },
  outputs: ['exports', 'size-report.md'],
  async run(ctx) {
    // loaded when the task runs, not for the check that finds it fresh
    const { writeTarFile } = await import('../src/image/oci.js');
    const { defaultMtime } = await import('../src/image/tar-writer.js');
    const { humanBytes, sizeReport } = await import('../src/image/report.js');
    const trim = ctx.deps['trim-runtime']!.outDir;
    const report = JSON.parse(await readFile(join(trim, 'report.json'), 'utf8')) as TrimReportJson;
    if (!report.images) throw new RocmflowError('E_MISSING_DEP', `${join(trim, 'report.json')}: no images recorded; rerun trim-runtime`);
    const formats = ctx.options.formats ?? ['zstd', 'gzip'];
    const exportsDir = join(ctx.outDir, 'exports');
    await mkdir(exportsDir, { recursive: true });
    const sizes: ImageSize[] = [];
    for (const name of ['full', 'minimal'] as const) {
      // the full image is an OCI layout (its GPU runtime layer linked from the cache): an export is one oci-archive
      const layout = join(trim, 'images', `${name}.oci`);
      let src = join(trim, 'images', `${name}.oci.tar`);
      if (!existsSync(src) && existsSync(join(layout, 'index.json'))) {
        const bar = ctx.progress.start(`${name}.oci → oci-archive`, { unit: 'bytes' });
        src = join(ctx.workDir, `${name}.oci.tar`);
        await writeTarFile(layout, src, defaultMtime(), ctx.signal, (done, total) => bar.update(done, total));
        bar.done();
      }
      if (!existsSync(src)) throw new RocmflowError('E_MISSING_DEP', `${join(trim, 'images')}: no ${name} image (${name}.oci.tar or ${name}.oci/); rerun trim-runtime`);
      const compressed: Partial<Record<CompressedFormat, number>> = {};
      for (const f of formats) {
        const bar = ctx.progress.start(`${name}.oci.tar → ${f}`, { unit: 'steps', total: 1 });
        const level = f === 'zstd' ? (ctx.options.zstdLevel ?? EXPORT_ZSTD_LEVEL) : undefined;
        compressed[f] = await compressFile(src, join(exportsDir, `${name}.oci.tar.${EXT[f]}`), f, level, ctx.signal);
        bar.done();
      }
      const img = report.images[name];
      sizes.push({ name, uncompressedBytes: img.uncompressed, compressedBytes: compressed, files: name === 'full' ? report.full.files : report.trimmed.files, layers: img.layers });
    }
    const md = [
      sizeReport({ images: sizes, baseline: 'full', title: 'Full vs minimal runtime image' }),
      'Uncompressed: the layer tars. Compressed: the exported OCI archives (`exports/`).',
      '',
    ].join('\n');
    await writeFile(join(ctx.outDir, 'size-report.md'), md);
    const [full, minimal] = sizes as [ImageSize, ImageSize];
    const c = (i: ImageSize, f: CompressedFormat) => (i.compressedBytes as Partial<Record<CompressedFormat, number>>)[f];
    const f0 = formats[0]!;
    return {
      summary: [
        `exports in ${exportsDir}: minimal ${humanBytes(c(minimal, f0)!)} ${f0} (${humanBytes(minimal.uncompressedBytes)} uncompressed) vs full ${humanBytes(c(full, f0)!)} ${f0} (${humanBytes(full.uncompressedBytes)})`,
        `size report: ${join(ctx.outDir, 'size-report.md')}`,
      ],
    };
  },
});
