/**
 * Keys do not depend on where the cache lives: two clones, each with its
 * local cache outside the project (a per-user directory), share one remote;
 * the vocab the tiny model is made from lies in each cache. The second
 * clone runs no task body at all.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PLUGIN_API, rocmflow } from '../helpers/cli.js';
import { vocabFile } from '../helpers/llama.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), `rocmflow-loc-${p}-`));

describe('keys independent of the cache location', () => {
  it('a second clone with another external cache dir restores model and its dependent from the remote', async () => {
    const vocab = await vocabFile();
    const counter = join(tmp('counter'), 'ran.txt');
    const tasks = join(tmp('tasks'), 'tasks.ts');
    writeFileSync(tasks, `import { defineTask } from ${JSON.stringify(PLUGIN_API)};
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
export default defineTask({ name: 'uses-model', deps: ['model'], outputs: ['size.txt'], async run(ctx) {
  appendFileSync(${JSON.stringify(counter)}, 'uses-model\\n');
  const m = JSON.parse(readFileSync(join(ctx.deps.model.outDir, 'model.json'), 'utf8'));
  writeFileSync(join(ctx.outDir, 'size.txt'), String(m.size));
} });
`);
    const share = tmp('share');
    const clone = () => {
      const ws = tmp('clone');
      const cache = join(tmp('home'), '.cache', 'rocmflow');
      mkdirSync(cache, { recursive: true });
      // each user's cache holds the same vocab file
      copyFileSync(vocab, join(cache, 'vocab.gguf'));
      writeFileSync(join(ws, 'rocmflow.config.ts'), `export default { target: 'cpu', plugins: [${JSON.stringify(tasks)}],
  tasks: { model: { source: { tiny: { layers: 1 } }, vocab: ${JSON.stringify(join(cache, 'vocab.gguf'))} } },
  cache: { remote: { url: ${JSON.stringify(`file://${share}`)}, mode: 'read-write' } } };\n`);
      return { ws, cache };
    };
    const a = clone();
    const ra = rocmflow(a.ws, ['run', 'uses-model', '--json'], { ROCMFLOW_CACHE_DIR: a.cache });
    expect(ra.code, ra.stderr + ra.stdout.slice(-2000)).toBe(0);
    const b = clone();
    const rb = rocmflow(b.ws, ['run', 'uses-model', '--json'], { ROCMFLOW_CACHE_DIR: b.cache });
    expect(rb.code, rb.stderr).toBe(0);
    const st = Object.fromEntries(rb.events.filter((e) => e.type === 'task').map((e) => [e.task, `${e.state}/${e.source ?? ''}`]));
    expect(st).toEqual({ model: 'cached/remote', 'uses-model': 'cached/remote' });
    expect(readFileSync(counter, 'utf8').trim().split('\n')).toEqual(['uses-model']);
  }, 180_000);
});
