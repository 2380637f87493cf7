import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { restoreSnapshot, snapshot, snapshotInfo, verifyTree, readManifest } from '../../src/image/snapshot.js';
import { describeTree, LONG_FILE, makeTree, sh, tempDir } from './fixtures.js';

const read = (p: string) => readFileSync(p);

describe('snapshot', () => {
  it('round-trips a tree exactly: modes, links, hardlinks, empty dirs, long and UTF-8 paths', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'));
    const info = await snapshot({ source: src, out: join(d, 'out', 'rocm.tar.zst'), version: '7.13.0a20260430' });
    expect(info.manifest).toBe(join(d, 'out', 'rocm.manifest.json'));
    expect(info.totals).toMatchObject({ symlinks: 5, hardlinks: 1 });
    expect(info.version).toBe('7.13.0a20260430');
    // the digests are those of the bytes on disk, checked with other tools
    expect(info.digest).toBe(`sha256:${sh('sha256sum', [info.archive]).split(' ')[0]}`);
    expect(info.size).toBe(read(info.archive).length);
    const tar = execFileSync('zstd', ['-dcq', info.archive], { maxBuffer: 64 << 20 });
    expect(info.diffId).toBe(`sha256:${execFileSync('sha256sum', { input: tar, encoding: 'utf8' }).split(' ')[0]}`);
    expect(info.uncompressedSize).toBe(tar.length);

    const out = join(d, 'restored');
    await restoreSnapshot(info.archive, out);
    expect(describeTree(out)).toBe(describeTree(src));
    expect(sh('diff', ['-r', '--no-dereference', src, out])).toBe('');
    expect(await verifyTree(out, await readManifest(info.manifest))).toEqual([]);
  });

  it('is readable by GNU tar, which sees owners 0/0, mtime 0 and the full long names', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'));
    const info = await snapshot({ source: src, out: join(d, 'rocm.tar.zst') });
    const listing = sh('tar', ['--zstd', '-tvf', info.archive, '--numeric-owner']);
    expect(listing).toContain(LONG_FILE);
    expect(listing).toContain(`lib/long-target-link -> ../${LONG_FILE}`);
    expect(listing).toMatch(/^-rwsr-xr-x 0\/0 +1 1970-01-01 00:00 bin\/setuid-helper$/m);
    expect(listing).toMatch(/^hrwxr-x--- 0\/0 +0 1970-01-01 00:00 lib\/llvm\/bin\/clang\+\+ link to lib\/llvm\/bin\/clang$/m);
    for (const line of listing.trim().split('\n')) expect(line).toMatch(/ 0\/0 .* 1970-01-01 00:00 /);
    const byGnu = join(d, 'gnu');
    sh('mkdir', [byGnu]);
    sh('tar', ['--zstd', '-xpf', info.archive, '-C', byGnu]);
    expect(describeTree(byGnu)).toBe(describeTree(src));
  });

  it('gives the same bytes for the same tree: again, after touching every file, and after copying it elsewhere', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'));
    const a = await snapshot({ source: src, out: join(d, 'a.tar.zst') });
    const b = await snapshot({ source: src, out: join(d, 'b.tar.zst') });
    sh('find', [src, '-exec', 'touch', '-h', '-d', '2001-02-03 04:05:06', '{}', '+']);
    const c = await snapshot({ source: src, out: join(d, 'c.tar.zst') });
    sh('cp', ['-a', src, join(d, 'copy')]);
    const e = await snapshot({ source: join(d, 'copy'), out: join(d, 'e.tar.zst') });
    for (const x of [b, c, e]) {
      expect(read(x.archive).equals(read(a.archive))).toBe(true);
      expect(read(x.manifest).equals(read(a.manifest))).toBe(true);
      expect(x.digest).toBe(a.digest);
    }
    // and it does notice what matters: content, modes, a different mtime
    writeFileSync(join(src, 'share/empty.txt'), 'now with content');
    const f = await snapshot({ source: src, out: join(d, 'f.tar.zst') });
    expect(f.diffId).not.toBe(a.diffId);
    sh('cp', ['-a', join(d, 'copy'), join(d, 'copy2')]);
    sh('chmod', ['0700', join(d, 'copy2', 'bin/hipconfig')]);
    const g = await snapshot({ source: join(d, 'copy2'), out: join(d, 'g.tar.zst') });
    expect(g.diffId).not.toBe(a.diffId);
    const h = await snapshot({ source: join(d, 'copy'), out: join(d, 'h.tar.zst'), mtime: 1_700_000_000 });
    expect(h.diffId).not.toBe(a.diffId);
    expect(sh('tar', ['--zstd', '-tvf', h.archive, 'bin/hipconfig'])).toContain('2023-11-14');
  });

  it('takes its mtime from SOURCE_DATE_EPOCH when no option is given', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'));
    const before = process.env.SOURCE_DATE_EPOCH;
    process.env.SOURCE_DATE_EPOCH = '1234567890';
    try {
      const info = await snapshot({ source: src, out: join(d, 's.tar.zst') });
      expect((await readManifest(info.manifest)).mtime).toBe(1234567890);
      expect(sh('tar', ['--zstd', '-tvf', info.archive, '--full-time', 'bin/hipconfig'])).toContain('2009-02-13 23:31:30');
    } finally {
      if (before === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = before;
    }
  });

  it('reports progress against the total and records sizes in the manifest', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'));
    const seen: [number, number][] = [];
    const info = await snapshot({ source: src, out: join(d, 'p.tar.zst'), onProgress: (a, b) => seen.push([a, b]) });
    const m = await readManifest(info.manifest);
    expect(seen.at(-1)).toEqual([m.totals.bytes, m.totals.bytes]);
    const lib = m.files.find((f) => f.path === 'lib/libamdhip64.so.7.13.0')!;
    expect(lib).toMatchObject({ type: 'file', mode: '0755', size: 3 * 1024 * 1024 + 17 });
    expect(lib.sha256).toBe(sh('sha256sum', [join(src, lib.path)]).split(' ')[0]);
    expect(m.files.find((f) => f.path === 'llvm')).toEqual({ path: 'llvm', type: 'symlink', target: 'lib/llvm' });
    expect(m.files.find((f) => f.path === 'include')).toMatchObject({ type: 'dir', mode: '0700' });
    expect((await snapshotInfo(info.archive)).digest).toBe(info.digest);
  });

  it('refuses device nodes and fifos in the tree, naming the path, and leaves no output', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'));
    sh('mkfifo', [join(src, 'lib/a-fifo')]);
    const out = join(d, 'x.tar.zst');
    await expect(snapshot({ source: src, out })).rejects.toMatchObject({ code: 'E_UNSUPPORTED_FILE', message: expect.stringContaining('lib/a-fifo is a fifo') });
    expect(readdirSync(d)).toEqual(['src']);
    await expect(snapshot({ source: join(d, 'nope'), out })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });

  it('stops when aborted and leaves no partial archive', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'));
    const ac = new AbortController();
    const run = snapshot({ source: src, out: join(d, 'x.tar.zst'), signal: ac.signal, onProgress: () => ac.abort() });
    await expect(run).rejects.toThrow();
    expect(readdirSync(d)).toEqual(['src']);
  });

  it('restore verifies: a tampered manifest or archive is refused and nothing is left behind', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'));
    const info = await snapshot({ source: src, out: join(d, 'rocm.tar.zst') });
    const m = JSON.parse(readFileSync(info.manifest, 'utf8'));
    const clang = m.files.find((f: { path: string }) => f.path === 'lib/llvm/bin/clang');
    clang.sha256 = '0'.repeat(64);
    const bad = join(d, 'bad.manifest.json');
    writeFileSync(bad, JSON.stringify(m));
    const out = join(d, 'r1');
    const err = await restoreSnapshot(info.archive, out, { manifest: bad }).catch((e) => e);
    expect(err).toMatchObject({ code: 'E_SNAPSHOT_MISMATCH' });
    expect(err.details.join('\n')).toContain('lib/llvm/bin/clang: content differs');
    expect(existsSync(out)).toBe(false);

    // one flipped byte in the compressed archive: zstd's checksum or our digests catch it
    const broken = join(d, 'broken.tar.zst');
    const bytes = read(info.archive);
    const mid = Math.floor(bytes.length / 2);
    bytes[mid] = bytes[mid]! ^ 0xff;
    writeFileSync(broken, bytes);
    await expect(restoreSnapshot(broken, join(d, 'r2'), { manifest: info.manifest })).rejects.toThrow();
    expect(existsSync(join(d, 'r2'))).toBe(false);

    // refuses a non-empty destination without touching it
    const busy = join(d, 'busy');
    sh('mkdir', [busy]);
    writeFileSync(join(busy, 'keep'), 'mine');
    await expect(restoreSnapshot(info.archive, busy)).rejects.toMatchObject({ code: 'E_DEST_NOT_EMPTY' });
    expect(readdirSync(busy)).toEqual(['keep']);
    await expect(restoreSnapshot(join(d, 'missing.tar.zst'), join(d, 'r3'), { manifest: info.manifest })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });

  it('verifyTree lists what differs on disk', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'));
    const info = await snapshot({ source: src, out: join(d, 'rocm.tar.zst') });
    const out = join(d, 'r');
    await restoreSnapshot(info.archive, out);
    writeFileSync(join(out, 'bin/hipconfig'), 'changed');
    sh('rm', [join(out, 'llvm')]);
    writeFileSync(join(out, 'extra'), '');
    const problems = await verifyTree(out, await readManifest(info.manifest));
    expect(problems.sort()).toEqual(['bin/hipconfig: 7 bytes, expected 20', 'missing symlink llvm', 'unexpected file extra']);
  });
});
