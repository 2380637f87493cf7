/**
 * The evaluation text of the numeric check: English-like prose generated
 * from a fixed word list by a seeded PRNG, so it ships with rocmflow, is the
 * same on every machine, and is long enough for several perplexity chunks
 * at small context sizes. (The numbers it yields only compare runtimes with
 * each other; the text does not need to mean anything.)
 */
import { Prng } from '../gguf/prng.js';

const SUBJECTS = ['the river', 'a small boat', 'the old map', 'our neighbour', 'the garden', 'a quiet engine', 'the library',
  'every morning', 'the winter wind', 'a careful reader', 'the market square', 'the last train', 'a tired horse', 'the lighthouse'];
const VERBS = ['carries', 'remembers', 'follows', 'opens', 'measures', 'gathers', 'explains', 'crosses', 'keeps', 'builds',
  'answers', 'watches', 'turns toward', 'waits for'];
const OBJECTS = ['the distant hills', 'a bundle of letters', 'the morning light', 'seven wooden chairs', 'the northern road',
  'a basket of apples', 'the harbour wall', 'an unfinished song', 'the evening bell', 'a page of numbers', 'the frozen lake',
  'two silver coins', 'the sleeping town', 'a column of smoke'];
const TAILS = ['before the rain begins', 'while the children sleep', 'as the clocks strike nine', 'without a single word',
  'because nobody else will', 'until the lamps are lit', 'in the usual way', 'after the long summer', 'with great patience',
  'near the edge of the forest'];

/** About `chars` characters of prose for `seed` (default 1). */
export function evalText(chars = 24_000, seed = 1): string {
  const rng = new Prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[rng.nextU32() % xs.length]!;
  const paragraphs: string[] = [];
  let size = 0;
  while (size < chars) {
    const sentences: string[] = [];
    const n = 3 + (rng.nextU32() % 4);
    for (let i = 0; i < n; i++) {
      const s = `${pick(SUBJECTS)} ${pick(VERBS)} ${pick(OBJECTS)}${rng.nextU32() % 2 ? ` ${pick(TAILS)}` : ''}.`;
      sentences.push(s[0]!.toUpperCase() + s.slice(1));
    }
    const p = sentences.join(' ');
    paragraphs.push(p);
    size += p.length + 2;
  }
  return paragraphs.join('\n\n') + '\n';
}
