/**
 * Unpacking images made elsewhere (rocmflow verify): real OCI archives,
 * layouts and docker archives written by the image writer, unpacked into
 * roots, with whiteouts applied; tampered blobs, wrong diff_ids, digests
 * that climb out of blobs/, and a layer that writes under a lower layer's
 * symlink are refused with the image and layer named, and nothing is
 * written outside the destination.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeOciImage } from '../../src/image/oci.js';
import type { TarSource } from '../../src/image/tar-entries.js';
import { unpackImage } from '../../src/image/unpack.js';
import { sh, tempDir } from './fixtures.js';

let d: string;
let src: string;

/** Two layers: a base (bin/tool, etc/old.conf, lib -> usr/lib, an absolute link) and an upper one with whiteouts. */
async function image(out: string, upper: TarSource[]) {
  mkdirSync(out, { recursive: true });
  return writeOciImage({
    layers: [
      {
        from: [
          { path: 'usr/lib/libx.so', source: join(src, 'libx') },
          { path: 'lib', symlink: 'usr/lib' },
          { path: 'usr/bin/tool', source: join(src, 'tool') },
          { path: 'usr/bin/cc', symlink: '/usr/bin/tool' },
          { path: 'etc/old.conf', source: join(src, 'conf') },
          { path: 'var/cache/a', source: join(src, 'conf') },
        ],
        comment: 'base',
      },
      { from: upper, compression: 'gzip', comment: 'upper' },
    ],
    config: { env: { PATH: '/usr/bin', A: 'b=c' }, entrypoint: ['/usr/bin/tool'], labels: { 'org.rocmflow.target': 'gfx1151' } },
    ref: 'x',
    ociDir: join(out, 'layout'),
    ociArchive: join(out, 'image.oci.tar'),
    dockerArchive: join(out, 'image.docker.tar'),
    repoTag: 'rocmflow/x:latest',
  });
}

beforeAll(() => {
  d = tempDir();
  src = join(d, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'libx'), 'lib x');
  writeFileSync(join(src, 'tool'), '#!/bin/sh\necho tool\n');
  writeFileSync(join(src, 'conf'), 'old');
  writeFileSync(join(src, 'new'), 'new');
  writeFileSync(join(src, 'empty'), '');
});

