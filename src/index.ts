/**
 * kiln's typed Node API.
 *
 *   import { build } from 'kiln';
 *   const r = await build({ context: '.', tags: ['127.0.0.1:5000/app:1'], push: true,
 *                           onEvent: (e) => console.log(e) });
 *   r.manifest.digest  // sha256:…   r.imageId (config digest)   r.names
 */
export { build, buildWithEvents, parseCompressionFlag, type BuildOptions, type BuildResult } from './export/build-and-export.js';
export type { BuildEvent, SecretSpec } from './build/types.js';
export type { OutputSpec } from './export/output-spec.js';
export { parseOutputSpec } from './export/output-spec.js';
export type { Descriptor } from './oci/descriptor.js';
export type { Digest } from './oci/digest.js';
export type { Isolation } from './sandbox/types.js';
export { KilnError, DockerfileError, ProcessError, RegistryError, UsageError, NotFoundError, HostError } from './errors.js';
