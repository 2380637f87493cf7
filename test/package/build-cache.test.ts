/**
 * The checkout's compiled mirror (bin/build-cache.js): a copy of the module
 * in a temp tree with its own sources, so edits, new files and removed
 * files are real ones; the mirror it returns must hold what the sources
 * hold after every change.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

const tree = mkdtempSync(join(tmpdir(), 'rocmflow-mirror-'));
afterAll(() => rmSync(tree, { recursive: true, force: true }));

mkdirSync(join(tree, 'bin'));
copyFileSync(join(REPO, 'bin/build-cache.js'), join(tree, 'bin/build-cache.js'));
// esbuild only, so the mirror lands in this tree's node_modules/.cache
mkdirSync(join(tree, 'node_modules'));
symlinkSync(join(REPO, 'node_modules/esbuild'), join(tree, 'node_modules/esbuild'));
writeFileSync(join(tree, 'package.json'), '{"name":"t","type":"module"}\n');
mkdirSync(join(tree, 'src/sub'), { recursive: true });
mkdirSync(join(tree, 'tasks'));
writeFileSync(join(tree, 'src/a.ts'), 'export const a: number = 1;\n');
writeFileSync(join(tree, 'tasks/t.ts'), "export const t: string = 'x';\n");

const { compiledRoot } = (await import(pathToFileURL(join(tree, 'bin/build-cache.js')).href)) as { compiledRoot: () => Promise<string> };
const read = (root: string, rel: string) => readFileSync(join(root, rel), 'utf8');

describe('build-cache: the compiled mirror follows the sources', () => {
  let first = '';

  it('builds on the first start and reuses the mirror on the next, from the recorded stamps', async () => {
    first = await compiledRoot();
    expect(read(first, 'src/a.js')).toContain('const a = 1');
    expect(existsSync(join(tree, 'node_modules/.cache/rocmflow-build/current.json'))).toBe(true);
    expect(await compiledRoot()).toBe(first);
  });

  it('an edit of the same size is seen by its mtime', async () => {
    writeFileSync(join(tree, 'src/a.ts'), 'export const a: number = 2;\n');
    utimesSync(join(tree, 'src/a.ts'), new Date(), new Date(Date.now() + 5000));
    const root = await compiledRoot();
    expect(root).not.toBe(first);
    expect(read(root, 'src/a.js')).toContain('const a = 2');
  });

  it('a new file in a new directory, and a removed one, are seen by their directories', async () => {
    const before = await compiledRoot();
    mkdirSync(join(tree, 'src/sub/deeper'));
    writeFileSync(join(tree, 'src/sub/deeper/b.ts'), 'export const b = 3;\n');
    const added = await compiledRoot();
    expect(added).not.toBe(before);
    expect(read(added, 'src/sub/deeper/b.js')).toContain('const b = 3');
    rmSync(join(tree, 'tasks/t.ts'));
    const removed = await compiledRoot();
    expect(removed).not.toBe(added);
    expect(existsSync(join(removed, 'tasks/t.js'))).toBe(false);
  });

  it('a changed package.json makes a new mirror', async () => {
    const before = await compiledRoot();
    writeFileSync(join(tree, 'package.json'), '{"name":"t","type":"module","version":"2.0.0"}\n');
    const root = await compiledRoot();
    expect(root).not.toBe(before);
    expect(JSON.parse(read(root, 'package.json')).version).toBe('2.0.0');
  });

  it('an unreadable or wrongly shaped stamp record only costs a full look', async () => {
    const expected = await compiledRoot();
    const rec = join(tree, 'node_modules/.cache/rocmflow-build/current.json');
    for (const junk of ['not json', '{"sig":"../../etc","stamps":[],"dirs":[]}', '{"sig":1}', 'null']) {
      writeFileSync(rec, junk);
      expect(await compiledRoot()).toBe(expected);
      expect(JSON.parse(readFileSync(rec, 'utf8')).sig).toMatch(/^[0-9a-f]{64}$/);
    }
  });
});
