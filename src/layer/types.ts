import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type { Compression } from '../oci/media-types.js';

/**
 * Contract of layers (owner: src/layer/).
 * A Change names a path (relative, "/"-separated, no leading "/") that differs
 * from the parent snapshot. The layer writer reads metadata and content for
 * 'add'/'modify' from `<root>/<path>` with lstat (never following symlinks);
 * 'delete' becomes a whiteout `.wh.<name>`; opaque directories get `.wh..wh..opq`.
 */
export interface Change {
  kind: 'add' | 'modify' | 'delete';
  path: string;
  /** A directory whose lower contents are hidden (overlay opaque dir / replaced dir). */
  opaque?: boolean;
}

export interface WriteLayerOptions {
  /** Directory holding the new state of every changed path. */
  root: string;
  /** Sorted or not; the writer sorts. Parent directories of changed paths are included by the writer as needed. */
  changes: Change[];
  compression: Compression;
  level?: number;
  /** Clamp mtimes to this epoch (seconds) for reproducible layers. */
  sourceDateEpoch?: number;
  /** OCI media types (default) or Docker schema2. */
  oci?: boolean;
  /** Ownership recorded by the single-id rootless mode (user.containers.override_stat). */
  useOverrideStat?: boolean;
  /** Called for paths skipped on purpose (sockets). */
  onWarning?: (message: string) => void;
  /** Compression threads (default: every core). The output does not depend on it. */
  threads?: number;
  /** Every xattr under `root`, already read (absolute path → name → value; absent = none): no getfattr is run. */
  xattrs?: Map<string, Map<string, Buffer>>;
}

export interface LayerResult {
  /** Descriptor of the compressed blob, already in the content store. */
  descriptor: Descriptor;
  /** sha256 of the uncompressed tar. */
  diffId: Digest;
  uncompressedSize: number;
}

export interface ApplyOptions {
  /** Layer media type, if known; else compression is detected from magic bytes. */
  mediaType?: string;
  /** Called for entries skipped on purpose (device nodes without privilege, …). */
  onWarning?: (message: string) => void;
  /** Record non-root ownership in user.containers.override_stat instead of chown (single-id rootless). */
  useOverrideStat?: boolean;
  /**
   * Overlay mode: whiteouts become 0/0 char devices and opaque xattrs (for a
   * lower dir of an overlay mount) instead of deleting from `target`.
   */
  whiteoutMode?: 'delete' | 'overlay';
  /**
   * Overlay mode: the xattr that marks an opaque directory. Default
   * "trusted.overlay.opaque"; use "user.overlay.opaque" for a mount with `userxattr`.
   */
  overlayOpaqueXattr?: string;
}

export interface ApplyStats {
  entries: number;
  bytes: number;
}

/**
 * Signatures implemented by src/layer/ (index: src/layer/index.ts).
 *
 * applyLayer: reads `src` to its end (gzip, zstd or plain tar; detected from
 * magic bytes, `mediaType` only as a hint) and extracts it into `target`, which
 * must exist. Never writes, chmods, chowns, utimes or links outside `target`,
 * whatever the tar holds; unsafe entries make it reject with KilnError
 * code LAYER_UNSAFE_ENTRY, malformed archives with LAYER_INVALID_TAR (the
 * target is then partially written: discard it). Device nodes it may not
 * create are skipped with a warning naming them.
 * The caller owns a Readable `src`; it is consumed (or destroyed on error). A StoredLayer is
 * read from its store and checked against its digest, like the store's `open()`.
 */
export type ApplyLayer = (src: import('node:stream').Readable | StoredLayer, target: string, options?: ApplyOptions) => Promise<ApplyStats>;

/**
 * A layer blob in a content store, by digest. applyLayer reads it itself: a big gzip blob is
 * read, verified and inflated on a worker thread (see inflate-off-thread.ts).
 */
export interface StoredLayer {
  store: Pick<import('../content/types.js').ContentStore, 'open' | 'blobPath'>;
  digest: Digest;
  size: number;
}

/**
 * writeLayer: one streamed pass tar → sha256 (diffId) → compressor → sha256
 * (digest) → store.ingest. Deterministic for the same tree and options.
 */
export type WriteLayer = (store: import('../content/types.js').ContentStore, options: WriteLayerOptions) => Promise<LayerResult>;

/** A parsed `--compression` value ("gzip", "zstd,level=3", "uncompressed"). */
export interface CompressionSpec {
  compression: Compression;
  level?: number;
}
