/**
 * Outputs that are hard links of one another (a layer blob in two OCI
 * layouts) are one file to the store: linked in, not copied, when every
 * link of it is an output; a file that also has a link outside the outputs
 * (the user's own) is copied, so its mode and mtime stay as they were.
 */
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rocmflow, states, workspace } from '../helpers/cli.js';

describe('capturing hard-linked outputs', () => {
  it('links a file whose every link is an output into the store; copies one with a link outside', () => {
    const ws = workspace({
      tasks: `export default defineTask({
        name: 'pair', outputs: ['a', 'b', 'mine'],
        async run(ctx) {
          const { writeFile, link } = await import('node:fs/promises');
          await writeFile(ctx.outDir + '/a', 'one file, two names\\n');
          await link(ctx.outDir + '/a', ctx.outDir + '/b');
          await link(${JSON.stringify('PROJECT/user-file.txt')}.replace('PROJECT', ctx.projectRoot), ctx.outDir + '/mine');
        },
      });`,
    });
    writeFileSync(join(ws, 'user-file.txt'), 'the user keeps this\n', { mode: 0o640 });
    const before = statSync(join(ws, 'user-file.txt'));
    const r = rocmflow(ws, ['run', 'pair', '--json', '--cache-dir', join(ws, 'cache')]);
    expect(states(r), r.stderr).toEqual({ pair: 'ran' });
    const out = join(ws, '.rocmflow/out/cpu/pair');
    const [a, b, mine] = ['a', 'b', 'mine'].map((f) => statSync(join(out, f)));
    expect(b!.ino).toBe(a!.ino);
    // a and b are the store's blob: its two names plus the store's
    expect(a!.nlink).toBe(3);
    expect(a!.mode & 0o777).toBe(0o444);
    // the user's file was not made read-only under its other name
    const after = statSync(join(ws, 'user-file.txt'));
    expect(after.mode & 0o777).toBe(0o640);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(mine!.ino).toBe(after.ino);
    // and a second run finds everything fresh
    expect(states(rocmflow(ws, ['run', 'pair', '--json', '--cache-dir', join(ws, 'cache')]))).toEqual({ pair: 'fresh' });
  });
});
