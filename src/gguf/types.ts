/**
 * The GGUF container's vocabulary: metadata value types, ggml tensor types
 * (with their block layout, needed to know a tensor's byte size) and
 * llama.cpp's file-type names. Numbers follow ggml.h, gguf.h and llama.h.
 */

/** GGUF magic, "GGUF" read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;
/** The alignment of tensor data when `general.alignment` is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** A metadata value's type, as named in the GGUF spec. */
export type GgufValueType =
  | 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32'
  | 'bool' | 'string' | 'array' | 'uint64' | 'int64' | 'float64';

/** Type codes in file order (index = code). */
export const GGUF_VALUE_TYPES: readonly GgufValueType[] = [
  'uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32',
  'bool', 'string', 'array', 'uint64', 'int64', 'float64',
];

/** Byte size of fixed-size value types (strings and arrays are variable). */
export const GGUF_VALUE_SIZE: Readonly<Record<GgufValueType, number>> = {
  uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4,
  bool: 1, string: 0, array: 0, uint64: 8, int64: 8, float64: 8,
};

/**
 * An array value. `values` is absent when the file was read with
 * `skipArrays` (the length is still known); nested arrays have
 * `itemType: 'array'` and GgufArray items.
 */
export interface GgufArray {
  readonly itemType: GgufValueType;
  readonly length: number;
  readonly values?: GgufValue[];
}

/**
 * A metadata value. 64-bit integers are numbers when they fit in 2^53 and
 * bigints otherwise, so ordinary counts stay plain numbers.
 */
export type GgufValue = number | bigint | boolean | string | GgufArray;

/** One metadata entry: its declared type and its value. */
export interface GgufKv {
  readonly type: GgufValueType;
  readonly value: GgufValue;
}

/** Block layout of a ggml tensor type: `blockSize` elements take `typeSize` bytes. */
export interface GgmlTypeInfo {
  readonly id: number;
  readonly name: string;
  readonly blockSize: number;
  readonly typeSize: number;
}

// [id, name, elements per block, bytes per block]; ids 4, 5, 31-33, 36-38 were removed from ggml
const GGML_TYPES: ReadonlyArray<readonly [number, string, number, number]> = [
  [0, 'F32', 1, 4], [1, 'F16', 1, 2], [2, 'Q4_0', 32, 18], [3, 'Q4_1', 32, 20],
  [6, 'Q5_0', 32, 22], [7, 'Q5_1', 32, 24], [8, 'Q8_0', 32, 34], [9, 'Q8_1', 32, 36],
  [10, 'Q2_K', 256, 84], [11, 'Q3_K', 256, 110], [12, 'Q4_K', 256, 144], [13, 'Q5_K', 256, 176],
  [14, 'Q6_K', 256, 210], [15, 'Q8_K', 256, 292], [16, 'IQ2_XXS', 256, 66], [17, 'IQ2_XS', 256, 74],
  [18, 'IQ3_XXS', 256, 98], [19, 'IQ1_S', 256, 50], [20, 'IQ4_NL', 32, 18], [21, 'IQ3_S', 256, 110],
  [22, 'IQ2_S', 256, 82], [23, 'IQ4_XS', 256, 136], [24, 'I8', 1, 1], [25, 'I16', 1, 2],
  [26, 'I32', 1, 4], [27, 'I64', 1, 8], [28, 'F64', 1, 8], [29, 'IQ1_M', 256, 56],
  [30, 'BF16', 1, 2], [34, 'TQ1_0', 256, 54], [35, 'TQ2_0', 256, 66], [39, 'MXFP4', 32, 17],
  [40, 'NVFP4', 64, 36], [41, 'Q1_0', 128, 18], [42, 'Q2_0', 64, 18],
];

const BY_ID = new Map<number, GgmlTypeInfo>(GGML_TYPES.map(([id, name, blockSize, typeSize]) => [id, { id, name, blockSize, typeSize }]));
const BY_NAME = new Map<string, GgmlTypeInfo>([...BY_ID.values()].map((t) => [t.name, t]));

/** The ggml type with this id, or undefined for unknown/removed ids. */
export function ggmlType(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}

/** The ggml type named e.g. `F16`, `q8_0` (case-insensitive). */
export function ggmlTypeByName(name: string): GgmlTypeInfo | undefined {
  return BY_NAME.get(name.toUpperCase());
}

/** Display name of a ggml type id (`Q4_K`), or `type<N>` for an unknown id. */
export function ggmlTypeName(id: number): string {
  return BY_ID.get(id)?.name ?? `type${id}`;
}

/** Bytes taken by `elements` values of a ggml type (elements must fill whole blocks). */
export function ggmlByteSize(t: GgmlTypeInfo, elements: number): number {
  return (elements / t.blockSize) * t.typeSize;
}

// llama.h's llama_ftype, stored as general.file_type
const FILE_TYPES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 7: 'Q8_0', 8: 'Q5_0', 9: 'Q5_1', 10: 'Q2_K',
  11: 'Q3_K_S', 12: 'Q3_K_M', 13: 'Q3_K_L', 14: 'Q4_K_S', 15: 'Q4_K_M', 16: 'Q5_K_S',
  17: 'Q5_K_M', 18: 'Q6_K', 19: 'IQ2_XXS', 20: 'IQ2_XS', 21: 'Q2_K_S', 22: 'IQ3_XS',
  23: 'IQ3_XXS', 24: 'IQ1_S', 25: 'IQ4_NL', 26: 'IQ3_S', 27: 'IQ3_M', 28: 'IQ2_S',
  29: 'IQ2_M', 30: 'IQ4_XS', 31: 'IQ1_M', 32: 'BF16', 36: 'TQ1_0', 37: 'TQ2_0',
  38: 'MXFP4_MOE', 39: 'NVFP4', 40: 'Q1_0', 41: 'Q2_0',
};

/** Name of a `general.file_type` value (`Q4_K_M`), or undefined when unknown. */
export function fileTypeName(ftype: number): string | undefined {
  return FILE_TYPES[ftype];
}

/** The llama_ftype number for a tensor type name, for writers setting general.file_type. */
export function fileTypeFor(typeName: string): number | undefined {
  const n = typeName.toUpperCase();
  for (const [k, v] of Object.entries(FILE_TYPES)) if (v === n) return Number(k);
  return undefined;
}
