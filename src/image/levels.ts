/** Compression formats and default levels, apart from the compressors (compress.ts), for code that only names them. */

/** How a layer or export is compressed. `none` is a plain tar. */
export type Compression = 'zstd' | 'gzip' | 'none';

/** Default zstd levels: fast for layers rebuilt often, strong for exports kept around. */
export const LAYER_ZSTD_LEVEL = 3;
export const EXPORT_ZSTD_LEVEL = 19;
