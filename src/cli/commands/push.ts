/**
 * `rocmflow push REGISTRY`: copy the base, full and minimal images of the
 * last trim-runtime run to a registry with skopeo, each tagged
 * `<image>-<version>` and `<image>`. The base goes first, so the full image,
 * which shares its layers, sends only llama.cpp; a second push sends nothing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from '../command.js';
import { COMMON_FLAGS, parseArgs } from '../args.js';
import { openSession } from '../session.js';
import { resolveTarget } from '../../plugin/select-target.js';
import { Executor } from '../../engine/executor.js';
import { RocmflowError, usageError } from '../../errors.js';
import { pushImage } from '../../image/push.js';

const KINDS = ['base', 'full', 'minimal'] as const;
type Kind = (typeof KINDS)[number];

const USAGE = `usage: rocmflow push REGISTRY [--images base,full,minimal] [--target T] [--tls-verify=false] [--authfile FILE] [--json]

Copy the images of the target's last trim-runtime run to REGISTRY
(host[:port][/path]) with skopeo, as REGISTRY/rocmflow/llama-<target>:<image>-<version>
and REGISTRY/rocmflow/llama-<target>:<image>. Blobs the registry already has
(by digest) are not sent: push the base first and the full image sends only
its llama.cpp layer; push again and nothing is sent.

  --images LIST       which images, in this order (default: base,full,minimal)
  --tls-verify=false  a registry that speaks plain HTTP (e.g. one on 127.0.0.1)
  --authfile FILE     credentials (default: the file \`podman login\` writes)
  --json              one JSON object per image`;

interface ImageRecord {
  name: string;
  version: string;
  digest: string;
  archives: string[];
  /** An OCI image layout directory (the full and base images). */
  layout?: string;
}

export const pushCommand: Command = {
  name: 'push',
  summary: 'copy the base, full and minimal images to a registry (skopeo), skipping blobs it has',
  usage: USAGE,
  async run(argv, io) {
    const { flags, positionals } = parseArgs(argv, {
      ...COMMON_FLAGS, images: { type: 'string' }, 'tls-verify': { type: 'string' }, authfile: { type: 'string' }, json: { type: 'boolean' },
    }, 'push');
    if (flags.help) {
      io.out(USAGE);
      return 0;
    }
    if (positionals.length !== 1) throw usageError('E_USAGE', 'push: expected one REGISTRY (host[:port][/path]), e.g. rocmflow push registry.lan:5000');
    const registry = positionals[0]!.replace(/^docker:\/\//, '').replace(/\/+$/, '');
    if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(registry))
      throw usageError('E_USAGE', `push: ${JSON.stringify(positionals[0])} is not a registry (host[:port][/path], lowercase)`);
    const tls = flags['tls-verify'];
    if (tls !== undefined && tls !== 'true' && tls !== 'false') throw usageError('E_USAGE', 'push: --tls-verify takes true or false');
    const kinds = typeof flags.images === 'string' ? flags.images.split(',').map((k) => k.trim()) : [...KINDS];
    for (const k of kinds) if (!(KINDS as readonly string[]).includes(k)) throw usageError('E_USAGE', `push: --images: unknown image "${k}" (base, full, minimal)`);

    const session = await openSession(io, { config: flags.config as string | undefined, cacheDir: flags['cache-dir'] as string | undefined, target: flags.target as string | undefined });
    try {
      const { config } = session;
      const { target } = await resolveTarget(config.target, session.registry, { targetOptions: config.targets, env: io.env });
      const out = Executor.outDir(config, target.name, 'trim-runtime');
      const reportFile = join(out, 'report.json');
      const rerun = `run \`rocmflow run trim-runtime --target ${target.name}\``;
      if (!existsSync(reportFile)) throw usageError('E_NO_RUNTIME', `no images for target ${target.name} in ${out}: ${rerun} first`);
      let images: Partial<Record<Kind, ImageRecord>>;
      try {
        images = (JSON.parse(readFileSync(reportFile, 'utf8')) as { images?: Partial<Record<Kind, ImageRecord>> }).images ?? {};
      } catch (e) {
        throw new RocmflowError('E_BAD_STATE', `${reportFile}: not readable JSON (${(e as Error).message}): ${rerun}`);
      }
      let sentTotal = 0;
      for (const kind of kinds as Kind[]) {
        const img = images[kind];
        const archive = typeof img?.layout === 'string' ? img.layout : img?.archives?.find((a) => typeof a === 'string' && a.endsWith('.oci.tar'));
        if (!img || typeof img.name !== 'string' || typeof img.version !== 'string' || !archive)
          throw usageError('E_NO_RUNTIME', `${reportFile} records no ${kind} image (made by an older rocmflow): ${rerun}`);
        // the local repository under the registry: localhost/rocmflow/llama-cpu → REGISTRY/rocmflow/llama-cpu
        const repo = `${registry}/${img.name.replace(/^localhost\//, '').replace(/:[^/:]+$/, '')}`;
        const file = join(out, archive);
        if (!file.startsWith(out + '/') || !existsSync(file)) throw usageError('E_NO_RUNTIME', `${kind} image ${file} is missing: ${rerun}`);
        const tags = [`${kind}-${img.version}`, kind];
        if (!flags.json) io.err(`${kind}: copying ${archive} to ${repo}:${tags[0]} …`);
        const results = [];
        for (const tag of tags) {
          results.push(await pushImage({
            archive: file, dest: `${repo}:${tag}`, tlsVerify: tls !== 'false', authfile: flags.authfile as string | undefined, signal: io.signal,
          }));
        }
        const first = results[0]!;
        sentTotal += first.sent.length;
        if (flags.json) {
          io.out(JSON.stringify({ type: 'push', image: kind, name: img.name, repository: repo, tags, digest: first.digest, sent: first.sent, skipped: first.skipped }));
        } else {
          const same = first.digest === img.digest ? 'same manifest digest as built' : `manifest digest differs from the built ${img.digest}`;
          io.out(`${kind}: ${repo}:${tags[0]} and :${tags[1]}, ${first.sent.length} blob${first.sent.length === 1 ? '' : 's'} sent, ${first.skipped.length} already in the registry (${first.digest}, ${same})`);
        }
      }
      if (!flags.json) io.out(`pushed ${kinds.length} image${kinds.length === 1 ? '' : 's'} to ${registry} (${sentTotal} blobs sent); pull with: podman pull ${registry}/${(images[kinds[kinds.length - 1] as Kind]?.name ?? '').replace(/^localhost\//, '').replace(/:[^/:]+$/, '')}:${kinds[kinds.length - 1]}`);
      return 0;
    } finally {
      await session.close();
    }
  },
};
