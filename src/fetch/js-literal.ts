/**
 * A parser for the JavaScript literal that TheRock's index pages embed
 * (`const files = [{"name": "...", "mtime": 1714000000}, ...];`). It accepts
 * what hand-written or templated JS may contain and JSON.parse does not:
 * single-quoted strings, unquoted keys, trailing commas, comments. It never
 * evaluates anything.
 */

/** A value of the accepted literal subset. */
export type JsValue = string | number | boolean | null | JsValue[] | { [key: string]: JsValue };

/** Parse the literal that starts at `start` in `src`; returns the value and the index after it. */
export function parseJsLiteral(src: string, start: number): { value: JsValue; end: number } {
  let i = start;

  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at offset ${i}`);
  };

  const skip = () => {
    for (;;) {
      while (i < src.length && /\s/.test(src[i]!)) i++;
      if (src.startsWith('//', i)) {
        const nl = src.indexOf('\n', i);
        i = nl < 0 ? src.length : nl + 1;
      } else if (src.startsWith('/*', i)) {
        const e = src.indexOf('*/', i + 2);
        if (e < 0) fail('unterminated comment');
        i = e + 2;
      } else return;
    }
  };

  const str = (): string => {
    const q = src[i++]!;
    let out = '';
    while (i < src.length && src[i] !== q) {
      const c = src[i++]!;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = src[i++];
      if (e === undefined) break;
      if (e === 'u') {
        out += String.fromCharCode(parseInt(src.slice(i, i + 4), 16));
        i += 4;
      } else if (e === 'x') {
        out += String.fromCharCode(parseInt(src.slice(i, i + 2), 16));
        i += 2;
      } else out += ({ n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '0': '\0' } as Record<string, string>)[e] ?? e;
    }
    if (src[i] !== q) fail('unterminated string');
    i++;
    return out;
  };

  const value = (): JsValue => {
    skip();
    const c = src[i];
    if (c === '[') {
      i++;
      const arr: JsValue[] = [];
      for (;;) {
        skip();
        if (src[i] === ']') return i++, arr;
        arr.push(value());
        skip();
        if (src[i] === ',') i++;
        else if (src[i] !== ']') fail('expected , or ]');
      }
    }
    if (c === '{') {
      i++;
      const obj: { [key: string]: JsValue } = {};
      for (;;) {
        skip();
        if (src[i] === '}') return i++, obj;
        let key: string;
        if (src[i] === '"' || src[i] === "'") key = str();
        else {
          const m = /^[A-Za-z_$][\w$]*|^\d+/.exec(src.slice(i, i + 256));
          if (!m) fail('expected a key');
          key = m![0];
          i += key.length;
        }
        skip();
        if (src[i++] !== ':') fail('expected :');
        obj[key] = value();
        skip();
        if (src[i] === ',') i++;
        else if (src[i] !== '}') fail('expected , or }');
      }
    }
    if (c === '"' || c === "'") return str();
    const m = /^(?:-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|true|false|null|undefined)/.exec(src.slice(i, i + 64));
    if (!m) fail('unexpected token');
    i += m![0].length;
    const t = m![0];
    return t === 'true' ? true : t === 'false' ? false : t === 'null' || t === 'undefined' ? null : Number(t);
  };

  const v = value();
  return { value: v, end: i };
}
