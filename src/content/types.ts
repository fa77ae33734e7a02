import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';

/**
 * Contract of the content store (owner: src/content/). An OCI image layout
 * under $KILN_ROOT: blobs/sha256/<hex>, index.json for tags, plus kiln's own
 * state folders beside it.
 */
export interface BlobInfo {
  digest: Digest;
  size: number;
}

export interface IngestExpectation {
  digest?: Digest;
  size?: number;
  /** Used in error messages ("layer 3 of 127.0.0.1:5000/busybox:latest"). */
  what?: string;
}

export interface ContentStore {
  /** Absolute root of the store. */
  readonly root: string;
  stat(digest: Digest): Promise<BlobInfo | undefined>;
  /** A stream of the blob that errors with DigestMismatchError at the end if the bytes differ. */
  open(digest: Digest): Promise<Readable>;
  /** Whole blob in memory, verified. For manifests and configs. */
  read(digest: Digest): Promise<Buffer>;
  /** Path of the blob file for readers that need a file (never write to it). */
  blobPath(digest: Digest): string;
  /**
   * Stream into a temp file while hashing, fsync, rename into place when the
   * digest and size match. On mismatch: nothing is left, DigestMismatchError.
   * Idempotent: ingesting an existing blob succeeds.
   */
  ingest(src: Readable | AsyncIterable<Buffer>, expect?: IngestExpectation): Promise<BlobInfo>;
  write(data: Buffer, expect?: IngestExpectation): Promise<BlobInfo>;
  delete(digest: Digest): Promise<void>;
  /** Tags: name (a normalised reference string) → descriptor of a manifest or index. Atomic. */
  getTag(name: string): Promise<Descriptor | undefined>;
  setTag(name: string, desc: Descriptor): Promise<void>;
  deleteTag(name: string): Promise<boolean>;
  listTags(): Promise<Array<{ name: string; descriptor: Descriptor }>>;
}
