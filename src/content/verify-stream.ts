import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestMismatchError } from '../errors.js';
import { type Digest, digestAlgorithm } from '../oci/digest.js';

/**
 * A pass-through stream that hashes what flows through it and fails at the end
 * with DigestMismatchError when the digest (or the size, if given) differs.
 * `offset`/`seed` let a resumed download continue a hash begun earlier.
 */
export class VerifyStream extends Transform {
  readonly expected: Digest;
  readonly expectedSize: number | undefined;
  private readonly hash: Hash;
  bytes = 0;

  constructor(expected: Digest, expectedSize?: number, what?: string, hash?: Hash, offset = 0) {
    super();
    this.expected = expected;
    this.expectedSize = expectedSize;
    this.hash = hash ?? createHash(digestAlgorithm(expected));
    this.bytes = offset;
    this.what = what;
  }

  private readonly what: string | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expectedSize !== undefined && this.bytes > this.expectedSize) {
      cb(new DigestMismatchError(this.expected, `more than ${this.expectedSize} bytes`, this.bytes, this.what ? { what: this.what } : {}));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const actual = `${digestAlgorithm(this.expected)}:${this.hash.digest('hex')}`;
    if (actual !== this.expected || (this.expectedSize !== undefined && this.bytes !== this.expectedSize)) {
      cb(new DigestMismatchError(this.expected, actual, this.bytes, this.what ? { what: this.what } : {}));
      return;
    }
    cb();
  }
}
