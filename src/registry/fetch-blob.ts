import type { BlobInfo, ContentStore } from '../content/types.js';
import { DigestMismatchError, RegistryError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { header, isRetryableNetworkError } from './http-util.js';
import type { Endpoint } from './registries-conf.js';
import type { RegistryClient } from './registry-client.js';

export interface FetchBlobOptions {
  signal?: AbortSignal;
  /** For messages: "layer 2 of 127.0.0.1:5000/busybox:latest". */
  what?: string;
  /** Called with bytes received so far (progress). */
  onProgress?: (bytes: number) => void;
}

/**
 * Download a blob into the store, verified as it streams (the store's ingest
 * checks digest and size before the blob becomes visible). A connection that
 * drops mid-body, or a body that ends short, is resumed with a Range request
 * from the last byte received (a server ignoring Range is handled by skipping
 * what we already have). A digest mismatch is retried once from scratch, then
 * raised as DigestMismatchError with nothing stored. Already-present blobs are
 * not downloaded again.
 */
export async function fetchBlob(client: RegistryClient, ep: Endpoint, desc: Descriptor, store: ContentStore, opts: FetchBlobOptions = {}): Promise<BlobInfo> {
  const have = await store.stat(desc.digest);
  if (have && have.size === desc.size) return have;
  const what = opts.what ?? `blob "${desc.digest}" of "${ep.host}/${ep.repository}"`;
  for (let full = 0; ; full++) {
    try {
      return await store.ingest(resumableBody(client, ep, desc, what, opts), { digest: desc.digest, size: desc.size, what });
    } catch (err) {
      if (err instanceof DigestMismatchError && full === 0) {
        client.log(`  ${what}: digest mismatch, downloading again`);
        continue;
      }
      throw err;
    }
  }
}

async function* resumableBody(client: RegistryClient, ep: Endpoint, desc: Descriptor, what: string, opts: FetchBlobOptions): AsyncGenerator<Buffer> {
  let offset = 0;
  const retries = client.options.retries ?? 4;
  let failures = 0;
  for (;;) {
    const res = await client.getBlob(ep, desc.digest, offset, opts.signal);
    // How many leading bytes of this response we already have.
    let skip = 0;
    if (offset > 0) {
      if (res.statusCode === 200) skip = offset;
      else {
        const m = /^bytes (\d+)-/.exec(header(res.headers, 'content-range') ?? '');
        const start = m ? Number(m[1]) : offset;
        if (start > offset) {
          res.body.destroy();
          throw new RegistryError(`Cannot resume ${what}: the registry answered a range from byte ${start}, wanted ${offset}`, { registry: ep.host, repository: ep.repository, code: 'REGISTRY_PROTOCOL' });
        }
        skip = offset - start;
      }
    }
    let dropped: unknown;
    try {
      for await (const chunk of res.body) {
        let buf = chunk as Buffer;
        if (skip > 0) {
          if (buf.length <= skip) {
            skip -= buf.length;
            continue;
          }
          buf = buf.subarray(skip);
          skip = 0;
        }
        offset += buf.length;
        opts.onProgress?.(offset);
        yield buf;
        if (offset > desc.size) return; // ingest refuses the overrun
      }
    } catch (err) {
      if (!isRetryableNetworkError(err)) throw err;
      dropped = err;
    } finally {
      if (!res.body.destroyed) res.body.destroy();
    }
    if (offset >= desc.size) return;
    failures++;
    const why = dropped ? ((dropped as { code?: string }).code ?? (dropped as Error).message) : 'body ended early';
    client.log(`  ${what}: connection dropped after ${offset} of ${desc.size} bytes (${why})`);
    if (failures > retries) {
      throw new RegistryError(`Cannot download ${what}: connection dropped after ${offset} of ${desc.size} bytes (${why}), ${retries} retries used`, {
        registry: ep.host, repository: ep.repository, method: 'GET', code: 'REGISTRY_NETWORK', cause: dropped,
      });
    }
    await client.backoff(failures - 1, undefined, opts.signal);
  }
}
