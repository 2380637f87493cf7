/**
 * The server's walk on every core (src/fingerprint/walk-pool.ts) finds
 * exactly what the one-thread walk finds: the same entries, keys, stamps,
 * link targets and byte-string names, for whole trees and globs. It runs
 * in worker threads that import the compiled walk module, so it is run
 * here from the compiled mirror, in a Node process of its own.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

const { compiledRoot } = (await import(pathToFileURL(join(REPO, 'bin/build-cache.js')).href)) as { compiledRoot(): Promise<string | null> };

const SCRIPT = `
const [mirror, root, ...patterns] = process.argv.slice(1);
const { expandInputs, walkAhead } = await import(mirror + '/src/fingerprint/walk.js');
const { walkTreeParallel } = await import(mirror + '/src/fingerprint/walk-pool.js');
const { stampPrefix } = await import(mirror + '/src/fingerprint/file-digests.js');
// the walk on every core writes each stamp prefix ahead: it must be the one written here
const show = (es) => es.map(({ stampPrefix: ahead, ...e }) => ({ ...e, path: typeof e.path === 'string' ? e.path : 'bytes:' + e.path.toString('hex'), prefix: ahead ?? stampPrefix(e) }));
const out = [];
for (const p of patterns) {
  const one = expandInputs([p], root, 't');
  const all = expandInputs([p], root, 't', await walkAhead([p], root, walkTreeParallel));
  out.push({ pattern: p, one: show(one), all: show(all) });
}
// the pool's workers are idle now and do not hold the process; the write to the pipe finishes first
process.stdout.write(JSON.stringify(out));
`;

describe('the walk on every core', () => {
  it('finds what the one-thread walk finds, for trees and globs, links and byte-string names', async () => {
    const mirror = await compiledRoot();
    expect(mirror).toBeTruthy();
    const root = mkdtempSync(join(tmpdir(), 'rocmflow-walk-'));
    for (let d = 0; d < 12; d++) {
      for (let e = 0; e < 5; e++) {
        mkdirSync(join(root, 'tree', `d${d}`, `e${e}`, 'deep'), { recursive: true });
        for (let f = 0; f < 7; f++) writeFileSync(join(root, 'tree', `d${d}`, `e${e}`, f % 2 ? `f${f}.so` : `f${f}.txt`), 'x'.repeat(d * 10 + f));
        writeFileSync(join(root, 'tree', `d${d}`, `e${e}`, 'deep', 'z.so'), `deep ${d} ${e}`);
      }
    }
    writeFileSync(join(root, 'tree', 'top.txt'), 'top');
    symlinkSync('d1/e1/f1.so', join(root, 'tree', 'link.so'));
    symlinkSync('../nowhere', join(root, 'tree', 'd3', 'dangling'));
    writeFileSync(Buffer.concat([Buffer.from(join(root, 'tree', 'd4', 'e2') + '/'), Buffer.from([0x6e, 0xff, 0x2e, 0x73, 0x6f])]), 'not utf-8');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', SCRIPT, mirror!, root, 'tree', 'tree/**/*.so', 'tree/d2', '../' + root.split('/').pop() + '/tree/d5'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const results = JSON.parse(r.stdout) as { pattern: string; one: unknown[]; all: unknown[] }[];
    expect(results.map((x) => x.one.length)).toEqual([12 * 5 * 8 + 4, 12 * 5 * 3 + 12 * 5 + 2, 5 * 8, 5 * 8]);
    for (const x of results) expect(x.all, x.pattern).toEqual(x.one);
  });
});
