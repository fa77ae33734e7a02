import { join } from 'node:path';
import { HostError } from '../errors.js';
import { CopySnapshotter } from './copy-snapshotter.js';
import { OverlaySnapshotter } from './overlay-snapshotter.js';
import { overlaySupport } from './overlay-support.js';
import type { CreateSnapshotterOptions, Snapshotter } from './types.js';

/**
 * Open the snapshotter kiln uses under `<root>/snapshots/<kind>/`. 'auto' tries a real overlay
 * mount there once per process and falls back to copy, saying why in `reason`; 'overlay'
 * refuses with HostError (code OVERLAY_UNSUPPORTED) when the probe fails.
 */
export async function createSnapshotter(options: CreateSnapshotterOptions): Promise<Snapshotter> {
  const kind = options.kind ?? 'auto';
  const base = join(options.root, 'snapshots');
  if (kind === 'copy') return CopySnapshotter.open(join(base, 'copy'), { reason: 'copy snapshotter requested' });
  const support = await overlaySupport(join(base, 'overlay', '.tmp'));
  if (support.ok) {
    return OverlaySnapshotter.open(join(base, 'overlay'), {
      maxLowers: options.maxLowers,
      reason: kind === 'overlay' ? 'overlay snapshotter requested' : 'overlay mounts work here',
    });
  }
  if (kind === 'overlay') {
    throw new HostError(`Cannot use the overlay snapshotter: ${support.reason}`, {
      code: 'OVERLAY_UNSUPPORTED',
      hint: 'Run kiln as root or in a user+mount namespace (kernel ≥ 5.11 for userxattr), or use the copy snapshotter.',
    });
  }
  return CopySnapshotter.open(join(base, 'copy'), { reason: `overlay unavailable (${support.reason}); copying instead` });
}
