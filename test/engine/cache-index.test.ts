/** The cache index (keyv over SQLite): reads in a batch match reads one by one. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CacheIndex } from '../../src/cache/cache-index.js';

describe('the index read in a batch', () => {
  it('finds keys holding a NUL (the state keys do) as one-by-one reads do', async () => {
    const d = mkdtempSync(join(tmpdir(), 'rocmflow-index-'));
    const index = await CacheIndex.open(join(d, 'cache'));
    try {
      const keys = [`${d}/.rocmflow\0cpu/a`, 'plain', `x\0y`, 'absent'];
      await index.set('state', keys[0]!, { n: 1 });
      await index.set('state', keys[1]!, { n: 2 });
      await index.set('state', keys[2]!, { n: 3 });
      expect(await index.getMany('state', keys)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, undefined]);
    } finally {
      await index.close();
    }
  });
});
