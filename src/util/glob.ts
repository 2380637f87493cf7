/**
 * Glob matching for keep/drop rules and input globs: `*` (no slash), `**`
 * (any depth, including none), `?`, `[abc]`, `{a,b}`. A pattern without a
 * slash matches a path's basename.
 */
const cache = new Map<string, RegExp>();

export function globToRegExp(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (re) return re;
  let src = '';
  let inBrace = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        // "**/" matches zero or more directories; a trailing "**" matches everything below
        if (pattern[i + 2] === '/') {
          src += '(?:.*/)?';
          i += 2;
        } else {
          src += '.*';
          i += 1;
        }
      } else src += '[^/]*';
    } else if (c === '?') src += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) src += '\\[';
      else {
        let cls = pattern.slice(i + 1, end);
        if (cls.startsWith('!')) cls = '^' + cls.slice(1);
        src += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '{') {
      inBrace++;
      src += '(?:';
    } else if (c === '}' && inBrace > 0) {
      inBrace--;
      src += ')';
    } else if (c === ',' && inBrace > 0) src += '|';
    else src += c.replace(/[.+^$()|\\]/g, '\\$&');
  }
  re = new RegExp(`^${src}$`);
  cache.set(pattern, re);
  return re;
}

/** Does `path` match `pattern`? Slash-free patterns match the basename. */
export function matchGlob(path: string, pattern: string): boolean {
  if (!pattern.includes('/')) {
    const base = path.slice(path.lastIndexOf('/') + 1);
    return globToRegExp(pattern).test(base);
  }
  return globToRegExp(pattern).test(path);
}

export function matchAny(path: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => matchGlob(path, p));
}

/** Does the string contain glob syntax? */
export function isGlob(s: string): boolean {
  return /[*?[{]/.test(s);
}
