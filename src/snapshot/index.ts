export type { CreateSnapshotterOptions, FillInfo, FillResult, Rootfs, SnapshotInfo, Snapshotter, SnapshotterKind } from './types.js';
export { createSnapshotter } from './create-snapshotter.js';
export { OverlaySnapshotter, DEFAULT_MAX_LOWERS } from './overlay-snapshotter.js';
export { CopySnapshotter } from './copy-snapshotter.js';
export { overlaySupport, overlaySupported, type OverlaySupport } from './overlay-support.js';
export { OPAQUE_XATTR } from './opaque-xattr.js';
export { mountPoints, unmountAllSync } from './overlay-mount.js';
