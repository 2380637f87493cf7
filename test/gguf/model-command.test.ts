import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelCommand } from '../../src/cli/commands/model.js';
import type { CommandIO } from '../../src/cli/command.js';
import { RocmflowError } from '../../src/errors.js';
import { describeModel } from '../../src/gguf/describe.js';
import { readGguf } from '../../src/gguf/read.js';
import { writeTinyModel } from '../../src/gguf/tiny-model.js';
import { vocabFile } from '../helpers/llama.js';

let tmp: string;
let vocab: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'rocmflow-model-cmd-'));
  vocab = await vocabFile('ggml-vocab-llama-spm.gguf');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CommandIO = { out: (l) => out.push(l), err: (l) => err.push(l), cwd: tmp, env: {}, color: false, signal: new AbortController().signal };
  const code = await modelCommand.run(argv, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('rocmflow model', () => {
  it('tiny writes the same bytes as writeTinyModel for the same seed; info reads it back', async () => {
    const r = await run('tiny', '--vocab', vocab, '--out', 'cli-tiny.gguf', '--seed', '5', '--layers', '3');
    expect(r.code).toBe(0);
    const path = join(tmp, 'cli-tiny.gguf');
    const sha = createHash('sha256').update(readFileSync(path)).digest('hex');
    expect(r.out).toContain(sha);
    const direct = await writeTinyModel({ vocab, out: join(tmp, 'direct.gguf'), seed: 5, layers: 3 });
    expect(direct.sha256).toBe(sha);

    const info = await run('info', 'cli-tiny.gguf');
    expect(info.code).toBe(0);
    const field = (name: string) => new RegExp(`^${name} +(.+)$`, 'm').exec(info.out)?.[1];
    const m = describeModel(await readGguf(path));
    expect(field('architecture')).toBe('llama');
    expect(field('parameters')).toBe(`${(m.parameters / 1e6).toFixed(1)}M (${m.parameters})`);
    expect(field('quantization')).toBe('Q8_0');
    expect(field('context length')).toBe('512');
    expect(field('layers')).toBe('3');
    expect(field('vocab size')).toBe('32000');
    expect(field('file size')).toContain(`(${readFileSync(path).length} bytes)`);
    expect(field('gguf')).toBe(`v3, ${3 + 9 * 3} tensors, ${(await readGguf(path)).metadata.size} metadata keys`);

    const json = JSON.parse((await run('info', path, '--json')).out);
    expect(json).toEqual({ path, version: 3, tensors: 30, metadataKeys: json.metadataKeys, ...m });
  });

  it('usage mistakes are usage errors (exit 2) and a bad file is a GGUF error naming it', async () => {
    const fails = async (argv: string[], re: RegExp, exit: number) => {
      const e = await run(...argv).then(() => null, (x: unknown) => x);
      expect(e).toBeInstanceOf(RocmflowError);
      expect((e as RocmflowError).message).toMatch(re);
      expect((e as RocmflowError).exitCode).toBe(exit);
    };
    await fails(['info'], /expected one FILE/, 2);
    await fails(['frobnicate'], /unknown subcommand "model frobnicate"/, 2);
    await fails(['tiny', '--out', 'x.gguf'], /--vocab VOCAB\.gguf is required/, 2);
    await fails(['tiny', '--vocab', vocab, '--out', 'x.gguf', '--seed', 'abc'], /--seed: expected a non-negative integer/, 2);
    await fails(['tiny', '--vocab', vocab, '--out', 'x.gguf', '--embd', '40'], /embd: must be a multiple of 32/, 2);
    await fails(['info', 'x.gguf', '--verbose'], /unknown option --verbose/, 2);
    writeFileSync(join(tmp, 'bad.gguf'), Buffer.from('GGUF\x01\x00\x00\x00', 'latin1'));
    await fails(['info', 'bad.gguf'], new RegExp(`${join(tmp, 'bad.gguf')}: GGUF version 1 is not supported`), 1);
    expect((await run('--help')).out).toContain('rocmflow model info FILE');
  });
});
