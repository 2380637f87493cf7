/**
 * A task's key covers its code through its module closure. Tasks import
 * their run's modules inside run() so a fresh check does not load them;
 * the closure must still hold them, or a change there would not rerun the
 * task.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { moduleClosure } from '../../src/util/module-closure.js';
import { codeHash, primeCodeHashes } from '../../src/engine/fingerprint-task.js';
import { CacheIndex } from '../../src/cache/cache-index.js';
import type { LoadedTask } from '../../src/plugin/load.js';

const REPO = resolve(import.meta.dirname, '../..');

describe('moduleClosure', () => {
  it('follows import() of a literal path, static imports, and nothing from node_modules', async () => {
    const d = mkdtempSync(join(tmpdir(), 'rocmflow-closure-'));
    writeFileSync(join(d, 'task.ts'), "import { a } from './a.js';\nimport { join } from 'node:path';\nexport async function run() { return (await import('./b.js')).b + a + join('x'); }\n");
    writeFileSync(join(d, 'a.ts'), 'export const a = 1;\n');
    writeFileSync(join(d, 'b.ts'), "import { c } from './c.js';\nexport const b = c;\n");
    writeFileSync(join(d, 'c.ts'), 'export const c = 2;\n');
    writeFileSync(join(d, 'unused.ts'), 'export const u = 3;\n');
    expect(await moduleClosure(join(d, 'task.ts'))).toEqual(['a.ts', 'b.ts', 'c.ts', 'task.ts'].map((f) => join(d, f)));
  });

  it("holds trim-runtime's run, loaded on demand, and what it imports", async () => {
    const files = await moduleClosure(join(REPO, 'tasks/trim-runtime.ts'));
    for (const f of ['tasks/run/trim-runtime.ts', 'src/pipeline/images.ts', 'src/runtime/closure.ts', 'src/image/layer-memo.ts']) expect(files).toContain(join(REPO, f));
  });
});

describe('code hashes of a run, at once', () => {
  it('match the hashes computed one by one, and a task whose files cannot be read fails alone with its own error', async () => {
    const d = mkdtempSync(join(tmpdir(), 'rocmflow-codehash-'));
    writeFileSync(join(d, 'shared.ts'), 'export const s = 1;\n');
    writeFileSync(join(d, 'one.ts'), "import { s } from './shared.js';\nexport default { name: 'one', run: () => s };\n");
    writeFileSync(join(d, 'two.ts'), "import { s } from './shared.js';\nexport const t = s + 1;\n");
    writeFileSync(join(d, 'data.txt'), 'what two runs\n');
    const index = await CacheIndex.open(join(d, 'cache'));
    const task = (name: string, file: string, code?: string[]) => ({ def: { name, outputs: [], run: async () => ({}), ...(code ? { code } : {}) }, file: join(d, file), origin: 'test' }) as LoadedTask;
    try {
      // p-never is never awaited, as a task the run does not reach after a failure: no unhandled rejection
      const batch = [task('p-one', 'one.ts'), task('p-two', 'two.ts', ['data.txt']), task('p-bad', 'one.ts', ['no-such-file.txt']), task('p-never', 'two.ts', ['gone.txt'])];
      primeCodeHashes(batch, index);
      const alone = [task('a-one', 'one.ts'), task('a-two', 'two.ts', ['data.txt'])];
      expect(await codeHash(batch[0]!, index)).toBe(await codeHash(alone[0]!, index));
      expect(await codeHash(batch[1]!, index)).toBe(await codeHash(alone[1]!, index));
      expect(await codeHash(batch[0]!, index)).not.toBe(await codeHash(batch[1]!, index));
      await expect(codeHash(batch[2]!, index)).rejects.toThrow(/no-such-file\.txt/);
    } finally {
      await index.close();
    }
  });
});
