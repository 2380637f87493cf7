/**
 * Input names that are not valid UTF-8: the walk neither stops at them nor
 * loses them, in a glob and in a plain directory input.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rocmflow, states, workspace } from '../helpers/cli.js';

/** A file whose name has the byte 0xff (never valid UTF-8). */
function badName(dir: string, prefix: string, content: string): void {
  writeFileSync(Buffer.concat([Buffer.from(join(dir, prefix)), Buffer.from([0xff]), Buffer.from('.txt')]), content);
}

describe('non-UTF-8 input names', () => {
  for (const [form, input] of [['a glob', 'src/**'], ['a plain directory', 'src']] as const)
    it(`with ${form} input, the walk does not stop at the odd name and a change to that file is noticed`, () => {
      const ws = workspace({
        tasks: `export default defineTask({ name: 'cat', inputs: () => ({ files: [${JSON.stringify(input)}] }), outputs: ['all'], async run(ctx) {
          await ctx.$\`cat \${ctx.projectRoot}/src/* > all\`;
        } });`,
      });
      mkdirSync(join(ws, 'src'));
      badName(join(ws, 'src'), 'a', 'odd\n');
      // names readdir returns after the odd one (the order is the file system's: make several)
      for (const n of ['b', 'c', 'd', 'e', 'z']) writeFileSync(join(ws, 'src', `${n}.txt`), `${n}\n`);
      const first = rocmflow(ws, ['run', 'cat', '--json']);
      expect(first.code, first.stderr + first.stdout).toBe(0);
      expect(states(first)).toEqual({ cat: 'ran' });
      expect(states(rocmflow(ws, ['run', 'cat', '--json']))).toEqual({ cat: 'fresh' });
      badName(join(ws, 'src'), 'a', 'odd changed\n');
      const r = rocmflow(ws, ['run', 'cat', '--json']);
      expect(states(r)).toEqual({ cat: 'ran' });
      // the change is named by the key that stands for the odd bytes
      expect(JSON.stringify(r.events)).toContain('src/a%FF.txt');
    });
});
