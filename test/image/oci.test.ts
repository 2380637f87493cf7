import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runtimeLabels, writeOciImage, type OciImageOptions } from '../../src/image/oci.js';
import { snapshot, type SnapshotInfo } from '../../src/image/snapshot.js';
import { describeTree, makeTree, sh, tempDir } from './fixtures.js';

const skopeo = (...args: string[]) => JSON.parse(sh('skopeo', ['--insecure-policy', ...args]));

describe('OCI images', () => {
  let d: string;
  let rocm: string;
  let app: string;
  let snap: SnapshotInfo;
  /** An image of the ROCm snapshot (as /opt/rocm) plus a llama layer built from an entry list. */
  const image = (compression: 'zstd' | 'gzip', out: string, extra: Partial<OciImageOptions> = {}): OciImageOptions => ({
    layers: [
      { from: join(d, 'rocm-rootfs'), compression, comment: 'rocm' },
      {
        from: [
          { path: 'opt/llama/bin/llama-server', source: join(app, 'llama-server') },
          { path: 'opt/llama/bin/libggml.so', source: join(app, 'libggml.so') },
          { path: 'models', directory: true, mode: 0o755 },
          { path: 'usr/bin/llama', symlink: '/opt/llama/bin/llama-server' },
        ],
        compression,
        comment: 'llama.cpp',
      },
    ],
    config: {
      entrypoint: ['/opt/llama/bin/llama-server'],
      cmd: ['--host', '0.0.0.0', '--port', '8080'],
      env: { PATH: '/opt/llama/bin:/usr/bin', HIP_VISIBLE_DEVICES: '0' },
      workingDir: '/opt/llama',
      exposedPorts: ['8080/tcp'],
      labels: runtimeLabels({ devices: ['/dev/kfd', '/dev/dri'], env: { HIP_VISIBLE_DEVICES: '0' }, title: 'rocmflow minimal', version: '7.13.0' }),
    },
    ref: 'minimal',
    ociDir: join(out, 'oci'),
    ociArchive: join(out, 'image.oci.tar'),
    dockerArchive: join(out, 'image.docker.tar'),
    repoTag: 'rocmflow/minimal:latest',
    ...extra,
  });

  beforeAll(async () => {
    d = tempDir();
    // the ROCm tree lives at /opt/rocm inside the image
    rocm = makeTree(join(d, 'rocm-rootfs', 'opt', 'rocm'));
    app = join(d, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'llama-server'), '#!/bin/sh\necho llama\n');
    chmodSync(join(app, 'llama-server'), 0o755);
    writeFileSync(join(app, 'libggml.so'), Buffer.alloc(200_000, 1));
    snap = await snapshot({ source: join(d, 'rocm-rootfs'), out: join(d, 'rocm.tar.zst') });
  });

  it('writes a layout, an oci-archive and a docker-archive that skopeo accepts, with entrypoint, env and labels', async () => {
    const out = join(d, 'zstd');
    const img = await writeOciImage(image('zstd', out));
    // the snapshot and the layer built from the same tree are the same blob
    expect(img.layers[0]!.digest).toBe(snap.digest);
    expect(img.layers[0]!.diffId).toBe(snap.diffId);

    for (const ref of [`oci:${out}/oci:minimal`, `oci-archive:${out}/image.oci.tar:minimal`]) {
      const raw = skopeo('inspect', '--raw', ref);
      expect(raw.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+zstd', 'application/vnd.oci.image.layer.v1.tar+zstd']);
      const info = skopeo('inspect', ref);
      expect(info.Digest).toBe(img.manifestDigest);
      expect(info.Layers).toEqual(img.layers.map((l) => l.digest));
      expect(info.Env).toEqual(['PATH=/opt/llama/bin:/usr/bin', 'HIP_VISIBLE_DEVICES=0']);
      expect(info.Labels['org.rocmflow.devices']).toBe('/dev/kfd,/dev/dri');
      expect(info.Architecture).toBe('amd64');
      const config = skopeo('inspect', '--config', ref);
      expect(config.config.Entrypoint).toEqual(['/opt/llama/bin/llama-server']);
      expect(config.config.WorkingDir).toBe('/opt/llama');
      expect(config.rootfs.diff_ids).toEqual(img.layers.map((l) => l.diffId));
      expect(config.history.map((h: { created_by: string }) => h.created_by)).toEqual(['rocm', 'llama.cpp']);
    }
    const docker = skopeo('inspect', `docker-archive:${out}/image.docker.tar`);
    // docker-archive lists layers by diff_id (uncompressed digests)
    expect(docker.Layers).toEqual(img.layers.map((l) => l.diffId));
    expect(docker.Env).toContain('HIP_VISIBLE_DEVICES=0');
    const manifest = JSON.parse(sh('tar', ['-xOf', `${out}/image.docker.tar`, 'manifest.json']));
    expect(manifest[0].RepoTags).toEqual(['rocmflow/minimal:latest']);
    expect(manifest[0].Config).toBe(`${img.imageId.slice(7)}.json`);
  });

  it('a gzip image unpacks with umoci to exactly the source trees', async () => {
    const out = join(d, 'gzip');
    const img = await writeOciImage(image('gzip', out));
    expect(img.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip')).toBe(true);
    const bundle = join(out, 'bundle');
    sh('umoci', ['unpack', '--image', `${out}/oci:minimal`, bundle]);
    expect(describeTree(join(bundle, 'rootfs', 'opt', 'rocm'))).toBe(describeTree(rocm));
    expect(sh('diff', ['-r', '--no-dereference', app, join(bundle, 'rootfs', 'opt', 'llama', 'bin')])).toBe('');
    expect(sh('readlink', [join(bundle, 'rootfs', 'usr', 'bin', 'llama')]).trim()).toBe('/opt/llama/bin/llama-server');
    const runtime = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    expect(runtime.process.args).toEqual(['/opt/llama/bin/llama-server', '--host', '0.0.0.0', '--port', '8080']);
    expect(runtime.process.env).toContain('HIP_VISIBLE_DEVICES=0');
  });

  it('the docker-archive of a zstd image carries gzip layers that load (skopeo copy) and unpack to the same trees', async () => {
    const out = join(d, 'docker');
    await writeOciImage(image('zstd', out, { ociDir: undefined, ociArchive: undefined }));
    const listing = sh('tar', ['-tvf', `${out}/image.docker.tar`]);
    expect(listing).toMatch(/\.tar\.gz\n/);
    sh('skopeo', ['--insecure-policy', 'copy', '-q', `docker-archive:${out}/image.docker.tar`, `oci:${out}/loaded:x`]);
    sh('umoci', ['unpack', '--image', `${out}/loaded:x`, join(out, 'bundle')]);
    expect(describeTree(join(out, 'bundle', 'rootfs', 'opt', 'rocm'))).toBe(describeTree(rocm));
  });

  it('is deterministic: same inputs, same digests and byte-identical archives; the created time changes them', async () => {
    const a = await writeOciImage(image('zstd', join(d, 'det-a'), { layers: [{ blob: snap.archive, diffId: snap.diffId }, image('zstd', '').layers[1]!] }));
    const b = await writeOciImage(image('zstd', join(d, 'det-b'), { layers: [{ blob: snap.archive }, image('zstd', '').layers[1]!] }));
    expect(b.manifestDigest).toBe(a.manifestDigest);
    for (const f of ['image.oci.tar', 'image.docker.tar'])
      expect(readFileSync(join(d, 'det-b', f)).equals(readFileSync(join(d, 'det-a', f)))).toBe(true);
    const c = await writeOciImage(image('zstd', join(d, 'det-c'), { created: 1_700_000_000, dockerArchive: undefined }));
    expect(c.manifestDigest).not.toBe(a.manifestDigest);
    expect(skopeo('inspect', `oci:${d}/det-c/oci:minimal`).Created).toBe('2023-11-14T22:13:20Z');
  });

  it("a blob's recorded diff_id is taken only when the blob hashes to the recorded digest", async () => {
    const wrong = `sha256:${'1'.repeat(64)}`;
    // the record matches the blob: its diff_id is used as it stands (here a wrong one, to show nothing was recomputed)
    const taken = await writeOciImage(image('zstd', join(d, 'rec-a'), { layers: [{ blob: snap.archive, recorded: { digest: snap.digest, diffId: wrong, uncompressedSize: 5 } }], ociArchive: undefined, dockerArchive: undefined }));
    expect(taken.layers[0]).toMatchObject({ digest: snap.digest, diffId: wrong, uncompressedSize: 5 });
    // a record for other bytes: the blob is decompressed and its own diff_id computed
    const other = await writeOciImage(image('zstd', join(d, 'rec-b'), { layers: [{ blob: snap.archive, recorded: { digest: wrong, diffId: wrong, uncompressedSize: 5 } }], ociArchive: undefined, dockerArchive: undefined }));
    expect(other.layers[0]).toMatchObject({ digest: snap.digest, diffId: snap.diffId, uncompressedSize: snap.uncompressedSize });
  });

  it('refuses bad input with clear errors', async () => {
    const out = join(d, 'bad');
    // a ref may be a whole reference (localhost/rocmflow/llama-cpu:minimal), but not any string
    await expect(writeOciImage(image('zstd', out, { ref: 'no spaces' }))).rejects.toMatchObject({ code: 'E_BAD_REF' });
    await expect(writeOciImage(image('zstd', out, { ref: '-leading-dash' }))).rejects.toMatchObject({ code: 'E_BAD_REF' });
    await expect(writeOciImage(image('zstd', out, { repoTag: 'Upper/Case' }))).rejects.toMatchObject({ code: 'E_BAD_REF' });
    await expect(writeOciImage(image('zstd', out, { layers: [{ blob: snap.archive, diffId: `sha256:${'0'.repeat(64)}` }] }))).rejects.toMatchObject({
      code: 'E_LAYER_MISMATCH',
    });
    await expect(writeOciImage(image('zstd', out, { layers: [{ blob: join(d, 'missing.tar.zst') }] }))).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    mkdirSync(join(d, 'busy'));
    writeFileSync(join(d, 'busy', 'precious'), '');
    await expect(writeOciImage(image('zstd', out, { ociDir: join(d, 'busy') }))).rejects.toMatchObject({ code: 'E_DEST_NOT_EMPTY' });
    expect(sh('ls', [join(d, 'busy')])).toBe('precious\n');
  });
});
