/**
 * What a storage backend of the shared cache does: the Bazel HTTP cache
 * protocol's two namespaces, `ac/<key>` (action entries) and
 * `cas/<sha256>` (blobs). Backends throw RemoteError; the policy (one
 * warning, circuit breaker, signatures, digests) lives in RemoteCacheClient.
 */
export interface RemoteBackend {
  /** Where it points, without credentials. */
  readonly description: string;
  /** The stored entry's bytes, or null when the remote has none. */
  getEntry(key: string): Promise<Buffer | null>;
  /** Store an entry; it becomes visible whole or not at all. */
  putEntry(key: string, body: Buffer): Promise<void>;
  /** Does the remote already hold this blob (with this size)? */
  hasBlob(digest: string, size: number): Promise<boolean>;
  /**
   * Stream a blob into the file `dest`, hashing it on the way. Null when
   * the remote has no such blob. The caller checks the digest.
   */
  /** Download a blob into `dest`; more than `size` bytes (the entry's) stops it with OversizeBlob. */
  getBlob(digest: string, dest: string, size: number): Promise<BlobDownload | null>;
  /** Stream the file into the remote as blob `digest`. */
  putBlob(digest: string, file: string, size: number): Promise<void>;
  /** Release sockets and the like. */
  close(): void;
}

/** What a blob download wrote. */
export interface BlobDownload {
  bytes: number;
  /** SHA-256 of the bytes received. */
  sha256: string;
}
