import { NotFoundError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Index } from '../oci/manifest.js';
import { formatPlatform, normalizePlatform, type Platform, platformMatches } from '../oci/platform.js';

/** Variant preference: an exact variant beats a lower compatible one (arm/v7 host runs v6, v5). */
function variantScore(wanted: Platform, candidate: Platform): number {
  const w = normalizePlatform(wanted);
  const c = normalizePlatform(candidate);
  if (w.variant === c.variant) return 100;
  if (w.architecture === 'arm' && w.variant && c.variant) {
    const wv = Number(w.variant.slice(1));
    const cv = Number(c.variant.slice(1));
    if (cv < wv) return 50 + cv;
  }
  return c.variant === undefined ? 10 : 0;
}

/**
 * The index entry for `platform`, normalised as containerd does (x86_64 = amd64,
 * arm64 = arm64/v8, arm = arm/v7). Attestation manifests (platform unknown/unknown)
 * never match. Ties keep index order. NotFoundError lists what the index offers.
 */
export function selectManifest(index: Index, platform: Platform, what = 'image'): Descriptor {
  const want = normalizePlatform(platform);
  let best: Descriptor | undefined;
  let bestScore = -1;
  for (const d of index.manifests) {
    if (!d.platform || d.platform.os === 'unknown') continue;
    const c = normalizePlatform(d.platform);
    if (c.os !== want.os || c.architecture !== want.architecture) continue;
    let score: number;
    if (platformMatches(want, c)) score = variantScore(want, c);
    else {
      score = variantScore(want, c);
      if (score < 50) continue;
    }
    if (score > bestScore) {
      best = d;
      bestScore = score;
    }
  }
  if (!best) {
    const offered = index.manifests.filter((d) => d.platform && d.platform.os !== 'unknown').map((d) => formatPlatform(d.platform!));
    throw new NotFoundError(`Cannot find a manifest for platform "${formatPlatform(want)}" in ${what}`, {
      code: 'PLATFORM_NOT_FOUND',
      hint: offered.length ? `The index offers: ${offered.join(', ')}. Choose one with --platform.` : 'The index names no platforms.',
    });
  }
  return best;
}
