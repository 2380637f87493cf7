/**
 * llama.cpp's logger thread is not flushed at exit, so under load a CLI run
 * that exited 0 can lose the end of its text and the timing lines after it.
 * The workload runs the CLI again until its output is whole. The stand-in
 * CLI here is a shell script run through the real sandbox runner; it drops
 * its closing lines on chosen runs, as a loaded machine makes llama.cpp do.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCompletionCli } from '../../src/llama/workload.js';
import { sandboxRunner } from '../../src/pipeline/workload-runner.js';
import { RocmflowError } from '../../src/errors.js';

const temps: string[] = [];
afterAll(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A CLI that prints its text and timing lines, except on the runs listed in `lossy` (1-based). */
async function fakeCli(lossy: number[]) {
  const dir = mkdtempSync(join(tmpdir(), 'rocmflow-cli-'));
  temps.push(dir);
  mkdirSync(join(dir, 'bin'));
  // the count lives outside the (read-only) layer, bound writable
  const state = mkdtempSync(join(tmpdir(), 'rocmflow-cli-state-'));
  temps.push(state);
  const count = join(state, 'runs');
  writeFileSync(count, '');
  writeFileSync(
    join(dir, 'bin/llama-completion'),
    `#!/bin/sh
echo run >> ${count}
n=$(wc -l < ${count})
case " ${lossy.join(' ')} " in
  *" $n "*) printf 'чка┤'; exit 0 ;;
esac
printf 'чка┤址 dangerous界 Kü⁶ख'
echo 'llama_perf_context_print:        load time =      12.34 ms' >&2
exit 0
`,
  );
  chmodSync(join(dir, 'bin/llama-completion'), 0o755);
  const runner = await sandboxRunner({ layout: { base: '/', layers: [{ mount: '/opt/fake', source: dir }] }, binds: [{ source: state, dest: state, rw: true }] });
  const runs = () => readFileSync(count, 'utf8').split('\n').filter(Boolean).length;
  return { runner, runs };
}

describe('the completion CLI under a logger that loses its last lines', () => {
  it('a run without its closing lines is run again, and the whole text is the one kept', async () => {
    const { runner, runs } = await fakeCli([1]);
    const log: string[] = [];
    const r = await runCompletionCli(runner, ['/opt/fake/bin/llama-completion'], 'llama-completion', (l) => log.push(l));
    expect(r.stdout).toBe('чка┤址 dangerous界 Kü⁶ख');
    expect(runs()).toBe(2);
    expect(log.join('\n')).toMatch(/without its closing timing lines .*running it again/);
  });

  it('a whole first run is not repeated', async () => {
    const { runner, runs } = await fakeCli([]);
    const r = await runCompletionCli(runner, ['/opt/fake/bin/llama-completion'], 'llama-completion');
    expect(r.stdout).toBe('чка┤址 dangerous界 Kü⁶ख');
    expect(runs()).toBe(1);
  });

  it('three runs without their closing lines are an error naming the CLI', async () => {
    const { runner, runs } = await fakeCli([1, 2, 3]);
    const err = await runCompletionCli(runner, ['/opt/fake/bin/llama-completion'], 'llama-completion').catch((e) => e);
    expect(err).toBeInstanceOf(RocmflowError);
    expect((err as Error).message).toMatch(/^llama-completion exited 0 three times without its closing timing lines/);
    expect(runs()).toBe(3);
  });
});
