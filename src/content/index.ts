/**
 * The content store: an OCI image layout at $KILN_ROOT holding blobs by digest and tags in
 * index.json. See types.ts for the ContentStore contract; OciLayoutStore implements it.
 */
export * from './types.js';
export { OciLayoutStore, openContentStore, REF_NAME_ANNOTATION } from './oci-layout-store.js';
export { VerifyStream } from './verify-stream.js';
export { withFileLock } from './file-lock.js';
export { collectGarbage, reachableBlobs, verifyStore, type GcResult, type VerifyReport } from './gc.js';
