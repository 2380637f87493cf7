/**
 * `tasks.numerics-reference.enabled: false` switches the numeric check off
 * without failing the pipeline: the task still creates every output it
 * declares (empty), records that the check is off, and says so.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { REPO, rocmflowAsync } from '../helpers/cli.js';
import { WORK } from '../helpers/llama.js';
import { SHARED_CACHE } from '../helpers/cpu-pipeline.js';

mkdirSync(WORK, { recursive: true });
const ws = mkdtempSync(join(WORK, 'numerics-off-'));
afterAll(() => rmSync(ws, { recursive: true, force: true }));

it('a disabled numeric check completes, with its outputs empty and the record saying it is off', async () => {
  writeFileSync(join(ws, 'rocmflow.config.ts'), `import project from ${JSON.stringify(join(REPO, 'rocmflow.config.ts'))};
export default { ...project, stateDir: 'state', tasks: { ...project.tasks, 'numerics-reference': { enabled: false } } };
`);
  const r = await rocmflowAsync(ws, ['run', 'numerics-reference', '--target', 'cpu', '--json'], { ROCMFLOW_CACHE_DIR: SHARED_CACHE }).done;
  expect(r.code, r.stderr.slice(-2000)).toBe(0);
  const task = r.events.find((e) => e.type === 'task' && e.task === 'numerics-reference');
  expect(['ran', 'cached']).toContain(task.state);
  const out = join(ws, 'state', 'out', 'cpu', 'numerics-reference');
  expect(JSON.parse(readFileSync(join(out, 'reference.json'), 'utf8'))).toMatchObject({ enabled: false, ppl: null });
  expect(readFileSync(join(out, 'base.kld')).length).toBe(0);
  expect(r.events.find((e) => e.type === 'summary').lines).toContain('numeric check disabled (tasks.numerics-reference.enabled: false)');
}, 3_600_000);
