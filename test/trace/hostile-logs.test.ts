/**
 * A trace log lies in a directory the traced program can write to (the
 * sandbox binds it): what it finds there is read as root by the host. A
 * link in the log's place is not followed, and a file that is no strace
 * output ends the read without holding it all in memory.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTraceFiles } from '../../src/trace/parse.js';
import { straceArgs } from '../../src/trace/run.js';

const dir = () => mkdtempSync(join(tmpdir(), 'rocmflow-hostile-log-'));

describe('trace logs the traced program could have replaced', () => {
  it('a link in place of the log is refused, and what it points at is not echoed', async () => {
    const d = dir();
    writeFileSync(join(d, 'secret'), 'root:$6$saltsalt$SECRETHASH:19000:0:99999:7:::\n');
    symlinkSync(join(d, 'secret'), join(d, 'minimal.log'));
    const err = await parseTraceFiles([join(d, 'minimal.log')]).then(() => null, (e) => e);
    expect(err).toMatchObject({ code: 'E_TRACE_FILE' });
    expect(err.message).toContain('a symbolic link');
    expect(err.message).not.toContain('SECRET');
  });

  it('a line longer than any strace line ends the read with one error', async () => {
    const d = dir();
    writeFileSync(join(d, 'huge.log'), Buffer.alloc(17 << 20, 'x'));
    await expect(parseTraceFiles([join(d, 'huge.log')])).rejects.toMatchObject({ code: 'E_TRACE_FILE', message: expect.stringContaining('not strace output') });
  });

  it('a fifo in place of the log is not read', async () => {
    const d = dir();
    execFileSync('mkfifo', [join(d, 'fifo.log')]);
    await expect(parseTraceFiles([join(d, 'fifo.log')])).rejects.toMatchObject({ code: 'E_TRACE_FILE', message: expect.stringContaining('not a regular file') });
  });
});

describe('paths strace annotates with -y', () => {
  it('a directory whose name holds an unmatched [ is traced like any other (real strace)', async () => {
    const d = join(dir(), 'work[1');
    execFileSync('mkdir', ['-p', d]);
    writeFileSync(join(d, 'data.txt'), 'x\n');
    const log = join(d, '..', 'trace.log');
    // cat opens data.txt relative to its cwd: the open names AT_FDCWD</...work[1>
    execFileSync('strace', straceArgs({ logPath: log }, ['cat', 'data.txt']), { cwd: d, stdio: 'ignore' });
    const p = await parseTraceFiles([log], { cwd: d });
    expect(p.warnings).toEqual([]);
    expect(p.access.files.map((f) => f.path)).toContain(join(d, 'data.txt'));
  });
});
