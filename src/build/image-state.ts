import { createHash } from 'node:crypto';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type { ContainerConfig, HistoryEntry, ImageConfig } from '../oci/manifest.js';
import type { Platform } from '../oci/platform.js';

/** BuildKit's default PATH for an image without one (scratch, or a base without PATH). */
export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A layer of an image being built: its stored blob and its uncompressed digest. */
export interface LayerRef {
  descriptor: Descriptor;
  diffId: Digest;
}

/**
 * The state of a stage between two steps: the image config so far and its
 * layers. Values only (JSON-serialisable): cache records store it as is.
 */
export interface ImageState {
  config: ImageConfig;
  layers: LayerRef[];
}

/** chain id of a layer stack (OCI image spec): the snapshot id of its extracted tree. */
export function chainId(diffIds: readonly string[]): string | undefined {
  let id: string | undefined;
  for (const d of diffIds) {
    id = id === undefined ? d : `sha256:${createHash('sha256').update(`${id} ${d}`).digest('hex')}`;
  }
  return id;
}

export function stateChainId(state: ImageState): string | undefined {
  return chainId(state.layers.map((l) => l.diffId));
}

/** FROM scratch: no layers, only the platform and the default PATH (BuildKit). */
export function scratchState(platform: Platform): ImageState {
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    config: { Env: [DEFAULT_PATH] },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
  if (platform.variant) config.variant = platform.variant;
  return { config, layers: [] };
}

export function cloneState(s: ImageState): ImageState {
  return JSON.parse(JSON.stringify(s)) as ImageState;
}

export function containerConfig(s: ImageState): ContainerConfig {
  if (!s.config.config) s.config.config = {};
  return s.config.config;
}

/** Look up NAME in an env list ("NAME=value"). */
export function envGet(env: readonly string[] | undefined, name: string): string | undefined {
  if (!env) return undefined;
  for (let i = env.length - 1; i >= 0; i--) {
    const e = env[i]!;
    const eq = e.indexOf('=');
    const k = eq === -1 ? e : e.slice(0, eq);
    if (k === name) return eq === -1 ? '' : e.slice(eq + 1);
  }
  return undefined;
}

/** Set NAME=value in an env list, replacing an existing entry in place (Docker keeps the position). */
export function envSet(env: string[], name: string, value: string): string[] {
  const out = [...env];
  const i = out.findIndex((e) => e === name || e.startsWith(`${name}=`));
  if (i === -1) out.push(`${name}=${value}`);
  else out[i] = `${name}=${value}`;
  return out;
}

export function envToMap(env: readonly string[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env ?? []) {
    const eq = e.indexOf('=');
    if (eq === -1) m.set(e, '');
    else m.set(e.slice(0, eq), e.slice(eq + 1));
  }
  return m;
}

/** Append a history entry; `created` is filled in at the end of the build for determinism. */
export function addHistory(s: ImageState, createdBy: string, emptyLayer: boolean, comment = 'buildkit.dockerfile.v0'): void {
  const h: HistoryEntry = { created_by: createdBy, comment };
  if (emptyLayer) h.empty_layer = true;
  (s.config.history ??= []).push(h);
}

export function pushLayer(s: ImageState, layer: LayerRef): void {
  s.layers.push(layer);
  s.config.rootfs = { type: 'layers', diff_ids: s.layers.map((l) => l.diffId) };
}
