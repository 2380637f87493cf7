import type { TargetDefinition } from './types.js';

const RANK: Record<TargetDefinition['family'], number> = { rocm: 0, cuda: 1, cpu: 2 };

/**
 * The order `--target auto` tries targets in: AMD (ROCm) before NVIDIA
 * before CPU, and within a family the order they were registered in. The
 * one rule for `run` and for `targets`/`doctor`.
 */
export function autoOrder<T>(items: readonly T[], targetOf: (item: T) => TargetDefinition): T[] {
  return items.map((item, i) => ({ item, i })).sort((a, b) => RANK[targetOf(a.item).family] - RANK[targetOf(b.item).family] || a.i - b.i).map((x) => x.item);
}
