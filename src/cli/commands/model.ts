/**
 * `rocmflow model info FILE [--json]` and `rocmflow model tiny --vocab V --out F`.
 */
import { resolve } from 'node:path';
import { usageError } from '../../errors.js';
import { describeModel, humanBytes, humanCount } from '../../gguf/describe.js';
import { readGguf } from '../../gguf/read.js';
import { writeTinyModel, type TinyModelOptions } from '../../gguf/tiny-model.js';
import type { Command, CommandIO } from '../command.js';

const USAGE = `Usage:
  rocmflow model info FILE [--json]
      Architecture, parameter count, quantisation, context length, layers,
      vocabulary size and file size of a GGUF model. Reads only the header.
  rocmflow model tiny --vocab VOCAB.gguf --out FILE [--seed N] [--layers N]
                      [--embd N] [--heads N] [--ff N] [--context N] [--type F32|F16|Q8_0]
      Write a small random-weight llama model (a few MB) whose tokenizer comes
      from a vocab-only GGUF (llama.cpp ships them under models/). The same
      options always give the same bytes.`;

/** Split argv into positionals and `--flag value` / `--flag` options. */
function parseArgs(argv: string[], valued: readonly string[], bool: readonly string[]) {
  const pos: string[] = [];
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      pos.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if (bool.includes(name) && eq < 0) flags[name] = true;
    else if (valued.includes(name)) {
      const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw usageError('E_USAGE', `--${name} needs a value`);
      flags[name] = v;
    } else throw usageError('E_USAGE', `unknown option ${a} (see rocmflow model --help)`);
  }
  return { pos, flags };
}

function int(flags: Record<string, string | true>, name: string): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw usageError('E_USAGE', `--${name}: expected a non-negative integer, got ${String(v)}`);
  return Number(v);
}

async function info(argv: string[], io: CommandIO): Promise<number> {
  const { pos, flags } = parseArgs(argv, [], ['json']);
  if (pos.length !== 1) throw usageError('E_USAGE', 'model info: expected one FILE (see rocmflow model --help)');
  const path = resolve(io.cwd, pos[0]!);
  const g = await readGguf(path, { skipArrays: true });
  const m = describeModel(g);
  if (flags.json) {
    io.out(JSON.stringify({ path, version: g.version, tensors: g.tensors.length, metadataKeys: g.metadata.size, ...m }, null, 2));
    return 0;
  }
  const or = (v: number | string | null) => (v === null ? '-' : String(v));
  const rows: Array<[string, string]> = [
    ['file', path],
    ['architecture', or(m.architecture)],
    ['name', or(m.name)],
    ['parameters', `${humanCount(m.parameters)} (${m.parameters})`],
    ['quantization', or(m.quantization)],
    ['context length', or(m.contextLength)],
    ['embedding length', or(m.embeddingLength)],
    ['layers', or(m.layers)],
    ['vocab size', or(m.vocabSize)],
    ['file size', `${humanBytes(m.fileSize)} (${m.fileSize} bytes)`],
    ['gguf', `v${g.version}, ${g.tensors.length} tensors, ${g.metadata.size} metadata keys`],
  ];
  for (const [k, v] of rows) io.out(`${k.padEnd(17)}${v}`);
  return 0;
}

async function tiny(argv: string[], io: CommandIO): Promise<number> {
  const { pos, flags } = parseArgs(argv, ['vocab', 'out', 'seed', 'layers', 'embd', 'heads', 'ff', 'context', 'type'], []);
  if (pos.length) throw usageError('E_USAGE', `model tiny: unexpected argument ${pos[0]}`);
  if (typeof flags.vocab !== 'string') throw usageError('E_USAGE', 'model tiny: --vocab VOCAB.gguf is required (e.g. llama.cpp models/ggml-vocab-llama-spm.gguf)');
  if (typeof flags.out !== 'string') throw usageError('E_USAGE', 'model tiny: --out FILE is required');
  const type = flags.type;
  if (type !== undefined && !['F32', 'F16', 'Q8_0'].includes(String(type).toUpperCase()))
    throw usageError('E_USAGE', `--type: expected F32, F16 or Q8_0, got ${String(type)}`);
  const opts: TinyModelOptions = {
    vocab: resolve(io.cwd, flags.vocab),
    out: resolve(io.cwd, flags.out),
    seed: int(flags, 'seed'),
    layers: int(flags, 'layers'),
    embd: int(flags, 'embd'),
    heads: int(flags, 'heads'),
    ff: int(flags, 'ff'),
    contextLength: int(flags, 'context'),
    weightType: type === undefined ? undefined : (String(type).toUpperCase() as TinyModelOptions['weightType']),
  };
  const r = await writeTinyModel(opts);
  io.out(`wrote ${r.path} (${humanBytes(r.bytes)}, sha256 ${r.sha256})`);
  return 0;
}

/** `rocmflow model`: inspect GGUF models and write the tiny test model. */
export const modelCommand: Command = {
  name: 'model',
  summary: 'Inspect a GGUF model (info) or write the small offline test model (tiny)',
  usage: USAGE,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help' || rest.includes('--help') || rest.includes('-h')) {
      io.out(USAGE);
      return sub === undefined ? 2 : 0;
    }
    if (sub === 'info') return info(rest, io);
    if (sub === 'tiny') return tiny(rest, io);
    throw usageError('E_USAGE', `unknown subcommand "model ${sub}" (expected info or tiny)`);
  },
};
