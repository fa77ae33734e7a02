/** Layers: apply (tar → directory, path-safe), diff (changes → tar), compress and write to the store. */
export * from './types.js';
export { applyLayer, normalizeEntryPath } from './apply.js';
export { layerTar, compareLayerPaths, OPAQUE_MARKER, WHITEOUT_PREFIX } from './diff.js';
export { compress, parallelGzip, parseCompression, zstdCompress, GZIP_BLOCK, DEFAULT_LEVEL } from './compress.js';
export { detectCompression, decompressed } from './decompress.js';
export { writeLayer } from './write-layer.js';
export { changesFromTree } from './walk-tree.js';
export { OVERRIDE_STAT_XATTR, formatOverrideStat, parseOverrideStat } from './override-stat.js';
export { readTar } from './tar-reader.js';
export type { TarHeader, EntryType } from './tar-header.js';
