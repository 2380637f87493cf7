/**
 * Two workspaces sharing one cache directory (a team's or a user's cache):
 * each keeps its own record of its last outputs, and summary lines that name
 * output paths name the workspace's own. Keyed by target and task alone,
 * the second workspace's run used to overwrite the first's record, and the
 * first then showed the second's paths.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { rocmflow, states, workspace } from '../helpers/cli.js';

const TASKS = `export default { tasks: [
  defineTask({
    name: 'make', description: 'write a file and name it',
    inputs: () => ({ files: ['in.txt'] }),
    outputs: ['out.txt'],
    async run(ctx) {
      require('node:fs').copyFileSync(ctx.projectRoot + '/in.txt', ctx.outDir + '/out.txt');
      return { summary: ['wrote ' + ctx.outDir + '/out.txt'] };
    },
  }),
]};
`;

it('keeps one record per workspace and names the output paths of each workspace', () => {
  const cache = mkdtempSync(join(tmpdir(), 'rocmflow-shared-cache-'));
  const a = workspace({ tasks: TASKS, files: { 'in.txt': 'same input\n' } });
  const b = workspace({ tasks: TASKS, files: { 'in.txt': 'same input\n' } });
  const run = (ws: string) => rocmflow(ws, ['run', 'make', '--json', '--cache-dir', cache]);
  const lines = (r: ReturnType<typeof run>) => r.events.find((e) => e.type === 'summary').lines as string[];
  const outA = join(a, '.rocmflow', 'out', 'cpu', 'make', 'out.txt');
  const outB = join(b, '.rocmflow', 'out', 'cpu', 'make', 'out.txt');

  const first = run(a);
  expect(states(first).make).toBe('ran');
  expect(lines(first)).toContain(`wrote ${outA}`);
  // B restores A's result: its summary names B's own output
  const restored = run(b);
  expect(states(restored).make).toBe('cached');
  expect(lines(restored)).toContain(`wrote ${outB}`);
  // A is still fresh, with its own path, after B's run recorded B's state
  const again = run(a);
  expect(states(again).make).toBe('fresh');
  expect(lines(again)).toContain(`wrote ${outA}`);
  // B changes its input and reruns; A stays fresh
  writeFileSync(join(b, 'in.txt'), 'other input\n');
  expect(states(run(b)).make).toBe('ran');
  const still = run(a);
  expect(states(still).make).toBe('fresh');
  expect(lines(still)).toContain(`wrote ${outA}`);
});
