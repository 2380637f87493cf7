/**
 * Treemap layout: the squarified algorithm (Bruls, Huizing and van Wijk,
 * 2000). Items, largest first, are laid in rows along the shorter side of
 * the free rectangle; a row is closed when one more item would make its
 * worst aspect ratio worse. Nested trees reserve a header strip for each
 * group's label and a padding, so groups stay visible around their items.
 */

/** A rectangle in pixels. */
export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Worst aspect ratio of a row of areas laid along `side`. */
function worst(sum: number, min: number, max: number, side: number): number {
  const s2 = side * side;
  const q = sum * sum;
  return Math.max((s2 * max) / q, q / (s2 * min));
}

/**
 * Rectangles for `values` (in the given order; largest first gives the best
 * shapes) filling `r`, each with an area proportional to its value. Zero
 * and negative values get empty rectangles.
 */
export function squarify(values: readonly number[], r: Rect): Rect[] {
  const out: Rect[] = values.map(() => ({ x: r.x, y: r.y, w: 0, h: 0 }));
  const items = values.map((v, i) => ({ v, i })).filter((x) => x.v > 0);
  const total = items.reduce((t, x) => t + x.v, 0);
  if (!total || r.w <= 0 || r.h <= 0) return out;
  const scale = (r.w * r.h) / total;
  let { x, y, w, h } = r;
  let i = 0;
  while (i < items.length) {
    const side = Math.min(w, h);
    let sum = items[i]!.v * scale;
    let min = sum;
    let max = sum;
    let j = i + 1;
    while (j < items.length) {
      const a = items[j]!.v * scale;
      const next = worst(sum + a, Math.min(min, a), Math.max(max, a), side);
      if (next > worst(sum, min, max, side)) break;
      sum += a;
      min = Math.min(min, a);
      max = Math.max(max, a);
      j++;
    }
    const thick = Math.min(sum / side, w >= h ? w : h);
    let offset = 0;
    for (let k = i; k < j; k++) {
      const len = (items[k]!.v * scale) / thick;
      out[items[k]!.i] = w >= h ? { x, y: y + offset, w: thick, h: len } : { x: x + offset, y, w: len, h: thick };
      offset += len;
    }
    if (w >= h) {
      x += thick;
      w -= thick;
    } else {
      y += thick;
      h -= thick;
    }
    i = j;
  }
  return out;
}

/** A tree to lay out: a value per node (a parent's is the sum of its children's). */
export interface TreeInput<T> {
  node: T;
  value: number;
  children?: TreeInput<T>[];
}

/** A laid-out node: its rectangle, depth, and whether it is a leaf. */
export interface PlacedNode<T> {
  node: T;
  rect: Rect;
  depth: number;
  leaf: boolean;
  /** The header strip a group's label goes in (groups big enough for one). */
  header?: Rect;
}

export interface NestedLayoutOptions {
  /** Height of a group's label strip. @default 14 */
  header?: number;
  /** Inner padding of a group. @default 2 */
  pad?: number;
  /** Groups smaller than this (either side) get no header and no padding. @default 24 */
  minGroup?: number;
}

/** Lay out a tree: every node placed, parents before their children. */
export function layoutTree<T>(root: TreeInput<T>, r: Rect, opts: NestedLayoutOptions = {}): PlacedNode<T>[] {
  const header = opts.header ?? 14;
  const pad = opts.pad ?? 2;
  const minGroup = opts.minGroup ?? 24;
  const out: PlacedNode<T>[] = [];
  const place = (t: TreeInput<T>, rect: Rect, depth: number) => {
    const kids = (t.children ?? []).filter((c) => c.value > 0);
    if (!kids.length) {
      out.push({ node: t.node, rect, depth, leaf: true });
      return;
    }
    const roomy = depth > 0 && rect.w >= minGroup && rect.h >= minGroup + header;
    const placed: PlacedNode<T> = { node: t.node, rect, depth, leaf: false };
    let inner = rect;
    if (roomy) {
      placed.header = { x: rect.x, y: rect.y, w: rect.w, h: header };
      inner = { x: rect.x + pad, y: rect.y + header, w: rect.w - 2 * pad, h: rect.h - header - pad };
    }
    out.push(placed);
    kids.sort((a, b) => b.value - a.value);
    const rects = squarify(kids.map((k) => k.value), inner);
    kids.forEach((k, i) => place(k, rects[i]!, depth + 1));
  };
  place(root, r, 0);
  return out;
}
