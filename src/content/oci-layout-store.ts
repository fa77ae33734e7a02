import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline as pipelineCb, Readable } from 'node:stream';
import { DigestMismatchError, KilnError, NotFoundError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { type Digest, digestAlgorithm, digestHex, parseDigest } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import { kilnRoot } from '../util/paths.js';
import { withFileLock } from './file-lock.js';
import type { BlobInfo, ContentStore, IngestExpectation } from './types.js';
import { VerifyStream } from './verify-stream.js';

/**
 * Copy `src` into a new file `path`, handing each chunk to `onChunk` first (which may throw
 * to abort). Chunks are gathered into writev batches of INGEST_BUFFER_BYTES, one batch in
 * flight while the next is read; the file is fsynced before it is closed.
 */
async function copyToFile(src: Readable | AsyncIterable<Buffer>, path: string, onChunk: (chunk: Buffer) => void): Promise<void> {
  const fh = await open(path, 'w');
  let inflight: Promise<void> | undefined;
  try {
    let batch: Buffer[] = [];
    let batched = 0;
    const flush = async (bufs: Buffer[], size: number) => {
      let { bytesWritten } = await fh.writev(bufs);
      while (bytesWritten < size) {
        // A short write (rare on regular files): write what is left.
        const rest = Buffer.concat(bufs).subarray(bytesWritten);
        bytesWritten += (await fh.write(rest)).bytesWritten;
      }
    };
    for await (const piece of src) {
      const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as Uint8Array);
      onChunk(chunk);
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= INGEST_BUFFER_BYTES || batch.length >= 512) {
        await inflight;
        inflight = flush(batch, batched);
        inflight.catch(() => undefined); // raised by the next await
        batch = [];
        batched = 0;
      }
    }
    await inflight;
    if (batch.length) await flush(batch, batched);
    await fh.sync();
  } finally {
    await inflight?.catch(() => undefined);
    await fh.close();
  }
}

/** The annotation that names a tag in index.json (value: the normalised reference). */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
/**
 * Ingest writes go out in batches of this many bytes (one writev each): a network body
 * arrives in ~64 KiB pieces, and one syscall plus thread-pool round trip per piece costs
 * more than gathering them.
 */
const INGEST_BUFFER_BYTES = 2 * 1024 * 1024;

interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

/**
 * ContentStore on an OCI image layout:
 *   root/oci-layout, root/index.json (tags), root/blobs/<alg>/<hex>,
 *   root/ingest/ (temp files, same filesystem as blobs so rename is atomic),
 *   root/index.json.lock (held while index.json is rewritten).
 * Blobs are immutable once renamed into place; a reader never sees a partial blob.
 */
export class OciLayoutStore implements ContentStore {
  readonly root: string;
  private ready: Promise<void> | undefined;

  constructor(root: string) {
    this.root = root;
  }

