import { ggufArrayLength, ggufValue, type GgufFile } from './read.js';
import { fileTypeName, ggmlTypeName } from './types.js';

/** A model's headline facts, as `rocmflow model info` prints them. */
export interface ModelSummary {
  /** `general.architecture`, e.g. `llama`, `gemma3`. */
  architecture: string | null;
  /** `general.name`. */
  name: string | null;
  /** Sum of all tensors' element counts. */
  parameters: number;
  /** `general.file_type` by name (`Q4_K_M`), else the type holding most parameters (`F16`). */
  quantization: string | null;
  /** `<arch>.context_length`. */
  contextLength: number | null;
  /** `<arch>.embedding_length`. */
  embeddingLength: number | null;
  /** `<arch>.block_count`. */
  layers: number | null;
  /** `<arch>.vocab_size`, else the length of `tokenizer.ggml.tokens`. */
  vocabSize: number | null;
  /** File size in bytes. */
  fileSize: number;
}

/** Summarise a read GGUF file (works on files read with skipArrays). */
export function describeModel(g: GgufFile): ModelSummary {
  const str = (k: string) => {
    const v = ggufValue(g, k);
    return typeof v === 'string' ? v : null;
  };
  const num = (k: string) => {
    const v = ggufValue(g, k);
    return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : null;
  };
  const arch = str('general.architecture');
  const perArch = (k: string) => (arch ? num(`${arch}.${k}`) : null);

  const byType = new Map<number, number>();
  let parameters = 0;
  for (const t of g.tensors) {
    parameters += t.elements;
    byType.set(t.type, (byType.get(t.type) ?? 0) + t.elements);
  }
  const ftype = num('general.file_type');
  let quantization = ftype !== null ? fileTypeName(ftype) ?? `file type ${ftype}` : null;
  if (quantization === null && byType.size > 0) {
    const [top] = [...byType.entries()].sort((a, b) => b[1] - a[1]);
    quantization = ggmlTypeName(top![0]);
  }
  return {
    architecture: arch,
    name: str('general.name'),
    parameters,
    quantization,
    contextLength: perArch('context_length'),
    embeddingLength: perArch('embedding_length'),
    layers: perArch('block_count'),
    vocabSize: perArch('vocab_size') ?? ggufArrayLength(g, 'tokenizer.ggml.tokens') ?? null,
    fileSize: g.fileSize,
  };
}

/** 1234567 → "1.2M", 3.4e9 → "3.4B": how parameter counts are usually quoted. */
export function humanCount(n: number): string {
  const units: Array<[number, string]> = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'K']];
  for (const [v, u] of units) if (n >= v) return `${(n / v).toFixed(n / v < 10 ? 1 : 0)}${u}`;
  return String(n);
}

/** 4194304 → "4.0 MiB". */
export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}
