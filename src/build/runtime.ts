import type { ContentStore } from '../content/types.js';
import type { Digest } from '../oci/digest.js';
import type { ImageConfig } from '../oci/manifest.js';
import type { Platform } from '../oci/platform.js';
import type { ApplyLayer, WriteLayer } from '../layer/types.js';
import type { Executor, MountSpec, RunUser } from '../sandbox/types.js';
import type { Snapshotter } from '../snapshot/types.js';
import type { LayerRef } from './image-state.js';

/** A base image resolved into the store. */
export interface ResolvedImage {
  /** Normalised reference it was resolved from. */
  ref: string;
  manifestDigest: Digest;
  config: ImageConfig;
  layers: LayerRef[];
}

/** What a RUN --mount resolves against. */
export interface MountContext {
  contextDir: string;
  /** The .dockerignore filter: a context bind sees the same filtered files as COPY. */
  contextInclude?: import('./copy-files.js').IncludeFilter;
  /** Host rootfs of a stage or image named by from= (materialised on demand, read-only view). */
  rootfsOf(from: string): Promise<string>;
  /** $KILN_ROOT (cache mounts live under it, kept between builds). */
  kilnRoot: string;
  /** --secret values as given (files are read when a step mounts them). */
  secrets: Array<{ id: string; src?: string; env?: string }>;
  /** --ssh: agent socket paths by id ("default" for `--ssh default`). */
  sshSockets: Map<string, string>;
  /** The step's rootfs. */
  rootfs: string;
  signal?: AbortSignal;
  /** Expands ARG/ENV references in mount values. */
  expand(word: string): string;
}

/**
 * The modules the engine drives, behind one seam so the engine can be read
 * (and tested) without them. src/build/runtime-default.ts wires the real ones.
 */
export interface BuildRuntime {
  store: ContentStore;
  snapshotter(): Promise<Snapshotter>;
  executor(): Promise<Executor>;
  writeLayer: WriteLayer;
  /** writeLayer in two halves for small layers (see layer/write-layer.ts); optional. */
  writeLayerDeferred?: typeof import('../layer/write-layer.js').writeLayerDeferred;
  applyLayer: ApplyLayer;
  /** Resolve an image reference: local store first unless `pull`, else the registry (then tagged locally). */
  resolveImage(ref: string, platform: Platform, opts: { pull: boolean; signal?: AbortSignal }): Promise<ResolvedImage>;
  /** USER value → uid/gid/groups, looked up in the rootfs's /etc/passwd and /etc/group. */
  resolveUser(rootfs: string, user: string): Promise<RunUser>;
  /** --chown value → uid/gid (names looked up in the destination rootfs). */
  resolveChown(rootfs: string, chown: string): Promise<{ uid: number; gid: number }>;
  /** RUN --mount values → mount specs (and a cleanup). */
  runMounts(specs: string[], ctx: MountContext): Promise<{ mounts: MountSpec[]; env: string[]; release(): Promise<void> }>;
}
