/**
 * kiln's OCI distribution client (registry/). API for the build engine and the CLI:
 *
 *   const client = await openRegistryClient({ insecureRegistries, log });   // reads registries.conf
 *   const store = openContentStore();                                        // content/
 *
 *   // Pull: manifest (or index → platform's manifest), config, layers into the store, verified; tagged.
 *   const img = await pullImage('127.0.0.1:5000/busybox:latest', { store, client, platform });
 *   img.descriptor / img.manifest / img.config / img.layers / img.rawManifest / img.rawConfig
 *   img.top        // what the tag points at (index or manifest)
 *
 *   // Resolve a tag to a digest without downloading (HEAD):
 *   const { descriptor } = await resolve(parseDockerRef(ref), client);
 *
 *   // Push a stored image (manifest or index descriptor) to a reference:
 *   await pushImage(store, descriptor, 'registry:5000/app:1', { client });
 *
 *   // One blob into the store (Range resume, verified):
 *   await fetchBlob(client, endpoint, layerDescriptor, store);
 *   // Endpoints (mirrors, insecure, blocked) for a reference:
 *   client.endpoints(ref, { forPush })
 *
 *   await client.close();
 *
 * Transport: undici keep-alive Agents (one for verified TLS, one for insecure hosts);
 * HTTP_PROXY / HTTPS_PROXY / NO_PROXY from the environment are honoured as docker does
 * (Go net/http rules; loopback is never proxied) — see proxy-dispatcher.ts.
 * Plain HTTP / unverified TLS only for hosts marked insecure in registries.conf, given
 * with --insecure-registry, or loopback (127.0.0.0/8, localhost, ::1) as Docker allows.
 * Auth: anonymous, Basic, Bearer tokens (cached per scope set until expiry, refreshed
 * on 401, escalated when the server asks for more scope), identity tokens, registry
 * tokens; credentials from Docker's config.json (auths, credsStore, credHelpers).
 * Retries: resets, 5xx, 408 and 429 (Retry-After) with exponential backoff.
 * Credentials never appear in errors or in the debug log.
 */
import { type RegistriesConf, loadRegistriesConf } from './registries-conf.js';
import { RegistryClient, type RegistryClientOptions } from './registry-client.js';

export { RegistryClient, MANIFEST_ACCEPT, type RegistryClientOptions, type RequestSpec } from './registry-client.js';
export { pullImage, resolve, mapLimit, type PullOptions, type PullResult, type PullProgress } from './pull-image.js';
export { pushImage, type PushOptions, type PushResult, type PushProgress } from './push-image.js';
export { fetchBlob, type FetchBlobOptions } from './fetch-blob.js';
export { candidateReferences } from './resolve-reference.js';
export {
  loadRegistriesConf, mergeRegistriesConf, resolveEndpoints, findRegistryConf, isLoopbackHost, emptyRegistriesConf,
  type RegistriesConf, type RegistryConf, type MirrorConf, type Endpoint,
} from './registries-conf.js';
export { loadCredentials, storeCredentials, eraseCredentials, dockerConfigPath, authKey, DOCKER_HUB_AUTH_KEY, type Credentials } from './docker-config.js';
export { parseWwwAuthenticate, type AuthChallenge } from './www-authenticate.js';

/** A client configured from the environment: registries.conf (unless given) plus `options`. */
export async function openRegistryClient(options: RegistryClientOptions & { registriesConf?: RegistriesConf } = {}): Promise<RegistryClient> {
  const registriesConf = options.registriesConf ?? (await loadRegistriesConf(options.env));
  return new RegistryClient({ ...options, registriesConf });
}
