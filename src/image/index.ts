/**
 * The image model over a blob store: parse manifests/indexes from exact bytes,
 * choose a platform from an index, read an image (manifest, config, layer
 * descriptors) and write config + manifest (+ index) back as exact bytes.
 */
export { parseManifestDocument, type ManifestDocument } from './manifest-document.js';
export { selectManifest } from './select-platform.js';
export { readImage, writeImage, writeIndex, type BlobReader, type BlobWriter, type StoredImage, type WriteImageOptions } from './stored-image.js';
