/**
 * Independent checks of token lists read from llama.cpp's vocab files: each
 * `<vocab>.gguf.inp` holds test strings and `<vocab>.gguf.out` the token ids
 * llama.cpp's tokenizer produced for them. Decoding those ids with the
 * token strings we read must give the input back.
 */
import { readFileSync } from 'node:fs';

/** The (input, ids) pairs of a vocab file's .inp/.out siblings. */
export function vocabCases(vocabPath: string): Array<{ input: string; ids: number[] }> {
  const inputs = readFileSync(`${vocabPath}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  inputs.pop(); // text after the last separator
  const outs = readFileSync(`${vocabPath}.out`, 'utf8').split('\n');
  return inputs.map((input, i) => ({ input, ids: outs[i]!.trim() === '' ? [] : outs[i]!.trim().split(/\s+/).map(Number) }));
}

/** SentencePiece: "▁" is a space, `<0xNN>` tokens are raw bytes, one leading space is added by the tokenizer. */
export function decodeSpm(tokens: readonly string[], ids: readonly number[]): string {
  const bytes: number[] = [];
  for (const id of ids) {
    const t = tokens[id]!;
    const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(t);
    if (m) bytes.push(parseInt(m[1]!, 16));
    else bytes.push(...Buffer.from(t.replaceAll('\u2581', ' '), 'utf8'));
  }
  const s = Buffer.from(bytes).toString('utf8');
  return s.startsWith(' ') ? s.slice(1) : s;
}

/** GPT-2 byte-level BPE: every byte is mapped to a printable code point. */
export function decodeByteLevel(tokens: readonly string[], ids: readonly number[]): string {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const toByte = new Map<number, number>();
  let n = 0;
  for (let b = 0; b < 256; b++) toByte.set(printable(b) ? b : 256 + n++, b);
  const bytes: number[] = [];
  for (const id of ids) for (const ch of tokens[id]!) bytes.push(toByte.get(ch.codePointAt(0)!)!);
  return Buffer.from(bytes).toString('utf8');
}
