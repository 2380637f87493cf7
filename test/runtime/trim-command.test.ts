import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandIO } from '../../src/cli/command.js';
import { trimCommand } from '../../src/cli/commands/trim.js';
import { traceInRoot } from '../../src/runtime/trace-in-root.js';
import { cleanTemps, put, temp } from './helpers.js';

let layer: string;
let logDir: string;
const CMD = ['sh', '-c', 'ls /opt/d && cat /opt/d/notes.txt'];

function io(cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CommandIO = { out: (l) => out.push(l), err: (l) => err.push(l), cwd, env: process.env, color: false, signal: new AbortController().signal };
  return { io: value, out, err };
}

beforeAll(async () => {
  layer = temp('rocmflow-cmd-');
  put(join(layer, 'notes.txt'), 'hello from the layer\n');
  logDir = temp('rocmflow-log-');
  const t = await traceInRoot({ layout: { base: '/', layers: [{ mount: '/opt/d', source: layer }] }, command: CMD, logDir });
  expect(t.run.exitCode).toBe(0);
});

afterAll(cleanTemps);

describe('rocmflow trim', () => {
  it('trims, assembles, reports and verifies from a trace file', async () => {
    const out = temp('rocmflow-out-');
    const c = io(out);
    const code = await trimCommand.run([join(logDir, 'trace.log'), '--dest', 'root', '--layer', `/opt/d=${layer}`, '--report', 'report.md', '--', ...CMD], c.io);
    expect(code).toBe(0);
    expect(c.out.join('\n')).toMatch(/trimmed root: .*root \(\d+ files/);
    expect(c.out).toContain('verified with bwrap: identical output');
    expect(readFileSync(join(out, 'root/opt/d/notes.txt'), 'utf8')).toBe('hello from the layer\n');
    expect(JSON.parse(readFileSync(join(out, 'root.manifest.json'), 'utf8')).files).toBeGreaterThan(3);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('`/opt/d`');
  });

  it('fails verification when a drop rule removes a needed library, listing it', async () => {
    const out = temp('rocmflow-out-');
    const run = trimCommand.run([join(logDir, 'trace.log'), '--dest', join(out, 'root'), '--layer', `/opt/d=${layer}`, '--drop', '**/libpcre2-8.so*', '--', ...CMD], io(out).io);
    const err = await run.catch((e) => e);
    expect(err).toMatchObject({ code: 'E_VERIFY', exitCode: 1 });
    expect(err.details.some((d: string) => d.includes('libpcre2-8.so'))).toBe(true);
    expect(existsSync(join(out, 'root/opt/d/notes.txt'))).toBe(true);
  });

  it('names usage errors', async () => {
    await expect(trimCommand.run(['x.log'], io('/').io)).rejects.toMatchObject({ code: 'E_USAGE', exitCode: 2, message: expect.stringContaining('--dest') });
    await expect(trimCommand.run(['x.log', '--dest', 'd', '--layer', 'nope'], io('/').io)).rejects.toMatchObject({ code: 'E_USAGE', message: expect.stringContaining('--layer') });
  });
});
