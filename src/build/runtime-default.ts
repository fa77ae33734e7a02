import { join } from 'node:path';
import type { ContentStore } from '../content/types.js';
import { KilnError } from '../errors.js';
import { readImage } from '../image/stored-image.js';
import { applyLayer } from '../layer/apply.js';
import { writeLayer, writeLayerDeferred } from '../layer/write-layer.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type { ImageConfig } from '../oci/manifest.js';
import { formatPlatform, type Platform } from '../oci/platform.js';
import type { RegistryClient } from '../registry/registry-client.js';
import type { Executor, Isolation } from '../sandbox/types.js';
import { resolveUser } from '../sandbox/user.js';
import type { Snapshotter } from '../snapshot/types.js';
import { runMounts } from './run-mounts.js';
import type { BuildRuntime, ResolvedImage } from './runtime.js';
import { startToolLauncher } from '../util/tool-launcher.js';

/**
 * An image from an OCI layout directory (`PATH:TAG` or `PATH@DIGEST`): its
 * blobs are copied, verified, into the store; the layout is only read.
 */
async function importFromLayout(store: ContentStore, spec: string, platform: Platform) {
  const at = spec.lastIndexOf('@sha256:');
  const colon = spec.lastIndexOf(':');
  const path = at !== -1 ? spec.slice(0, at) : spec.slice(0, colon);
  const { OciLayoutStore } = await import('../content/oci-layout-store.js');
  const layout = new OciLayoutStore(path);
  let desc: Descriptor | undefined;
  if (at !== -1) {
    const digest = spec.slice(at + 1) as Digest;
    const { parseManifestDocument } = await import('../image/manifest-document.js');
    const doc = parseManifestDocument(await layout.read(digest));
    desc = { mediaType: doc.mediaType, digest, size: (await layout.stat(digest))?.size ?? 0 };
  } else {
    const tag = spec.slice(colon + 1);
    desc = await layout.getTag(tag);
    if (!desc) {
      const all = await layout.listTags().catch(() => []);
      desc = all.find((t) => t.name.endsWith(`:${tag}`))?.descriptor;
    }
  }
  if (!desc) throw new KilnError('IMAGE_NOT_FOUND', `Cannot find "${spec}" in the OCI layout "${path}"`, { hint: 'Name the image as PATH:TAG (org.opencontainers.image.ref.name) or PATH@sha256:…' });
  const img = await readImage(layout, desc, platform);
  for (const d of [img.manifest.config, ...img.layers]) {
    if (!(await store.stat(d.digest))) await store.ingest(await layout.open(d.digest), { digest: d.digest, size: d.size, what: `blob of ${spec}` });
  }
  await store.write(img.rawManifest);
  if (img.index) await store.write(img.index.raw);
  return img;
}

export interface DefaultRuntimeOptions {
  store: ContentStore;
  kilnRoot: string;
  isolation?: Isolation;
  insecureRegistries?: string[];
  onInfo?: (message: string) => void;
}

/** The runtime with kiln's real modules: OCI-layout store, registry client, overlay snapshots, bwrap. */
export function defaultRuntime(opts: DefaultRuntimeOptions): BuildRuntime & { close(): Promise<void> } {
  // Mounts, umounts and getfattr runs go through one small perl, forked now while kiln is small.
  startToolLauncher();
  let client: Promise<RegistryClient> | undefined;
  let snap: Promise<Snapshotter> | undefined;
  let exec: Promise<Executor> | undefined;
  // Loaded on first pull: a build from local images never loads the registry client.
  const getClient = () => (client ??= import('../registry/index.js').then((r) => r.openRegistryClient({ insecureRegistries: opts.insecureRegistries ?? [] })));

  const fromStored = (ref: string, img: { descriptor: Descriptor; config: ImageConfig; layers: Descriptor[] }): ResolvedImage => {
    const diffIds = img.config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== img.layers.length) {
      throw new KilnError('IMAGE_INVALID', `Cannot use image "${ref}": its config lists ${diffIds.length} diff_ids for ${img.layers.length} layers`);
    }
    return {
      ref,
      manifestDigest: img.descriptor.digest,
      config: img.config,
      layers: img.layers.map((d, i) => ({ descriptor: d, diffId: diffIds[i]! as Digest })),
    };
  };

  return {
    store: opts.store,
    writeLayer,
    writeLayerDeferred,
    applyLayer,
    snapshotter: () =>
      (snap ??= (async () => {
        const { createSnapshotter } = await import('../snapshot/create-snapshotter.js');
        const sn = await createSnapshotter({ root: opts.kilnRoot });
        if (sn.kind === 'copy') opts.onInfo?.(`snapshotter: copy (${(sn as { reason?: string }).reason ?? 'overlay unavailable'})`);
        return sn;
      })()),
    executor: () =>
      (exec ??= (async () => {
        const { selectExecutor } = await import('../sandbox/select-executor.js');
        const sel = await selectExecutor(opts.isolation ?? 'auto');
        if (sel.notice) opts.onInfo?.(sel.notice);
        return sel.executor;
      })()),
    async resolveImage(ref: string, platform: Platform, o: { pull: boolean; signal?: AbortSignal }): Promise<ResolvedImage> {
      if (ref.startsWith('oci-layout://')) return fromStored(ref, await importFromLayout(opts.store, ref.slice('oci-layout://'.length), platform));
      if (!o.pull) {
        const tag = await opts.store.getTag(ref);
        if (tag) {
          try {
            return fromStored(ref, await readImage(opts.store, tag, platform));
          } catch (err) {
            if (!(err instanceof KilnError)) throw err;
            // Not usable locally (missing blob, other platform): pull it.
          }
        }
      }
      opts.onInfo?.(`pulling ${ref} (${formatPlatform(platform)})`);
      const { pullImage } = await import('../registry/pull-image.js');
      const img = await pullImage(ref, { store: opts.store, client: await getClient(), platform, signal: o.signal });
      return fromStored(ref, img);
    },
    resolveUser,
    async resolveChown(rootfs: string, chown: string) {
      const colon = chown.indexOf(':');
      const user = colon === -1 ? chown : chown.slice(0, colon);
      const group = colon === -1 ? undefined : chown.slice(colon + 1);
      // BuildKit: a uid alone means uid:uid; a name alone takes the user's primary group.
      if (group === undefined && /^[0-9]+$/.test(user)) return { uid: Number(user), gid: Number(user) };
      if (group !== undefined && /^[0-9]+$/.test(user) && /^[0-9]+$/.test(group)) return { uid: Number(user), gid: Number(group) };
      try {
        const u = await resolveUser(rootfs, chown);
        return { uid: u.uid, gid: u.gid };
      } catch (err) {
        throw new KilnError('CHOWN_INVALID', `unable to convert uid/gid chown string to host mapping: ${(err as Error).message}`, { cause: err });
      }
    },
    runMounts,
    async close() {
      if (client) await (await client).close();
    },
  };
}
