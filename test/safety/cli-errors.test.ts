/**
 * Clumsy inputs get one line naming the file and what to do: a damaged
 * cache index, a snapshot restored onto a pseudo file system.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rocmflow, workspace } from '../helpers/cli.js';

const TASK = `export default defineTask({ name: 't', outputs: ['o'], async run(ctx) { await ctx.$\`echo t > o\`; } });`;

describe('cache index problems are one line naming the file', () => {
  const cases: [string, (file: string) => void, RegExp][] = [
    ['corrupt', (f) => writeFileSync(f, 'this is not a database, just some bytes that are long enough'), /is not a valid SQLite database \(corrupt\); move it away/],
    ['not a file', (f) => mkdirSync(f), /cannot be opened; check that it is a file/],
  ];
  for (const [what, damage, message] of cases)
    it(`${what} index.sqlite: cache ls, cache stats and run`, () => {
      const ws = workspace({ tasks: TASK });
      mkdirSync(join(ws, 'cache'));
      const file = join(ws, 'cache', 'index.sqlite');
      damage(file);
      for (const args of [['cache', 'ls'], ['cache', 'stats'], ['run', 't']]) {
        const r = rocmflow(ws, args);
        expect(r.code, args.join(' ')).toBe(1);
        const lines = r.stderr.trim().split('\n');
        expect(lines, r.stderr).toHaveLength(1);
        expect(lines[0]).toContain(`cache index ${file} `);
        expect(lines[0]).toMatch(message);
        expect(lines[0]).not.toMatch(/internal error/);
      }
    });
});

describe('snapshot restore onto a pseudo file system', () => {
  it('is refused at once for /proc and /sys, naming the destination', () => {
    const d = mkdtempSync(join(tmpdir(), 'rocmflow-pseudo-'));
    mkdirSync(join(d, 'tree'));
    writeFileSync(join(d, 'tree', 'f'), 'f');
    expect(rocmflow(d, ['snapshot', 'create', 'tree', 'good.tar.zst']).code).toBe(0);
    for (const dest of ['/proc/rocmflow-x', '/sys/rocmflow-x/y']) {
      const r = rocmflow(d, ['snapshot', 'restore', 'good.tar.zst', dest], {});
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`${dest} is on (proc|sysfs), a pseudo file system`));
    }
  }, 60_000);
});
