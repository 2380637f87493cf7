import { createReadStream, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { extractTar } from '../../src/image/tar-reader.js';
import type { TarEntry } from '../../src/image/tar-entries.js';
import { writeTar } from '../../src/image/tar-writer.js';
import { sh, tempDir } from './fixtures.js';

/** A tar stream of hand-made entries (our writer writes whatever it is given). */
function tarOf(entries: TarEntry[]): PassThrough {
  const s = new PassThrough();
  writeTar(entries, s, { mtime: 0 }).then(() => s.end(), (e) => s.destroy(e));
  return s;
}

const dir = (path: string): TarEntry => ({ path, type: 'dir', mode: 0o755, size: 0 });
const link = (path: string, target: string, type: 'symlink' | 'hardlink' = 'symlink'): TarEntry => ({ path, type, mode: 0o777, size: 0, target });

describe('extractTar refuses unsafe archives and writes nothing outside the destination', () => {
  const cases: [string, TarEntry[], RegExp][] = [
    ['a ".." path', [dir('a'), dir('a/../../evil')], /path "a\/..\/..\/evil\/" with ".." refused/],
    ['an absolute path', [dir('/tmp/evil')], /absolute path "\/tmp\/evil\/" refused/],
    ['a file below a symlink of the archive', [link('out', '..'), dir('out/evil')], /entry out\/evil lies below a symlink/],
    ['a hardlink to a path outside', [link('h', '../../etc/passwd', 'hardlink')], /with ".." refused/],
    ['a hardlink to a file not in the archive', [link('h', 'etc/passwd', 'hardlink')], /not an earlier file of the archive/],
  ];
  for (const [name, entries, message] of cases) {
    it(name, async () => {
      const d = tempDir();
      const dest = join(d, 'dest');
      await expect(extractTar(tarOf(entries), dest, { label: 'evil.tar' })).rejects.toMatchObject({ code: 'E_UNSAFE_ARCHIVE', message: expect.stringMatching(message) });
      expect(readdirSync(d)).toEqual(['dest']);
      expect(existsSync(join(d, 'evil'))).toBe(false);
    });
  }

  it('a device node (archived by GNU tar)', async () => {
    const d = tempDir();
    sh('tar', ['-C', '/', '-cf', join(d, 'dev.tar'), 'dev/null']);
    await expect(extractTar(createReadStream(join(d, 'dev.tar')), join(d, 'dest'), { label: 'dev.tar' })).rejects.toMatchObject({
      code: 'E_UNSAFE_ARCHIVE',
      message: 'dev.tar: entry dev/null is a character device; refused',
    });
  });

  it('a truncated archive', async () => {
    const d = tempDir();
    sh('sh', ['-c', `head -c 700 /etc/passwd > ${d}/f && tar -C ${d} -cf ${d}/t.tar f && head -c 1024 ${d}/t.tar > ${d}/cut.tar`]);
    await expect(extractTar(createReadStream(join(d, 'cut.tar')), join(d, 'dest'))).rejects.toMatchObject({ code: 'E_UNSAFE_ARCHIVE', message: expect.stringContaining('truncated') });
  });

  it('reads what GNU tar writes (GNU long names, its own ordering)', async () => {
    const d = tempDir();
    const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
    sh('sh', ['-c', `mkdir -p ${d}/src/${'d'.repeat(120)} && echo hi > ${d}/src/${long} && ln -s ${long} ${d}/src/l`]);
    sh('tar', ['--format=gnu', '-C', join(d, 'src'), '-cf', join(d, 'gnu.tar'), '.']);
    const entries = await extractTar(createReadStream(join(d, 'gnu.tar')), join(d, 'dest'));
    expect(entries.map((e) => e.path).sort()).toEqual(['d'.repeat(120), 'l', long].sort());
    expect(sh('cat', [join(d, 'dest', long)])).toBe('hi\n');
  });
});
