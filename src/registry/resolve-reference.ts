import { KilnError } from '../errors.js';
import { ImageReference, parseDockerRef, splitDockerDomain } from '../oci/reference.js';
import type { Endpoint, RegistriesConf } from './registries-conf.js';

/**
 * The fully qualified references a user-typed name may mean. A name with a
 * registry (or docker.io) means itself. An unqualified name ("busybox") means
 * each of registries.conf's unqualified-search-registries in order, or docker.io
 * when that list is empty (Docker's rule).
 */
export function candidateReferences(input: string, conf: RegistriesConf): ImageReference[] {
  const first = input.split('/')[0]!;
  const qualified = input.includes('/') && (/[.:]/.test(first) || first === 'localhost');
  const ref = parseDockerRef(input);
  if (qualified || conf.unqualifiedSearchRegistries.length === 0) return [ref];
  return conf.unqualifiedSearchRegistries.map((reg) => {
    const path = reg === 'docker.io' ? ref.path : splitDockerDomain(input.replace(/[:@].*$/, '')).remainder.replace(/^library\//, '');
    return new ImageReference(reg, reg === 'docker.io' ? ref.path : path, ref.tag, ref.digest);
  });
}

/** Try `fn` on each endpoint in order; the first success wins. Errors that retrying elsewhere cannot fix stop at once. */
export async function firstEndpoint<T>(endpoints: Endpoint[], fn: (ep: Endpoint) => Promise<T>, log: (l: string) => void): Promise<T> {
  let lastErr: unknown;
  for (const ep of endpoints) {
    try {
      return await fn(ep);
    } catch (err) {
      lastErr = err;
      if (!ep.mirror) throw err;
      log(`  mirror "${ep.host}" failed: ${(err as Error).message}; trying the next location`);
    }
  }
  throw lastErr ?? new KilnError('REGISTRY_ERROR', 'No registry endpoint to try');
}
