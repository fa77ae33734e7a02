/**
 * Fixture base images for tests, built from Debian packages (never pulled from a public
 * registry) by scripts/fixtures/ — code independent of kiln's src/ — and cached under
 * ~/.cache/kiln-fixtures (KILN_FIXTURES_CACHE overrides) keyed by a hash of their inputs.
 *
 *   const layout = await ensureBusyboxLayout();          // OCI layout dir, tag "latest"
 *   const ref = await pushBusybox(reg);                   // "127.0.0.1:PORT/busybox:latest"
 *   await pushFixture(reg.host, 'busybox', { repo: 'library/bb', tag: '1' });
 *   await pushLayout(reg.host, someLayoutDir, 'name:tag'); // any OCI layout (tag "latest" inside)
 *   await writeOciLayout(dir, { layers: [{ entries: [...] }], config: { Cmd: ['sh'] } });  // custom images
 *
 * Pushing uses `skopeo copy --dest-tls-verify=false oci:DIR:latest docker://HOST/REPO:TAG`
 * (an independent client), with a 120 s timeout. `format: 'v2s2'` makes skopeo convert to a
 * Docker schema 2 manifest; the default keeps the OCI manifest as built.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ensureBusyboxLayout } from '../../scripts/fixtures/busybox.js';
import type { TestRegistry } from './registry.js';

export { ensureBusyboxLayout };
/** Debian rootfs images from mmdebstrap (slow: benchmarks, not the normal suite). */
export { ensureDebianLayout } from '../../scripts/fixtures/debian.js';
/** Write your own small OCI layout (independent of kiln's code), then pushLayout() it. */
export { writeOciLayout, entriesToTar, type TarEntrySpec, type ImageSpec } from '../../scripts/fixtures/oci-layout-writer.js';
export { BUSYBOX_PATH_ENV, PASSWD as BUSYBOX_PASSWD, GROUP as BUSYBOX_GROUP, busyboxApplets } from '../../scripts/fixtures/busybox.js';

const run = promisify(execFile);

/** Known fixtures by name → layout builder (returns an OCI layout dir whose tag is "latest"). */
export const fixtureLayouts: Record<string, () => Promise<string>> = {
  busybox: ensureBusyboxLayout,
};

export interface PushOptions {
  /** Repository path in the registry; default the fixture name. */
  repo?: string;
  /** Tag; default "latest". */
  tag?: string;
  /** Manifest format on the registry; default: as built (OCI). */
  format?: 'oci' | 'v2s2';
  /** Extra skopeo arguments (e.g. ["--dest-creds", "u:p"]). */
  skopeoArgs?: string[];
}

function hostOf(registry: TestRegistry | string): string {
  return typeof registry === 'string' ? registry : registry.host;
}

/** Copy an OCI layout (tag "latest" in it, unless `srcTag`) to `host/repoTag` with skopeo; returns the reference. */
export async function pushLayout(
  registry: TestRegistry | string,
  layoutDir: string,
  repoTag: string,
  opts: { format?: 'oci' | 'v2s2'; skopeoArgs?: string[]; srcTag?: string } = {},
): Promise<string> {
  const ref = `${hostOf(registry)}/${repoTag}`;
  const args = ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false'];
  if (opts.format) args.push('--format', opts.format);
  args.push(...(opts.skopeoArgs ?? []), `oci:${layoutDir}:${opts.srcTag ?? 'latest'}`, `docker://${ref}`);
  try {
    await run('skopeo', args, { timeout: 120_000, maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`Cannot push fixture to "${ref}": ${(e.stderr || e.message).trim()}`);
  }
  return ref;
}

/** Build (cached) and push a named fixture; returns "HOST/REPO:TAG". */
export async function pushFixture(registry: TestRegistry | string, name: string, opts: PushOptions = {}): Promise<string> {
  const make = fixtureLayouts[name];
  if (!make) throw new Error(`Unknown fixture "${name}" (known: ${Object.keys(fixtureLayouts).join(', ')})`);
  const layout = await make();
  return pushLayout(registry, layout, `${opts.repo ?? name}:${opts.tag ?? 'latest'}`, opts);
}

/** Push the busybox fixture; returns "127.0.0.1:PORT/busybox:latest". */
export function pushBusybox(registry: TestRegistry | string, opts: PushOptions = {}): Promise<string> {
  return pushFixture(registry, 'busybox', opts);
}

/** `skopeo inspect` (manifest summary) or `--config` (the image config) as parsed JSON. */
export async function skopeoInspect(ref: string, what: 'summary' | 'config' | 'raw' = 'summary'): Promise<any> {
  const args = ['--insecure-policy', 'inspect', '--tls-verify=false'];
  if (what === 'config') args.push('--config');
  if (what === 'raw') args.push('--raw');
  args.push(ref.includes('://') || ref.startsWith('oci:') ? ref : `docker://${ref}`);
  const { stdout } = await run('skopeo', args, { timeout: 60_000, maxBuffer: 64 << 20 });
  return JSON.parse(stdout);
}