  /** Create the layout if missing. Called lazily by every method. */
  init(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true });
      await mkdir(join(this.root, 'ingest'), { recursive: true });
      try {
        await writeFile(join(this.root, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}', { flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    })();
    return this.ready;
  }

  blobPath(digest: Digest): string {
    return join(this.root, 'blobs', digestAlgorithm(digest), digestHex(digest));
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const st = await stat(this.blobPath(digest));
      return { digest, size: st.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async open(digest: Digest): Promise<Readable> {
    const info = await this.stat(digest);
    if (!info) throw new NotFoundError(`Cannot open blob "${digest}": not in the store at "${this.root}"`);
    const verify = new VerifyStream(digest, info.size, `blob in the store`);
    // pipeline: destroying the returned stream closes the file too.
    pipelineCb(createReadStream(this.blobPath(digest)), verify, () => undefined);
    return verify;
  }

  async read(digest: Digest): Promise<Buffer> {
    let data: Buffer;
    try {
      data = await readFile(this.blobPath(digest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`Cannot read blob "${digest}": not in the store at "${this.root}"`);
      throw err;
    }
    const actual = `${digestAlgorithm(digest)}:${createHash(digestAlgorithm(digest)).update(data).digest('hex')}`;
    if (actual !== digest) throw new DigestMismatchError(digest, actual, data.length, { what: 'blob in the store', hint: 'The store is corrupted: run "kiln store verify".' });
    return data;
  }

  async ingest(src: Readable | AsyncIterable<Buffer>, expect: IngestExpectation = {}): Promise<BlobInfo> {
    await this.init();
    if (expect.digest) {
      parseDigest(expect.digest);
      // Already stored (blobs are immutable and verified on the way in): skip the copy.
      const have = await this.stat(expect.digest);
      if (have && (expect.size === undefined || expect.size === have.size)) {
        if (src instanceof Readable) src.destroy();
        return have;
      }
    }
    const alg = expect.digest ? digestAlgorithm(expect.digest) : 'sha256';
    const tmp = join(this.root, 'ingest', `${Date.now()}-${process.pid}-${randomBytes(6).toString('hex')}`);
    const hash = createHash(alg);
    let bytes = 0;
    const count = (chunk: Buffer) => {
      bytes += chunk.length;
      if (expect.size !== undefined && bytes > expect.size) {
        throw new DigestMismatchError(expect.digest ?? `${expect.size} bytes`, `more than ${expect.size} bytes`, bytes, expect.what ? { what: expect.what } : {});
      }
      hash.update(chunk);
    };
    try {
      await copyToFile(src, tmp, count);
      const digest = `${alg}:${hash.digest('hex')}` as Digest;
      if ((expect.digest && digest !== expect.digest) || (expect.size !== undefined && bytes !== expect.size)) {
        throw new DigestMismatchError(expect.digest ?? digest, expect.digest && digest !== expect.digest ? digest : `${bytes} bytes`, bytes, expect.what ? { what: expect.what } : {});
      }
      const dest = this.blobPath(digest);
      await mkdir(join(this.root, 'blobs', alg), { recursive: true });
      // rename() over an existing identical blob is harmless and atomic.
      await rename(tmp, dest);
      return { digest, size: bytes };
    } catch (err) {
      if (src instanceof Readable && !src.destroyed) src.destroy();
      await rm(tmp, { force: true });
      throw err;
    }
  }

  write(data: Buffer, expect: IngestExpectation = {}): Promise<BlobInfo> {
    // Bytes in hand: hash first, so a blob already stored (a warm rebuild's config and manifest) is not written and fsynced again.
    if (expect.digest === undefined && expect.size === undefined) {
      expect = { ...expect, digest: `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest, size: data.length };
    }
    return this.ingest(Readable.from([data]), expect);
  }

  async delete(digest: Digest): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
  }

  // ---- tags (index.json) ----

  private indexPath(): string {
    return join(this.root, 'index.json');
  }

  private async readIndex(): Promise<LayoutIndex> {
    try {
      const parsed = JSON.parse(await readFile(this.indexPath(), 'utf8')) as LayoutIndex;
      if (!Array.isArray(parsed.manifests)) throw new Error('no "manifests" array');
      return parsed;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
      throw new KilnError('STORE_CORRUPT', `Cannot read the tag index "${this.indexPath()}": ${(err as Error).message}`, { cause: err });
    }
  }

  /** Read-modify-write index.json under the lock; the new file replaces the old by rename. */
  private async updateIndex<T>(fn: (index: LayoutIndex) => T): Promise<T> {
    await this.init();
    return withFileLock(`${this.indexPath()}.lock`, async () => {
      const index = await this.readIndex();
      const result = fn(index);
      const tmp = join(this.root, 'ingest', `index-${process.pid}-${randomBytes(6).toString('hex')}.json`);
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(JSON.stringify(index, null, 2) + '\n');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.indexPath());
      return result;
    });
  }

  async getTag(name: string): Promise<Descriptor | undefined> {
    const index = await this.readIndex();
    return index.manifests.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === name);
  }

  async setTag(name: string, desc: Descriptor): Promise<void> {
    const entry: Descriptor = { ...desc, annotations: { ...desc.annotations, [REF_NAME_ANNOTATION]: name } };
    // Unchanged tag (a warm rebuild): no rewrite, no fsync. Racing writers end as if this one went first.
    const current = await this.getTag(name);
    if (current && JSON.stringify(current) === JSON.stringify(entry)) return;
    await this.updateIndex((index) => {
      index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== name);
      index.manifests.push(entry);
    });
  }

  async deleteTag(name: string): Promise<boolean> {
    return this.updateIndex((index) => {
      const before = index.manifests.length;
      index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== name);
      return index.manifests.length !== before;
    });
  }

  async listTags(): Promise<Array<{ name: string; descriptor: Descriptor }>> {
    const index = await this.readIndex();
    return index.manifests
      .filter((d) => d.annotations?.[REF_NAME_ANNOTATION])
      .map((d) => {
        const { [REF_NAME_ANNOTATION]: name, ...rest } = d.annotations!;
        const descriptor: Descriptor = { ...d };
        if (Object.keys(rest).length) descriptor.annotations = rest;
        else delete descriptor.annotations;
        return { name: name!, descriptor };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Every blob in the store (digest and size), in no particular order. */
  async listBlobs(): Promise<BlobInfo[]> {
    await this.init();
    const out: BlobInfo[] = [];
    for (const alg of await readdir(join(this.root, 'blobs'))) {
      let names: string[];
      try {
        names = await readdir(join(this.root, 'blobs', alg));
      } catch {
        continue; // a stray file beside the algorithm folders
      }
      for (const hex of names) {
        const digest = `${alg}:${hex}`;
        let st;
        try {
          st = await stat(join(this.root, 'blobs', alg, hex));
        } catch {
          continue;
        }
        out.push({ digest: digest as Digest, size: st.size });
      }
    }
    return out;
  }

  /** Temp files in ingest/ older than `olderThanMs` (left by killed processes) are removed. */
  async cleanIngest(olderThanMs = 60 * 60_000): Promise<number> {
    await this.init();
    let n = 0;
    const dir = join(this.root, 'ingest');
    for (const name of await readdir(dir)) {
      try {
        const st = await stat(join(dir, name));
        if (Date.now() - st.mtimeMs > olderThanMs) {
          await rm(join(dir, name), { force: true });
          n++;
        }
      } catch {
        /* raced with its owner */
      }
    }
    return n;
  }
}

/** The store at $KILN_ROOT (or `root`). */
export function openContentStore(root: string = kilnRoot()): OciLayoutStore {
  return new OciLayoutStore(root);
}
