/**
 * Makes (or finds) a base root. A debootstrapped or OCI root is made once
 * under `<cacheDir>/roots/<id>`, the id a digest of what defines it (the
 * debootstrap spec and package list, or the image), in a temporary
 * directory renamed into place when complete, so an interrupted run leaves
 * nothing that looks finished. Packages are installed by the root's own
 * apt-get inside bubblewrap (a sid root's binaries need sid's glibc, not
 * the host's). Made roots are read-only from then on: builds and traces
 * bind them read-only.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { RocmflowError, missingTool } from '../errors.js';
import { canonicalJson } from '../util/canonical.js';
import { which } from '../util/which.js';
import { sha256File } from '../util/sha256-file.js';
import { execStreaming } from '../llama/exec.js';
import { readOsRelease, readPackages, requireRootDir, sizeOfTree } from './inspect.js';
import type { BaseRootRecord, BaseRootSource, DebootstrapSpec } from './types.js';

export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface MakeRootOptions {
  cacheDir: string;
  projectRoot: string;
  /** Packages installed besides the spec's own (ROCm from an `apt` runtime source). */
  extraPackages?: string[];
  signal?: AbortSignal;
  /** Every line the tools print. */
  onLine?(line: string): void;
  info?(message: string): void;
}

/** The debootstrap spec with defaults filled and the package list sorted (extra packages merged). */
export function debootstrapPlan(spec: DebootstrapSpec, extra: readonly string[] = []): Required<DebootstrapSpec> {
  return {
    suite: spec.suite,
    mirror: spec.mirror ?? DEFAULT_MIRROR,
    variant: spec.variant ?? 'minbase',
    components: spec.components ?? ['main'],
    packages: [...new Set([...(spec.packages ?? []), ...extra])].sort(),
  };
}

/** The cache-relative directory of a made root. */
export function rootId(what: unknown): string {
  return `roots/${createHash('sha256').update(canonicalJson(what)).digest('hex').slice(0, 20)}`;
}

/** Make or find the root `source` names and describe it. */
export async function makeBaseRoot(source: BaseRootSource, o: MakeRootOptions): Promise<BaseRootRecord> {
  if (source === 'host') return { kind: 'host', source, location: { host: true }, os: await readOsRelease('/'), packages: [], size: null };
  if ('dir' in source) {
    const dir = resolve(o.projectRoot, source.dir);
    await requireRootDir(dir, 'tasks.base-root.source.dir');
    return { kind: 'dir', source, location: { path: source.dir }, ...(await describeRoot(dir)) };
  }
  if ('debootstrap' in source) {
    const plan = debootstrapPlan(source.debootstrap, o.extraPackages);
    const id = rootId({ debootstrap: plan });
    const dir = join(o.cacheDir, id);
    if (!existsSync(`${dir}.done`)) await debootstrapRoot(plan, dir, o);
    else o.info?.(`reusing the root made earlier: ${dir}`);
    return { kind: 'debootstrap', source: { debootstrap: plan }, location: { cache: id }, ...(await describeRoot(dir)) };
  }
  const image = resolve(o.projectRoot, source.oci);
  const st = await stat(image).catch(() => null);
  if (!st) throw new RocmflowError('E_BASE_ROOT', `tasks.base-root.source.oci: ${image} does not exist`, { exitCode: 2 });
  const ident = st.isDirectory() ? { index: await readFile(join(image, 'index.json'), 'utf8').catch(() => { throw new RocmflowError('E_BASE_ROOT', `tasks.base-root.source.oci: ${image} is not an OCI layout (no index.json)`, { exitCode: 2 }); }) } : { archive: await sha256File(image) };
  const id = rootId({ oci: ident, image: source.image ?? null });
  const dir = join(o.cacheDir, id);
  if (!existsSync(`${dir}.done`)) await unpackOci(image, st.isDirectory(), source.image, dir, o);
  return { kind: 'oci', source, location: { cache: id }, ...(await describeRoot(dir)) };
}

async function describeRoot(dir: string): Promise<Pick<BaseRootRecord, 'os' | 'packages' | 'size'>> {
  return { os: await readOsRelease(dir), packages: await readPackages(dir), size: await sizeOfTree(dir) };
}


/** bwrap with the root writable as `/`, for the root's own apt-get. */
function inRoot(root: string, command: string[]): string[] {
  return [
    'bwrap', '--die-with-parent', '--bind', root, '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp',
    '--clearenv', '--setenv', 'PATH', PATH, '--setenv', 'DEBIAN_FRONTEND', 'noninteractive', '--setenv', 'LC_ALL', 'C.UTF-8', '--setenv', 'HOME', '/root',
    '--', ...command,
  ];
}