describe('unpackImage', () => {
  let out: string;
  beforeAll(async () => {
    out = join(d, 'good');
    await image(out, [
      { path: 'etc/.wh.old.conf', source: join(src, 'empty') },
      { path: 'var/cache/.wh..wh..opq', source: join(src, 'empty') },
      { path: 'var/cache/b', source: join(src, 'new') },
      { path: 'usr/bin/tool', source: join(src, 'new') },
    ]);
  });

  for (const form of ['image.oci.tar', 'layout', 'image.docker.tar'] as const) {
    it(`unpacks ${form} with both layers, whiteouts applied and links kept inside`, async () => {
      const dest = join(d, `unpacked-${form}`);
      const r = await unpackImage(join(out, form), { dest });
      expect(r.kind).toBe(form === 'layout' ? 'oci-layout' : form === 'image.oci.tar' ? 'oci-archive' : 'docker-archive');
      expect(r.layers).toBe(2);
      expect(r.config.env).toEqual({ PATH: '/usr/bin', A: 'b=c' });
      expect(r.config.labels['org.rocmflow.target']).toBe('gfx1151');
      expect(r.config.entrypoint).toEqual(['/usr/bin/tool']);
      const root = r.root;
      expect(readFileSync(join(root, 'usr/lib/libx.so'), 'utf8')).toBe('lib x');
      expect(readFileSync(join(root, 'usr/bin/tool'), 'utf8')).toBe('new');
      expect(existsSync(join(root, 'etc/old.conf'))).toBe(false);
      expect(existsSync(join(root, 'etc/.wh.old.conf'))).toBe(false);
      expect(readdirSync(join(root, 'var/cache'))).toEqual(['b']);
      expect(readlinkSync(join(root, 'lib'))).toBe('usr/lib');
      // the absolute link points at the same place, relative to the root
      expect(lstatSync(join(root, 'usr/bin/cc')).isSymbolicLink()).toBe(true);
      expect(readlinkSync(join(root, 'usr/bin/cc'))).toBe('../../usr/bin/tool');
      // only the root is left in the destination
      expect(readdirSync(dest)).toEqual(['rootfs']);
    });
  }

  it('takes a root directory as is', async () => {
    const r = await unpackImage(join(d, 'unpacked-layout', 'rootfs'), { dest: join(d, 'unused') });
    expect(r.kind).toBe('root');
    expect(r.root).toBe(join(d, 'unpacked-layout', 'rootfs'));
    expect(existsSync(join(d, 'unused'))).toBe(false);
  });

  it('refuses a layout whose layer blob was changed, naming the layer', async () => {
    const bad = join(d, 'tampered');
    sh('cp', ['-a', join(out, 'layout'), bad]);
    const manifest = JSON.parse(readFileSync(join(bad, 'index.json'), 'utf8')).manifests[0].digest.slice(7);
    const layer = JSON.parse(readFileSync(join(bad, 'blobs/sha256', manifest), 'utf8')).layers[1].digest.slice(7);
    const blob = join(bad, 'blobs/sha256', layer);
    const bytes = readFileSync(blob);
    // the same gzip stream with a different mtime byte in its header: decompresses to the same tar, another digest
    bytes[4] = bytes[4]! ^ 1;
    writeFileSync(blob, bytes);
    await expect(unpackImage(bad, { dest: join(d, 'tampered-out') })).rejects.toThrow(/tampered \(layer 2 of 2\): content is sha256:[0-9a-f]+, the manifest says sha256:/);
  });

  it('refuses a config whose diff_id does not match the layer', async () => {
    const bad = join(d, 'diffid');
    sh('cp', ['-a', join(out, 'image.docker.tar'), join(d, 'diffid.tar')]);
    mkdirSync(bad);
    sh('tar', ['-xf', join(d, 'diffid.tar'), '-C', bad]);
    const m = JSON.parse(readFileSync(join(bad, 'manifest.json'), 'utf8'))[0];
    const config = JSON.parse(readFileSync(join(bad, m.Config), 'utf8'));
    config.rootfs.diff_ids[0] = `sha256:${'0'.repeat(64)}`;
    writeFileSync(join(bad, m.Config), JSON.stringify(config));
    await expect(unpackImage(bad, { dest: join(d, 'diffid-out') })).rejects.toThrow(/diffid \(layer 1 of 2\): uncompressed content is sha256:[0-9a-f]+, the config's diff_id is sha256:0000/);
  });

  it('refuses digests and layer paths that point out of the image', async () => {
    const bad = join(d, 'climb');
    sh('cp', ['-a', join(out, 'layout'), bad]);
    const index = JSON.parse(readFileSync(join(bad, 'index.json'), 'utf8'));
    index.manifests[0].digest = 'sha256:../../../../etc/passwd';
    writeFileSync(join(bad, 'index.json'), JSON.stringify(index));
    await expect(unpackImage(bad, { dest: join(d, 'climb-out') })).rejects.toThrow(/climb \(index.json\): "sha256:..\/..\/..\/..\/etc\/passwd" is not a sha256 digest/);

    const dock = join(d, 'climb-docker');
    mkdirSync(dock);
    sh('tar', ['-xf', join(out, 'image.docker.tar'), '-C', dock]);
    const m = JSON.parse(readFileSync(join(dock, 'manifest.json'), 'utf8'));
    m[0].Layers[0] = '../../outside.tar';
    writeFileSync(join(dock, 'manifest.json'), JSON.stringify(m));
    await expect(unpackImage(dock, { dest: join(d, 'climb-docker-out') })).rejects.toThrow(/layer 1 "..\/..\/outside.tar" is not a path inside the archive/);
  });

  it('odd shapes of manifest.json and index.json are one error naming the image, not a crash', async () => {
    const dock = join(d, 'odd-docker');
    mkdirSync(dock);
    sh('tar', ['-xf', join(out, 'image.docker.tar'), '-C', dock]);
    const cases: [string, RegExp][] = [
      ['{not json', /odd-docker \(manifest.json\): not JSON/],
      ['{"a":1}', /odd-docker \(manifest.json\): not a JSON list/],
      ['[null]', /odd-docker: manifest.json: an image entry is not an object/],
    ];
    for (const [i, [text, error]] of cases.entries()) {
      writeFileSync(join(dock, 'manifest.json'), text);
      await expect(unpackImage(dock, { dest: join(d, `odd-docker-out-${i}`) })).rejects.toThrow(error);
    }
    // RepoTags that is not a list: no image carries the tag
    writeFileSync(join(dock, 'manifest.json'), JSON.stringify([{ RepoTags: 'localhost/x:minimal-and-more', Config: 'c', Layers: [] }]));
    await expect(unpackImage(dock, { dest: join(d, 'odd-docker-out-tags'), ref: 'localhost/x:minimal' })).rejects.toThrow(/has no image tagged localhost\/x:minimal/);

    const oci = join(d, 'odd-oci');
    sh('cp', ['-a', join(out, 'layout'), oci]);
    const index = JSON.parse(readFileSync(join(oci, 'index.json'), 'utf8'));
    index.manifests.unshift(null);
    writeFileSync(join(oci, 'index.json'), JSON.stringify(index));
    await expect(unpackImage(oci, { dest: join(d, 'odd-oci-out'), ref: 'x' })).rejects.toThrow(/odd-oci: index.json: a manifest descriptor is not an object/);
  });

  it('refuses a layer that writes under a lower layer\'s symlink, and writes nothing through it', async () => {
    const out2 = join(d, 'under-link');
    await image(out2, [{ path: 'lib/evil.so', source: join(src, 'new') }]);
    const dest = join(d, 'under-link-out');
    await expect(unpackImage(join(out2, 'image.oci.tar'), { dest })).rejects.toThrow(/layer 2 of 2\): "lib\/" is written under a lower layer's symlink "lib"/);
    expect(existsSync(join(dest, 'rootfs/usr/lib/evil.so'))).toBe(false);
  });

  it('stops a layer whose files would come to more than the space it may use, before writing them', async () => {
    const dest = join(d, 'too-large-out');
    await expect(unpackImage(join(out, 'layout'), { dest, maxBytes: 10 })).rejects.toThrow(/\(layer 1 of 2\): .*its files come to more than 10 bytes/);
    expect(existsSync(join(dest, 'layer-1'))).toBe(false);
  });

  it('refuses a destination that is not empty', async () => {
    const dest = join(d, 'full-dest');
    mkdirSync(dest);
    writeFileSync(join(dest, 'x'), 'x');
    await expect(unpackImage(join(out, 'image.oci.tar'), { dest })).rejects.toThrow(/is not empty/);
    expect(readdirSync(dest)).toEqual(['x']);
  });
});
