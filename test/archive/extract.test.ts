import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectTopDir, extract } from '../../src/archive/extract.js';
import { RocmflowError } from '../../src/errors.js';
import { rawTar, rawTarGz, type RawMember } from '../fetch/helpers/tar-writer.js';
import { MTIME, makeTheRockTree, tarTree } from '../fetch/helpers/therock-tree.js';

let tmp: string;
let tree: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'rocmflow-extract-'));
  tree = join(tmp, 'tree');
  makeTheRockTree(tree);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function checkTheRockLayout(dest: string) {
  const lib = join(dest, 'lib/libamdhip64.so.7');
  expect(readFileSync(lib).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
  expect(readFileSync(lib)).toEqual(readFileSync(join(tree, 'lib/libamdhip64.so.7')));
  expect(readlinkSync(join(dest, 'llvm'))).toBe('lib/llvm');
  expect(readlinkSync(join(dest, 'amdgcn'))).toBe('lib/llvm/amdgcn');
  expect(readlinkSync(join(dest, 'lib/libamdhip64.so'))).toBe('libamdhip64.so.7');
  // through the links, as the loader and clang will use them
  expect(readFileSync(join(dest, 'llvm/bin/clang'), 'utf8')).toContain('AMD clang');
  expect(existsSync(join(dest, 'amdgcn/bitcode/ocml.bc'))).toBe(true);
  expect(statSync(join(dest, 'lib/llvm/bin/clang')).mode & 0o777).toBe(0o755);
  expect(statSync(join(dest, 'bin/rocminfo')).mode & 0o777).toBe(0o750);
  expect(Math.round(statSync(join(dest, 'lib/rocblas/library/TensileLibrary_lazy_gfx1151.dat')).mtimeMs / 1000)).toBe(MTIME);
  expect(Math.round(statSync(join(dest, 'lib/rocblas')).mtimeMs / 1000)).toBe(MTIME);
  expect(Math.round(lstatSync(join(dest, 'llvm')).mtimeMs / 1000)).toBe(MTIME);
  const a = statSync(join(dest, 'lib/rocblas/library/Kernels.so-000-gfx1151.hsaco'));
  const b = statSync(join(dest, 'lib/rocblas/library/Kernels.so-000-gfx1151.hardlink.hsaco'));
  expect(a.ino).toBe(b.ino);
  expect(existsSync(join(dest, 'share/therock/therock_manifest.json'))).toBe(true);
  expect(existsSync(join(dest, '.kpack/blas_lib_gfx1151.kpack'))).toBe(true);
}

describe('extract: TheRock tarballs made by tar', () => {
  for (const compression of ['gz', 'zst', 'xz', 'none'] as const) {
    it(`${compression}, no top directory`, async () => {
      const archive = tarTree(tree, join(tmp, `flat.${compression}.tar`), { compression });
      const dest = join(tmp, `out-flat-${compression}`);
      const progress: number[] = [];
      const r = await extract({ archive, dest, onProgress: (n) => progress.push(n) });
      expect(r.topDir).toBeNull();
      expect(r.compression).toBe(compression === 'gz' ? 'gzip' : compression === 'zst' ? 'zstd' : compression);
      expect(progress.at(-1)).toBe(statSync(archive).size);
      expect(r.symlinks).toBe(3);
      expect(r.hardlinks).toBe(1);
      checkTheRockLayout(dest);
      // no staging directory left next to it
      expect(readdirSync(tmp).filter((f) => f.includes('.extract-'))).toEqual([]);
    });
  }

  it('strips a single top-level directory (gz and zst)', async () => {
    for (const compression of ['gz', 'zst'] as const) {
      const archive = tarTree(tree, join(tmp, `top.${compression}.tar`), { compression, topDir: 'therock-7.13.0a20260430' });
      const listing = execFileSync('tar', ['-tf', archive], { encoding: 'utf8' });
      expect(listing.split('\n')[0]).toMatch(/^therock-7\.13\.0a20260430\/?/);
      const dest = join(tmp, `out-top-${compression}`);
      const r = await extract({ archive, dest });
      expect(r.topDir).toBe('therock-7.13.0a20260430');
      checkTheRockLayout(dest);
    }
  });

  it('keeps the top directory when told not to strip', async () => {
    const archive = join(tmp, 'top.gz.tar');
    const dest = join(tmp, 'out-keep');
    const r = await extract({ archive, dest, stripTopDir: false });
    expect(r.topDir).toBeNull();
    expect(readdirSync(dest)).toEqual(['therock-7.13.0a20260430']);
  });

  it('refuses a non-empty destination', async () => {
    const dest = join(tmp, 'nonempty');
    mkdirSync(dest);
    writeFileSync(join(dest, 'x'), 'x');
    await expect(extract({ archive: join(tmp, 'flat.gz.tar'), dest })).rejects.toMatchObject({ code: 'E_DEST_NOT_EMPTY' });
  });

  it('reports a truncated or corrupt archive', async () => {
    const full = readFileSync(join(tmp, 'flat.gz.tar'));
    const cut = join(tmp, 'cut.tar.gz');
    writeFileSync(cut, full.subarray(0, Math.floor(full.length / 2)));
    await expect(extract({ archive: cut, dest: join(tmp, 'out-cut') })).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE', message: expect.stringContaining('cut.tar.gz') });
    expect(existsSync(join(tmp, 'out-cut'))).toBe(false);
    const zfull = readFileSync(join(tmp, 'flat.zst.tar'));
    const zcut = join(tmp, 'cut.tar.zst');
    writeFileSync(zcut, zfull.subarray(0, Math.floor(zfull.length / 2)));
    await expect(extract({ archive: zcut, dest: join(tmp, 'out-zcut') })).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE' });
    const junk = join(tmp, 'junk.tar');
    writeFileSync(junk, Buffer.alloc(2048, 7));
    await expect(extract({ archive: junk, dest: join(tmp, 'out-junk') })).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE', message: expect.stringContaining('junk.tar') });
  });
});

describe('extract: hostile archives are refused with nothing written', () => {
  const hostile: [string, RawMember[], RegExp][] = [
    ['a ../ path', [{ path: 'lib/ok.txt', data: 'ok' }, { path: '../evil', data: 'pwned' }], /"\.\.\/evil" has a "\.\." component/],
    ['a nested ../ path', [{ path: 'lib/../../evil', data: 'pwned' }], /"lib\/\.\.\/\.\.\/evil"/],
    ['an absolute path', [{ path: '/tmp/rocmflow-evil-abs', data: 'pwned' }], /is an absolute path/],
    ['a symlink escaping the prefix', [{ path: 'lib', type: 'dir' }, { path: 'lib/etc', type: 'symlink', linkname: '../../etc' }], /"lib\/etc" is a symlink to "\.\.\/\.\.\/etc", which points outside/],
    ['an absolute symlink', [{ path: 'passwd', type: 'symlink', linkname: '/etc/passwd' }], /absolute path "\/etc\/passwd"/],
    [
      'a symlink that escapes only through another link',
      [{ path: 'deep', type: 'dir' }, { path: 'x', type: 'symlink', linkname: 'deep/s/../..' }, { path: 'deep/s', type: 'symlink', linkname: '.' }],
      /"x" is a symlink/,
    ],
    ['a member written through a symlink', [{ path: 'out', type: 'symlink', linkname: '.' }, { path: 'out/file', data: 'x' }], /is under the symlink "out"/],
    ['a device node', [{ path: 'dev/null', type: 'char' }], /"dev\/null" is a char device node/],
    ['a fifo', [{ path: 'pipe', type: 'fifo' }], /is a fifo/],
    ['a hardlink to an unknown file', [{ path: 'shadow', type: 'hardlink', linkname: 'etc/shadow' }], /hardlink to "etc\/shadow", which is not a file extracted before it/],
    ['a hardlink outside', [{ path: 'shadow', type: 'hardlink', linkname: '../../etc/shadow' }], /hardlink to "\.\.\/\.\.\/etc\/shadow"/],
  ];

  for (const [what, members, message] of hostile) {
    it(`refuses ${what}`, async () => {
      const box = mkdtempSync(join(tmp, 'box-'));
      const archive = join(box, 'bad.tar.gz');
      writeFileSync(archive, rawTarGz([{ path: 'bin/fine', data: 'fine' }, ...members]));
      const dest = join(box, 'prefix', 'rocm');
      const err = await extract({ archive, dest }).catch((e) => e);
      expect(err).toBeInstanceOf(RocmflowError);
      expect(err.code).toBe('E_UNSAFE_ARCHIVE');
      expect(err.message).toMatch(message);
      expect(err.message).toContain(archive);
      // nothing outside the prefix, and no partial extraction
      expect(readdirSync(box).sort()).toEqual(['bad.tar.gz', 'prefix']);
      expect(readdirSync(join(box, 'prefix'))).toEqual([]);
      expect(existsSync('/tmp/rocmflow-evil-abs')).toBe(false);
    });
  }

  it('maps absolute symlinks into the prefix when asked', async () => {
    const archive = join(tmp, 'abs.tar');
    writeFileSync(archive, rawTar([
      { path: 'top/lib/libx.so.1', data: 'x' },
      { path: 'top/lib/libx.so', type: 'symlink', linkname: '/opt/rocm/lib/libx.so.1' },
      { path: 'top/llvm', type: 'symlink', linkname: '/opt/rocm/lib' },
    ]));
    const dest = join(tmp, 'out-abs');
    await extract({ archive, dest, absoluteLinkRoots: ['/opt/rocm'] });
    expect(readlinkSync(join(dest, 'lib/libx.so'))).toBe('../lib/libx.so.1');
    expect(readlinkSync(join(dest, 'llvm'))).toBe('lib');
    expect(readFileSync(join(dest, 'lib/libx.so'), 'utf8')).toBe('x');
  });

  it('refuses a link that stays in the archive but leaves the stripped top directory', async () => {
    const box = mkdtempSync(join(tmp, 'box-'));
    const archive = join(box, 'sneaky.tar');
    writeFileSync(archive, rawTar([{ path: 'top/lib/a', data: 'a' }, { path: 'top/up', type: 'symlink', linkname: '../top/lib' }]));
    await expect(extract({ archive, dest: join(box, 'rocm') })).rejects.toMatchObject({ code: 'E_UNSAFE_ARCHIVE' });
    expect(readdirSync(box)).toEqual(['sneaky.tar']);
    // without stripping the same link is inside the prefix
    await extract({ archive, dest: join(box, 'kept'), stripTopDir: false });
    expect(readFileSync(join(box, 'kept/top/up/a'), 'utf8')).toBe('a');
  });
});

describe('detectTopDir', () => {
  it('finds one wrapping directory and nothing else', () => {
    expect(detectTopDir(['rocm-7', 'rocm-7/lib', 'rocm-7/lib/x.so'])).toBe('rocm-7');
    expect(detectTopDir(['bin/x', 'lib/y'])).toBeNull();
    expect(detectTopDir(['only-file'])).toBeNull();
    // a lone lib/ is content, not a wrapper
    expect(detectTopDir(['lib/libamdhip64.so.7'])).toBeNull();
  });
});
