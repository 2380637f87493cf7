/**
 * The per-user caches under the system's tmp (compiled configs and
 * plugins, module closures) are a directory any user could have made
 * first. rocmflow runs as root: a planted entry must neither run nor
 * decide a task's key. Real CLI; TMPDIR points at a temp dir made like
 * /tmp (mode 1777), and the cache is handed to uid 65534 as another user
 * would own it.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rocmflow, states, workspace } from '../helpers/cli.js';

const uid = userInfo().uid;

function sharedTmp(): string {
  const t = mkdtempSync(join(tmpdir(), 'rocmflow-systmp-'));
  chmodSync(t, 0o1777);
  return t;
}

function handOver(dir: string): void {
  for (const f of readdirSync(dir)) chownSync(join(dir, f), 65534, 65534);
  chownSync(dir, 65534, 65534);
  chmodSync(dir, 0o777);
}

const TASKS = `import { helper } from './helper.ts';
export default defineTask({
  name: 'say', outputs: ['word'],
  async run(ctx) { const { writeFile } = await import('node:fs/promises'); await writeFile(ctx.outDir + '/word', helper()); },
});`;

describe.skipIf(uid !== 0)('tmp caches another user could have made', () => {
  it('a compiled config planted in a cache directory owned by another user is not run', () => {
    const T = sharedTmp();
    const ws = workspace({ tasks: TASKS, files: { 'helper.ts': "export const helper = () => 'one';\n" } });
    const env = { TMPDIR: T };
    expect(rocmflow(ws, ['graph'], env).code).toBe(0);
    const cache = join(T, `rocmflow-ts-cache-${uid}`);
    const marker = join(T, 'PLANTED-CODE-RAN');
    // the attacker's version of the cached config: same inputs, their code
    for (const f of readdirSync(cache)) {
      const entry = JSON.parse(readFileSync(join(cache, f), 'utf8')) as { inputs: Record<string, string>; code?: string };
      if (typeof entry.code === 'string') {
        entry.code = `import { writeFileSync } from 'node:fs'; writeFileSync(${JSON.stringify(marker)}, 'x');\n${entry.code}`;
        writeFileSync(join(cache, f), JSON.stringify(entry));
      }
    }
    handOver(cache);
    const r = rocmflow(ws, ['graph'], env);
    expect(r.code).toBe(0);
    expect(existsSync(marker)).toBe(false);
    expect(r.stderr).toContain(`rocmflow: warning: ${cache}: owned by uid 65534, not ${uid}; not using it as a cache`);
  });

  it('a planted module closure does not hide an edit of an imported module, and a link in the cache\'s place is not followed', () => {
    const T = sharedTmp();
    const ws = workspace({ tasks: TASKS, files: { 'helper.ts': "export const helper = () => 'one';\n" } });
    const env = { TMPDIR: T };
    const first = rocmflow(ws, ['run', 'say', '--json'], env);
    expect(states(first).say).toBe('ran');
    const cache = join(T, `rocmflow-ts-cache-${uid}`);
    // the attacker's closure lists the task file alone, with true stamps
    const tasksFile = join(ws, 'tasks.ts');
    for (const f of readdirSync(cache).filter((n) => n.startsWith('closure-'))) {
      const entry = JSON.parse(readFileSync(join(cache, f), 'utf8')) as { stamps: Record<string, string> };
      if (tasksFile in entry.stamps) writeFileSync(join(cache, f), JSON.stringify({ stamps: { [tasksFile]: entry.stamps[tasksFile] } }));
    }
    handOver(cache);
    writeFileSync(join(ws, 'helper.ts'), "export const helper = () => 'two';\n");
    const r = rocmflow(ws, ['run', 'say', '--json'], env);
    expect(states(r).say).toBe('ran');
    expect(readFileSync(join(ws, '.rocmflow/out/cpu/say/word'), 'utf8')).toBe('two');

    // the same directory behind a link (to a directory of this user's own) is refused too
    const elsewhere = join(T, 'elsewhere');
    mkdirSync(elsewhere, { mode: 0o700 });
    renameSync(cache, join(T, 'gone'));
    symlinkSync(elsewhere, cache);
    const r2 = rocmflow(ws, ['graph'], env);
    expect(r2.code).toBe(0);
    expect(r2.stderr).toContain(`${cache}: not a directory (a link or a file)`);
    expect(readdirSync(elsewhere)).toEqual([]);
  });
});
