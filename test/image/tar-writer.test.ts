import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { collectTree, planEntries } from '../../src/image/tar-entries.js';
import { writeTar } from '../../src/image/tar-writer.js';
import { sh, tempDir } from './fixtures.js';

describe('writeTar', () => {
  it('puts sizes beyond 8 GiB into a pax header (a sparse 9 GiB file, stopped after its header)', async () => {
    const d = tempDir();
    sh('mkdir', [join(d, 'src')]);
    sh('truncate', ['-s', '9G', join(d, 'src', 'huge.bin')]);
    const head: Buffer[] = [];
    const ac = new AbortController();
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        head.push(chunk);
        cb();
      },
    });
    const run = writeTar(await collectTree(join(d, 'src')), sink, { mtime: 0, signal: ac.signal, onProgress: () => ac.abort() });
    await expect(run).rejects.toThrow();
    const bytes = Buffer.concat(head);
    expect(bytes.toString('latin1', 156, 157)).toBe('x');
    expect(bytes.toString('utf8', 512, 512 + 19)).toBe('19 size=9663676416\n');
    // the ustar header after it: size field 0, the real size lives in the pax record
    expect(bytes.toString('latin1', 1024, 1024 + 8)).toBe('huge.bin');
    expect(bytes.toString('latin1', 1024 + 124, 1024 + 135)).toBe('00000000000');
  });

  it('builds a layer from an explicit entry list: parents added, sorted by bytes, bad paths refused', async () => {
    const d = tempDir();
    sh('sh', ['-c', `echo a > ${d}/a && echo b > ${d}/b`]);
    const entries = await planEntries([
      { path: 'usr/lib/x86_64-linux-gnu/libb.so', source: join(d, 'b') },
      { path: './opt/llama/bin/a', source: join(d, 'a') },
      { path: 'opt/llama/bin/A', source: join(d, 'a') },
      { path: 'opt/rocm', symlink: '/opt/rocm-7.13' },
    ]);
    expect(entries.map((e) => `${e.type} ${e.path}`)).toEqual([
      'dir opt', 'dir opt/llama', 'dir opt/llama/bin', 'file opt/llama/bin/A', 'file opt/llama/bin/a', 'symlink opt/rocm',
      'dir usr', 'dir usr/lib', 'dir usr/lib/x86_64-linux-gnu', 'file usr/lib/x86_64-linux-gnu/libb.so',
    ]);
    await expect(planEntries([{ path: '../etc/passwd', source: join(d, 'a') }])).rejects.toMatchObject({ code: 'E_BAD_ENTRY_PATH' });
    await expect(planEntries([{ path: '/abs', source: join(d, 'a') }])).rejects.toMatchObject({ code: 'E_BAD_ENTRY_PATH' });
    await expect(planEntries([{ path: 'x', source: join(d, 'a') }, { path: './x', source: join(d, 'b') }])).rejects.toMatchObject({ code: 'E_DUPLICATE_ENTRY' });
    await expect(planEntries([{ path: 'x', source: join(d, 'nope') }])).rejects.toMatchObject({ code: 'E_NOT_FOUND', message: expect.stringContaining('(layer entry x)') });
  });
});
