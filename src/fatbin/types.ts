/**
 * What the fat-binary readers report: containers (clang offload bundles,
 * compressed bundles, NVIDIA fatbins) and the code objects they hold.
 */
import type { CcobHeader } from './ccob.js';

/** Which vendor's device code a file carries. */
export type FatbinFormat = 'hip' | 'cuda';

/** One code object (or host entry, or PTX) inside a container. */
export interface FatbinEntry {
  /**
   * The arch key: an AMD target id (`gfx1100`, `gfx90a:xnack+`,
   * `gfx11-generic`) or `host`; for CUDA `sm_90`, `sm_90a`, `sm_100f` (SASS)
   * or `compute_90` (PTX).
   */
  arch: string;
  /** The name the container gives it: the bundle entry id, or for CUDA `ELF sm_90` / `PTX compute_90`. */
  id: string;
  /** Device code, the empty host entry of a bundle, or PTX. */
  kind: 'code' | 'host' | 'ptx';
  /**
   * File offset of the code's bytes. For a bundle inside a compressed one,
   * the offset inside the decompressed bundle. For CUDA, the payload's
   * offset: the entry's own header is the `headerSize` bytes before it.
   */
  offset: number;
  /** Bytes of code as stored (CUDA: the payload, padded; inside compressed bundles: decompressed bytes). */
  size: number;
  /** CUDA: the size of the entry's own header, just before `offset`. */
  headerSize?: number;
  /** CUDA: the payload is compressed by the fatbin itself. */
  compression?: 'lz4' | 'zstd' | 'unknown';
  /** CUDA: the payload's size once decompressed. */
  uncompressedSize?: number;
}

/** One container of entries, and where it lies in the file. */
export interface FatbinContainer {
  format: FatbinFormat;
  /** `zstd-cubin`: one CUDA ELF as a bare zstd frame in a data section (cuBLASLt's `.ldata`). */
  kind: 'bundle' | 'compressed-bundle' | 'nv-fatbin' | 'zstd-cubin';
  /** The ELF section it was found in. */
  section: string;
  /** File offset of its first byte. */
  offset: number;
  /** Bytes it spans in the file. */
  size: number;
  /** Bytes of its own header (for compressed bundles, of the bundle inside). */
  headerSize: number;
  entries: FatbinEntry[];
  /** The compressed bundle's header. */
  compressed?: CcobHeader;
}
