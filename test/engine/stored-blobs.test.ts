/**
 * Outputs that are the cache's own blobs: a task links a dependency's output
 * into an OCI-style layout (blobs/sha256/<hex>). The task can ask whether a
 * file is the store's blob of a digest (ctx.isStoredBlob), and capture takes
 * such a file as that blob without reading it. A file that only carries a
 * blob's name is hashed like any other.
 */
import { readFileSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rocmflow, states, workspace } from '../helpers/cli.js';

const TASKS = `
import { linkSync, writeFileSync, copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
const sha = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');
export default { tasks: [
  defineTask({ name: 'snap', outputs: ['big.bin'], async run(ctx) { await ctx.$\`head -c 4194304 /dev/urandom > big.bin\`; } }),
  defineTask({ name: 'img', deps: ['snap'], outputs: ['layout'], async run(ctx) {
    const big = join(ctx.deps.snap.outDir, 'big.bin');
    const d = sha(big);
    const blobs = join(ctx.outDir, 'layout/blobs/sha256');
    mkdirSync(blobs, { recursive: true });
    linkSync(big, join(blobs, d));
    // a copy of the snapshot is not the store's blob
    copyFileSync(big, join(ctx.outDir, 'layout/copy.bin'));
    // a file named after the blob but holding other bytes, with a second link so it looks like a stored one
    const decoy = join(ctx.outDir, 'layout/decoy');
    writeFileSync(decoy, Buffer.alloc(262144, 1));
    const fake = createHash('sha256').update('not these bytes').digest('hex');
    mkdirSync(join(ctx.outDir, 'layout/other/sha256'), { recursive: true });
    linkSync(decoy, join(ctx.outDir, 'layout/other/sha256', fake));
    return { facts: {
      stored: ctx.isStoredBlob(big, d), prefixed: ctx.isStoredBlob(big, 'sha256:' + d),
      copy: ctx.isStoredBlob(join(ctx.outDir, 'layout/copy.bin'), d), wrong: ctx.isStoredBlob(big, fake),
      missing: ctx.isStoredBlob(join(ctx.outDir, 'nothing'), d),
    } };
  } }),
]};
`;

describe('outputs that are stored blobs', () => {
  it('are recognised by inode and taken unread; a file that only has a blob\'s name is hashed', () => {
    const ws = workspace({ tasks: TASKS });
    const r = rocmflow(ws, ['run', 'img', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(states(r)).toEqual({ snap: 'ran', img: 'ran' });
    const img = r.events.find((e) => e.type === 'task' && e.task === 'img');
    const facts = img.facts;
    // the event says where the time went, and the phases add up to it
    expect(Object.keys(img.phases)).toEqual(['prepare', 'run', 'capture', 'store']);
    const sum = Object.values(img.phases as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(Math.abs(sum - img.ms)).toBeLessThanOrEqual(3);
    expect(facts).toEqual({ stored: true, prefixed: true, copy: false, wrong: false, missing: false });
    // what capture hashed for img: the 4 MiB copy and the 256 KiB decoy (once: its two names are one file), not the linked 4 MiB blob
    const totals = r.events.filter((e) => e.type === 'progress' && e.task === 'img' && e.label === 'caching outputs').map((e) => e.total);
    expect(Math.max(...totals)).toBe(4194304 + 262144);

    // the cache holds the right digests: restored from it, every file is what was written
    const out = join(ws, '.rocmflow/out/cpu');
    const big = readFileSync(join(out, 'snap/big.bin'));
    const hex = createHash('sha256').update(big).digest('hex');
    rmSync(out, { recursive: true });
    const again = rocmflow(ws, ['run', 'img', '--json']);
    expect(states(again)).toEqual({ snap: 'cached', img: 'cached' });
    const linked = join(out, 'img/layout/blobs/sha256', hex);
    expect(readFileSync(linked).equals(big)).toBe(true);
    expect(statSync(linked).ino).toBe(statSync(join(out, 'snap/big.bin')).ino);
    const fakes = join(out, 'img/layout/other/sha256');
    const decoy = readFileSync(join(fakes, createHash('sha256').update('not these bytes').digest('hex')));
    expect(decoy.equals(Buffer.alloc(262144, 1))).toBe(true);
    expect(rocmflow(ws, ['cache', 'verify']).stdout).toMatch(/0 corrupt/);
  });
});
