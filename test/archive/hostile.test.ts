/**
 * One table of hostile archives for the one extractor (fetch-rocm, snapshot
 * restore): each is refused with one line naming the archive and the entry,
 * and nothing is written outside the destination (nor left inside it).
 * Then truncation at every header offset, a generated property over random
 * member lists, and the snapshot-restore case through the real CLI.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { extract, extractMember } from '../../src/archive/extract.js';
import { RocmflowError } from '../../src/errors.js';
import { rocmflow } from '../helpers/cli.js';
import { rawTar, rawTarGz, type RawMember } from '../fetch/helpers/tar-writer.js';

const box = () => mkdtempSync(join(tmpdir(), 'rocmflow-hostile-'));

/** An outside directory and file whose modes and contents must not change. */
function outside(): { dir: string; file: string; check(): void } {
  const dir = box();
  const file = join(dir, 'victim');
  writeFileSync(file, 'victim');
  chmodSync(file, 0o600);
  chmodSync(dir, 0o700);
  utimesSync(dir, 1_600_000_000, 1_600_000_000);
  return {
    dir, file,
    check() {
      expect(statSync(dir).mode & 0o7777).toBe(0o700);
      expect(Math.round(statSync(dir).mtimeMs / 1000)).toBe(1_600_000_000);
      expect(readdirSync(dir)).toEqual(['victim']);
      expect(readFileSync(file, 'utf8')).toBe('victim');
      expect(statSync(file).mode & 0o7777).toBe(0o600);
    },
  };
}

describe('hostile archives: one table, one extractor', () => {
  const out = outside();
  const cases: [string, RawMember[], RegExp][] = [
    // the snapshot-restore finding: the final chmod/utimes pass must not follow the link
    ['a symlink to outside, then a directory of the same name (0777, mtime 0)', [
      { path: 'l', type: 'symlink', linkname: out.dir }, { path: 'l', type: 'dir', mode: 0o777, mtime: 0 },
    ], /"l" (is a symlink to the absolute path|appears twice)/],
    ['a relative symlink to outside, then a directory of the same name', [
      { path: 'l', type: 'symlink', linkname: `../../../../../../../../..${out.dir}` }, { path: 'l', type: 'dir', mode: 0o777, mtime: 0 },
    ], /"l" appears twice in the archive, first as a symlink, then as a dir/],
    ['a ../ path', [{ path: '../evil', data: 'x' }], /"\.\.\/evil" has a "\.\." component/],
    ['an absolute path', [{ path: `${out.dir}/evil`, data: 'x' }], /is an absolute path/],
    ['a symlink escaping', [{ path: 'up', type: 'symlink', linkname: '../..' }], /"up" is a symlink to "\.\.\/\.\.", which points outside/],
    ['an absolute symlink', [{ path: 'v', type: 'symlink', linkname: out.file }], /absolute path/],
    ['a file below a symlink of the archive', [{ path: 's', type: 'symlink', linkname: '.' }, { path: 's/f', data: 'x' }], /is under the symlink "s"/],
    ['a hard link to a file outside', [{ path: 'h', type: 'hardlink', linkname: out.file }], /"h" is a hardlink to/],
    ['a hard link climbing out', [{ path: 'h', type: 'hardlink', linkname: '../../../../../../../..' + out.file }], /has a "\.\." component/],
    ['a hard link to a later file', [{ path: 'h', type: 'hardlink', linkname: 'f' }, { path: 'f', data: 'x' }], /not a file extracted before it/],
    ['a file twice', [{ path: 'f', data: 'one' }, { path: 'f', data: 'two' }], /"f" appears twice in the archive/],
    ['a symlink then a file of the same name', [{ path: 'f', type: 'symlink', linkname: 'g' }, { path: 'f', data: 'x' }], /"f" appears twice/],
    ['a file then a directory of the same name', [{ path: 'f', data: 'x' }, { path: 'f', type: 'dir' }], /"f" appears twice/],
    ['a directory then a symlink of the same name', [{ path: 'd', type: 'dir' }, { path: 'd', type: 'symlink', linkname: '.' }], /"d" appears twice/],
    ['a character device', [{ path: 'null', type: 'char' }], /"null" is a char device node/],
    ['a block device', [{ path: 'sda', type: 'block' }], /"sda" is a block device node/],
    ['a fifo', [{ path: 'p', type: 'fifo' }], /"p" is a fifo/],
  ];
  for (const [what, members, message] of cases)
    it(what, async () => {
      const b = box();
      const archive = join(b, 'bad.tar');
      writeFileSync(archive, rawTar([{ path: 'ok', type: 'dir' }, { path: 'ok/file', data: 'fine' }, ...members]));
      const dest = join(b, 'dest');
      const err = await extract({ archive, dest, stripTopDir: false }).catch((e) => e);
      expect(err).toBeInstanceOf(RocmflowError);
      expect(err.code).toBe('E_UNSAFE_ARCHIVE');
      expect(err.message).toMatch(message);
      expect(err.message).toContain(archive);
      expect(err.message.split('\n')).toHaveLength(1);
      expect(readdirSync(b)).toEqual(['bad.tar']);
      out.check();
    });
});

