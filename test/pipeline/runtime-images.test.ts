/**
 * writeRuntimeImages on small real trees: the same inputs give the same
 * digests whether the trees came fresh from a build or restored from the
 * cache (which takes write bits off); /tmp stays world-writable; the base
 * image is the full one without llama.cpp and shares its layers (hard
 * links, as the snapshot is in both); names and annotations follow the
 * provenance.
 */
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { imageMode, imageProvenance, writeRuntimeImages } from '../../src/pipeline/images.js';
import { snapshot } from '../../src/image/snapshot.js';
import { tempDir } from '../image/fixtures.js';

function trees(dir: string) {
  const rootfs = join(dir, 'rootfs');
  const llama = join(dir, 'llama');
  for (const d of ['opt/llama/bin', 'tmp', 'usr/lib']) mkdirSync(join(rootfs, d), { recursive: true });
  mkdirSync(join(llama, 'bin'), { recursive: true });
  for (const base of [join(rootfs, 'opt/llama'), llama]) {
    writeFileSync(join(base, 'bin/llama-server'), '#!/bin/sh\necho server\n');
    chmodSync(join(base, 'bin/llama-server'), 0o755);
    writeFileSync(join(base, 'bin/libllama.so'), Buffer.alloc(4096, 7));
    chmodSync(join(base, 'bin/libllama.so'), 0o644);
  }
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  writeFileSync(join(rootfs, 'usr/lib/libc.so.6'), Buffer.alloc(2048, 3));
  const lib = join(dir, 'libc.so.6');
  writeFileSync(lib, Buffer.alloc(2048, 3));
  return {
    rootfs,
    full: [
      { path: 'usr/lib/libc.so.6', source: lib },
      { path: 'opt/llama/bin/llama-server', source: join(llama, 'bin/llama-server') },
      { path: 'opt/llama/bin/libllama.so', source: join(llama, 'bin/libllama.so') },
    ],
    /** What restoring from the cache does to the files. */
    readOnly() {
      for (const f of [join(rootfs, 'opt/llama/bin/llama-server'), join(llama, 'bin/llama-server')]) chmodSync(f, 0o555);
      for (const f of [join(rootfs, 'opt/llama/bin/libllama.so'), join(llama, 'bin/libllama.so'), join(rootfs, 'usr/lib/libc.so.6'), lib]) chmodSync(f, 0o444);
    },
  };
}

const provenance = imageProvenance({
  build: { commit: 'de3ff815ea7d559ee917f063901b8986f038abc6', commitTime: 1_700_000_000, describe: 'b7000', source: { kind: 'git', url: 'https://github.com/ggml-org/llama.cpp' } },
  runtime: { version: '7.13.0a20260430' },
  family: 'rocm',
  env: {},
});

