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