async function run(argv: string[], what: string, o: MakeRootOptions): Promise<void> {
  o.onLine?.(`$ ${argv.join(' ')}`);
  await execStreaming(argv[0]!, argv.slice(1), { env: { ...process.env, LC_ALL: 'C' }, signal: o.signal, onLine: o.onLine, what });
}

async function debootstrapRoot(plan: Required<DebootstrapSpec>, dir: string, o: MakeRootOptions): Promise<void> {
  if (!which('debootstrap')) throw missingTool('debootstrap', 'apt install debootstrap');
  if (plan.packages.length && !which('bwrap')) throw missingTool('bwrap', 'apt install bubblewrap');
  if (process.getuid?.() !== 0) throw new RocmflowError('E_BASE_ROOT', 'tasks.base-root: debootstrap needs root (run rocmflow as root, or use a { dir } or { oci } root)');
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(dirname(tmp), { recursive: true });
  try {
    o.info?.(`debootstrap ${plan.variant} ${plan.suite} from ${plan.mirror}`);
    await run(['debootstrap', `--variant=${plan.variant}`, `--components=${plan.components.join(',')}`, plan.suite, tmp, plan.mirror], `debootstrap ${plan.suite}`, o);
    // the mirror's Release file of a rolling suite may be past its Valid-Until
    await writeFile(join(tmp, 'etc/apt/apt.conf.d/99rocmflow'), 'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n');
    if (plan.packages.length) {
      await rm(join(tmp, 'etc/resolv.conf'), { force: true });
      await copyFile('/etc/resolv.conf', join(tmp, 'etc/resolv.conf')).catch(() => undefined);
      o.info?.(`apt-get install ${plan.packages.join(' ')} (in the root)`);
      await run(inRoot(tmp, ['apt-get', '-q', 'update']), 'apt-get update in the base root', o);
      await run(inRoot(tmp, ['apt-get', '-q', '-y', '--no-install-recommends', 'install', ...plan.packages]), 'apt-get install in the base root', o);
      await run(inRoot(tmp, ['apt-get', 'clean']), 'apt-get clean in the base root', o);
      await rm(join(tmp, 'etc/resolv.conf'), { force: true });
    }
    await cleanRoot(tmp);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    // the marker sits beside the root, so no image ships it
    await writeFile(`${dir}.done`, canonicalJson({ debootstrap: plan }) + '\n');
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
}

/** What a root must not carry: device nodes (sandboxes and engines provide /dev), apt's package lists (refetched on demand). */
async function cleanRoot(root: string): Promise<void> {
  for (const d of ['dev', 'var/lib/apt/lists', 'var/cache/apt/archives']) {
    const p = join(root, d);
    for (const n of await readdir(p).catch(() => [] as string[])) if (n !== 'partial' && n !== 'lock') await rm(join(p, n), { recursive: true, force: true });
  }
}

async function unpackOci(image: string, isLayout: boolean, tag: string | undefined, dir: string, o: MakeRootOptions): Promise<void> {
  if (!which('umoci')) throw missingTool('umoci', 'apt install umoci');
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    let layout = image;
    let ref = tag;
    if (!isLayout) {
      // umoci reads layouts only, and (in some versions) no zstd layers: skopeo converts and recompresses as gzip
      // (some skopeo versions keep zstd layers under --dest-decompress)
      if (!which('skopeo')) throw missingTool('skopeo', 'apt install skopeo');
      layout = join(tmp, 'layout');
      ref = 'rocmflow';
      await run(['skopeo', 'copy', '-q', '--dest-compress', '--dest-compress-format', 'gzip', `oci-archive:${image}${tag ? `:${tag}` : ''}`, `oci:${layout}:${ref}`], `skopeo copy ${basename(image)}`, o);
    } else if (!ref) {
      const index = JSON.parse(await readFile(join(image, 'index.json'), 'utf8')) as { manifests?: { annotations?: Record<string, string> }[] };
      const names = (index.manifests ?? []).map((m) => m.annotations?.['org.opencontainers.image.ref.name']).filter((n): n is string => !!n);
      if (names.length !== 1) throw new RocmflowError('E_BASE_ROOT', `tasks.base-root.source: ${image} holds ${names.length} tagged images (${names.join(', ')}): name one with "image"`, { exitCode: 2 });
      ref = names[0];
    }
    await run(['umoci', 'unpack', '--image', `${layout}:${ref}`, join(tmp, 'bundle')], `umoci unpack ${basename(image)}`, o);
    const rootfs = join(tmp, 'bundle', 'rootfs');
    await requireRootDir(rootfs, `tasks.base-root.source.oci (${image})`);
    await cleanRoot(rootfs);
    await rm(dir, { recursive: true, force: true });
    await rename(rootfs, dir);
    await writeFile(`${dir}.done`, canonicalJson({ oci: image, image: tag ?? null }) + '\n');
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  }
}
