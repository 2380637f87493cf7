/**
 * Decoding of the values strace prints: quoted C strings (`"a\"b\342\x2f"`,
 * possibly cut short with `...`) and `-y` fd annotations (`3</real/path>`,
 * `AT_FDCWD</cwd>`), whose paths use the same escapes.
 */

/** A decoded strace string. */
export interface StraceString {
  value: string;
  /** strace cut the string (`"..."...`): `value` is only a prefix. */
  truncated: boolean;
}

const SIMPLE_ESCAPES: Record<string, number> = { n: 10, t: 9, r: 13, v: 11, f: 12, a: 7, b: 8, e: 27 };

/**
 * Decode the escapes strace uses (`\"`, `\\`, `\n`..., octal `\0`-`\377`
 * with 1 to 3 digits, hex `\xHH`) into bytes, then read the bytes as UTF-8:
 * strace prints every non-ASCII byte escaped, so a UTF-8 path arrives as
 * `\342\200\224`.
 */
export function unescapeStrace(body: string): string {
  if (!body.includes('\\')) return body;
  const bytes: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      const code = c.charCodeAt(0);
      if (code < 0x80) bytes.push(code);
      else for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
      continue;
    }
    const n = body[i + 1];
    if (n === undefined) {
      bytes.push(0x5c);
      break;
    }
    if (n === 'x' && /^[0-9a-fA-F]{2}$/.test(body.slice(i + 2, i + 4))) {
      bytes.push(parseInt(body.slice(i + 2, i + 4), 16));
      i += 3;
    } else if (n >= '0' && n <= '7') {
      let j = i + 1;
      while (j < i + 4 && j < body.length && body[j]! >= '0' && body[j]! <= '7') j++;
      bytes.push(parseInt(body.slice(i + 1, j), 8) & 0xff);
      i = j - 1;
    } else if (n in SIMPLE_ESCAPES) {
      bytes.push(SIMPLE_ESCAPES[n]!);
      i++;
    } else {
      // \" \\ and any other escaped printable character stand for themselves
      bytes.push(n.charCodeAt(0));
      i++;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Parse one argument token that is a quoted string (`"..."` or `"..."...`).
 * Returns undefined for anything else (NULL, a pointer, a number).
 */
export function parseQuoted(token: string): StraceString | undefined {
  const t = token.trim();
  if (!t.startsWith('"')) return undefined;
  let end = -1;
  for (let i = 1; i < t.length; i++) {
    if (t[i] === '\\') i++;
    else if (t[i] === '"') {
      end = i;
      break;
    }
  }
  if (end < 0) return undefined;
  return { value: unescapeStrace(t.slice(1, end)), truncated: t.slice(end + 1).startsWith('...') };
}

/** An fd-like token with its `-y` annotation: `3</x>`, `AT_FDCWD</x>`, `5<pipe:[123]>`. */
export interface Annotated {
  /** The number (or AT_FDCWD) before the annotation. */
  head: string;
  /** The decoded annotation, `(deleted)` stripped; undefined when there is none. */
  annotation?: string;
  /** The annotation is a filesystem path (not a pipe, socket or anon inode). */
  isPath: boolean;
}

/** Split `3</usr/lib/x.so>` into head and decoded annotation. */
export function parseAnnotated(token: string): Annotated {
  const t = token.trim();
  const lt = t.indexOf('<');
  if (lt < 0 || !t.endsWith('>')) return { head: t, isPath: false };
  // -yy adds the device numbers of device fds: </dev/null<char 1:3>>
  let annotation = unescapeStrace(t.slice(lt + 1, -1).replace(/<(?:char|block) \d+:\d+>$/, ''));
  if (annotation.endsWith(' (deleted)')) annotation = annotation.slice(0, -' (deleted)'.length);
  // memfd files show as /memfd:name: they live nowhere on disk
  const isPath = annotation.startsWith('/') && !annotation.startsWith('/memfd:');
  return { head: t.slice(0, lt), annotation, isPath };
}