describe('writeRuntimeImages', () => {
  it('names the version after llama.cpp and the GPU runtime, and takes created from SOURCE_DATE_EPOCH first', () => {
    expect(provenance).toEqual({ revision: 'de3ff815ea7d559ee917f063901b8986f038abc6', source: 'https://github.com/ggml-org/llama.cpp', version: 'b7000-rocm7.13.0a20260430', created: 1_700_000_000 });
    const build = { commit: null, commitTime: null, describe: 'local tree', source: { kind: 'path', path: '/src/llama.cpp' } };
    expect(imageProvenance({ build, family: 'cpu', env: { SOURCE_DATE_EPOCH: '1234' } })).toEqual({ revision: null, source: null, version: 'local', created: 1234 });
    expect(() => imageProvenance({ build, family: 'cpu', env: { SOURCE_DATE_EPOCH: 'yesterday' } })).toThrow(/SOURCE_DATE_EPOCH/);
  });

  it('ignores write bits (a cache restore takes them off) but keeps /tmp world-writable', () => {
    expect(imageMode({ path: 'a', type: 'file', mode: 0o444, size: 1 }).mode).toBe(0o644);
    expect(imageMode({ path: 'a', type: 'file', mode: 0o775, size: 1 }).mode).toBe(0o755);
    expect(imageMode({ path: 'tmp', type: 'dir', mode: 0o1777, size: 0 }).mode).toBe(0o1777);
    expect(imageMode({ path: 'tmp', type: 'dir', mode: 0o1555, size: 0 }).mode).toBe(0o1777);
  });

  it('gives the same images for a fresh and a restored tree; the base is the full image without llama.cpp', async () => {
    const dir = tempDir();
    const t = trees(dir);
    const write = (out: string) => {
      mkdirSync(join(dir, out));
      return writeRuntimeImages({ rootfs: t.rootfs, full: t.full, outDir: join(dir, out), target: 'gfx1151', env: { HIP_VISIBLE_DEVICES: '0' }, devices: ['/dev/kfd'], provenance, rocmflowVersion: '0.1.0' });
    };
    const fresh = await write('a');
    t.readOnly();
    const restored = await write('b');
    for (const k of ['minimal', 'full', 'base'] as const) expect(restored[k].manifestDigest).toBe(fresh[k].manifestDigest);
    expect(fresh.minimal.name).toBe('localhost/rocmflow/llama-gfx1151:minimal');
    expect(fresh.base.layers.map((l) => l.digest)).toEqual(fresh.full.layers.slice(0, -1).map((l) => l.digest));
    // /tmp in the minimal image: drwxrwxrwt
    const listing = execFileSync('sh', ['-c', `tar -xOf ${join(dir, 'a/minimal.oci.tar')} blobs/sha256/${fresh.minimal.layers[0]!.digest.slice(7)} | zstd -dc | tar -tvf -`], { encoding: 'utf8' });
    expect(listing).toMatch(/^drwxrwxrwt .* tmp\/$/m);
    expect(listing).toMatch(/^-rwxr-xr-x .* opt\/llama\/bin\/llama-server$/m);
    expect(fresh.full.ociDir).toBe(join(dir, 'a/full.oci'));
    expect(fresh.base.ociDir).toBe(join(dir, 'a/base.oci'));
    // the base links the full image's lower layers: the same inodes
    for (const l of fresh.base.layers) expect(statSync(l.path).ino).toBe(statSync(join(dir, 'a/full.oci/blobs/sha256', l.digest.slice(7))).ino);
    const index = JSON.parse(readFileSync(join(dir, 'a/full.oci/index.json'), 'utf8'));
    expect(index.manifests[0].annotations).toMatchObject({
      'org.opencontainers.image.ref.name': 'localhost/rocmflow/llama-gfx1151:full',
      'org.opencontainers.image.version': 'b7000-rocm7.13.0a20260430',
      'org.opencontainers.image.created': '2023-11-14T22:13:20Z',
      'org.rocmflow.target': 'gfx1151',
    });
  });

  it('takes snapshot-rocm\'s archive as the full and base images\' GPU runtime layer, same bytes, when its paths are under opt/rocm', async () => {
    const dir = tempDir();
    const t = trees(dir);
    const rocm = join(dir, 'rocm-tree');
    mkdirSync(join(rocm, 'lib'), { recursive: true });
    writeFileSync(join(rocm, 'lib/libamdhip64.so.7'), Buffer.alloc(8192, 5));
    const entries = [...t.full, { path: 'opt/rocm/lib/libamdhip64.so.7', source: join(rocm, 'lib/libamdhip64.so.7') }];
    const prefixed = await snapshot({ source: rocm, out: join(dir, 'snap/rocm.tar.zst'), prefix: 'opt/rocm' });
    const plain = await snapshot({ source: rocm, out: join(dir, 'plain/rocm.tar.zst') });
    const write = (out: string, rocmSnapshot: string) => {
      mkdirSync(join(dir, out));
      return writeRuntimeImages({ rootfs: t.rootfs, full: entries, rocmSnapshot, outDir: join(dir, out), target: 'gfx1151', env: {}, devices: [], provenance, rocmflowVersion: '0.1.0' });
    };
    const reused = await write('r', prefixed.archive);
    expect(reused.reusedSnapshot).toBe(true);
    expect(Object.keys(reused.timings)).toEqual(['minimal', 'full', 'base']);
    const layer = reused.full.layers.find((l) => l.digest === prefixed.digest)!;
    expect(layer).toMatchObject({ digest: prefixed.digest, diffId: prefixed.diffId, size: prefixed.size });
    expect(reused.base.layers.map((l) => l.digest)).toContain(prefixed.digest);
    // the snapshot is hard-linked into both layouts, not copied
    for (const img of ['full', 'base']) expect(statSync(join(dir, `r/${img}.oci/blobs/sha256`, prefixed.digest.slice(7))).ino).toBe(statSync(prefixed.archive).ino);
    // skopeo reads both layouts
    const inspected = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${join(dir, 'r/full.oci')}`], { encoding: 'utf8' }));
    expect(inspected.Layers).toContain(prefixed.digest);
    // a snapshot whose paths are not the image's is not taken: the tree is archived again
    const again = await write('p', plain.archive);
    expect(again.reusedSnapshot).toBe(false);
    expect(again.full.layers.map((l) => l.digest)).not.toContain(plain.digest);
  });
});