describe('truncation', () => {
  it('an archive cut at every header offset (and inside every block) is refused, naming the archive and the entry', async () => {
    const long = `${'d'.repeat(90)}/${'n'.repeat(90)}`;
    const b = box();
    mkdirSync(join(b, 'src', 'd'.repeat(90)), { recursive: true });
    writeFileSync(join(b, 'src', long), 'x'.repeat(700));
    writeFileSync(join(b, 'src', 'small'), 'hello');
    execFileSync('tar', ['--format=gnu', '-C', join(b, 'src'), '-cf', join(b, 'full.tar'), long, 'small']);
    const full = readFileSync(join(b, 'full.tar'));
    // the whole archive extracts
    expect((await extract({ archive: join(b, 'full.tar'), dest: join(b, 'whole'), stripTopDir: false })).files).toBe(2);
    // the data ends before the two zero blocks at the end
    const end = full.length - Buffer.from(full).reverse().findIndex((x) => x !== 0);
    const cuts = new Set<number>();
    for (let off = 0; off < end; off += 512) cuts.add(off).add(off + 100);
    for (const cut of cuts) {
      const archive = join(b, `cut-${cut}.tar`);
      writeFileSync(archive, full.subarray(0, cut));
      const dest = join(b, `out-${cut}`);
      const err = await extract({ archive, dest, stripTopDir: false }).catch((e) => e);
      expect(err, `cut at ${cut}`).toBeInstanceOf(RocmflowError);
      expect(err.code).toBe('E_BAD_ARCHIVE');
      expect(err.message).toContain(archive);
      expect(err.message).toMatch(/truncated|checksum/);
      if (cut > 1536) expect(err.message).toMatch(/entry "/);
      expect(existsSync(dest)).toBe(false);
    }
    expect(readdirSync(b).filter((n) => n.startsWith('out-') || n.startsWith('.'))).toEqual([]);
  });
});

describe('generated archives (fast-check)', () => {
  const names = ['a', 'b', 'a/b', 'a/c', 'b/a', '.', '..', '../x', '/tmp', 'a/../b', 'a/./b'];
  const member = fc.record({
    path: fc.constantFrom(...names.filter((n) => n !== '.')),
    type: fc.constantFrom('file', 'dir', 'symlink', 'hardlink', 'fifo') as fc.Arbitrary<RawMember['type']>,
    linkname: fc.constantFrom(...names, '../..', 'a/b/../..'),
    data: fc.constantFrom('', 'x', 'yy'),
    mode: fc.constantFrom(0o755, 0o777, 0o4755, 0o000),
  });
  it('whatever the members: refused cleanly, or everything lies inside the destination', async () => {
    const out = outside();
    await fc.assert(
      fc.asyncProperty(fc.array(member, { maxLength: 7 }), async (members) => {
        const b = box();
        const archive = join(b, 'gen.tar');
        writeFileSync(archive, rawTar(members));
        const dest = join(b, 'dest');
        try {
          await extract({ archive, dest, stripTopDir: false });
        } catch (e) {
          expect(e).toBeInstanceOf(RocmflowError);
          expect(readdirSync(b)).toEqual(['gen.tar']);
          out.check();
          return;
        }
        expect(readdirSync(b).sort()).toEqual(['dest', 'gen.tar']);
        const walk = (rel: string) => {
          const abs = join(dest, rel);
          const st = lstatSync(abs);
          expect(st.isFile() || st.isDirectory() || st.isSymbolicLink()).toBe(true);
          if (st.isSymbolicLink()) {
            const t = readlinkSync(abs);
            expect(t.startsWith('/')).toBe(false);
            if (existsSync(abs)) expect(relative(realpathSync(dest), realpathSync(abs)).startsWith('..')).toBe(false);
          }
          if (st.isDirectory()) for (const n of readdirSync(abs)) walk(rel ? `${rel}/${n}` : n);
        };
        walk('');
        out.check();
      }),
      { numRuns: 150 },
    );
  });
});

describe('snapshot restore uses the same extractor', () => {
  it('refuses the link-then-directory archive through the real CLI, with one line, and changes nothing outside', () => {
    const out = outside();
    const b = box();
    mkdirSync(join(b, 'tree'));
    writeFileSync(join(b, 'tree', 'f'), 'f');
    expect(rocmflow(b, ['snapshot', 'create', 'tree', 'snap.tar.zst']).code).toBe(0);
    writeFileSync(join(b, 'evil.tar'), rawTar([{ path: 'l', type: 'symlink', linkname: out.dir }, { path: 'l', type: 'dir', mode: 0o777, mtime: 0 }]));
    execFileSync('zstd', ['-q', '-f', join(b, 'evil.tar'), '-o', join(b, 'evil.tar.zst')]);
    const r = rocmflow(b, ['snapshot', 'restore', 'evil.tar.zst', 'dest', '--manifest', 'snap.manifest.json']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/evil\.tar\.zst.*"l"/);
    expect(existsSync(join(b, 'dest'))).toBe(false);
    out.check();
    // a truncated snapshot names the archive and the entry
    const good = readFileSync(join(b, 'snap.tar.zst'));
    execFileSync('sh', ['-c', `zstd -dc snap.tar.zst | head -c 700 | zstd -q -o cut.tar.zst`], { cwd: b });
    expect(good.length).toBeGreaterThan(0);
    const t = rocmflow(b, ['snapshot', 'restore', 'cut.tar.zst', 'dest2', '--manifest', 'snap.manifest.json']);
    expect(t.code).toBe(1);
    expect(t.stderr.trim().split('\n')).toHaveLength(1);
    expect(t.stderr).toMatch(/cut\.tar\.zst: truncated inside entry "f"/);
  });
});

describe('source unpacking reads one member with the same reader', () => {
  it('copies only the named regular file out of a package; a link of that name or a cut archive is refused', async () => {
    const b = box();
    const tgz = join(b, 'pkg.tgz');
    writeFileSync(tgz, rawTarGz([{ path: 'package/../../evil', data: 'x' }, { path: 'package/llama/gitRelease.bundle', data: 'BUNDLE' }]));
    expect(await extractMember(tgz, 'package/llama/gitRelease.bundle', join(b, 'got'))).toBe(true);
    expect(readFileSync(join(b, 'got'), 'utf8')).toBe('BUNDLE');
    expect(await extractMember(tgz, 'package/none', join(b, 'none'))).toBe(false);
    expect(readdirSync(b).sort()).toEqual(['got', 'pkg.tgz']);
    const linked = join(b, 'linked.tgz');
    writeFileSync(linked, rawTarGz([{ path: 'package/llama/gitRelease.bundle', type: 'symlink', linkname: '/etc/passwd' }]));
    await expect(extractMember(linked, 'package/llama/gitRelease.bundle', join(b, 'x'))).rejects.toMatchObject({ code: 'E_UNSAFE_ARCHIVE' });
    const cut = join(b, 'cut.tar');
    writeFileSync(cut, rawTar([{ path: 'package/llama/gitRelease.bundle', data: 'B'.repeat(2000) }]).subarray(0, 1000));
    await expect(extractMember(cut, 'package/llama/gitRelease.bundle', join(b, 'y'))).rejects.toMatchObject({
      code: 'E_BAD_ARCHIVE', message: expect.stringMatching(/cut\.tar: truncated inside entry "package\/llama\/gitRelease.bundle"/),
    });
    expect(existsSync(join(b, 'x')) || existsSync(join(b, 'y'))).toBe(false);
  });
});
