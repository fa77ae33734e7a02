import { KilnError } from '../errors.js';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

/** Node's process.arch → OCI architecture. */
function hostArchitecture(): { architecture: string; variant?: string } {
  switch (process.arch) {
    case 'x64': return { architecture: 'amd64' };
    case 'arm64': return { architecture: 'arm64', variant: 'v8' };
    case 'arm': return { architecture: 'arm', variant: 'v7' };
    case 'ia32': return { architecture: '386' };
    default: return { architecture: process.arch };
  }
}

export function hostPlatform(): Platform {
  return normalizePlatform({ os: 'linux', ...hostArchitecture() });
}

/** Normalise as containerd does: x86_64→amd64, aarch64→arm64 (variant v8 default), armhf→arm/v7 … */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  switch (architecture) {
    case 'i386': architecture = '386'; variant = undefined; break;
    case 'x86_64': case 'x86-64': case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = undefined;
      break;
    case 'aarch64': case 'arm64':
      architecture = 'arm64';
      if (variant === undefined || variant === '8' || variant === 'v8') variant = 'v8';
      break;
    case 'armhf': architecture = 'arm'; variant = 'v7'; break;
    case 'armel': architecture = 'arm'; variant = 'v6'; break;
    case 'arm':
      if (variant === undefined || variant === '7' || variant === 'v7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      break;
  }
  const out: Platform = { architecture, os };
  if (variant) out.variant = variant;
  if (p['os.version']) out['os.version'] = p['os.version'];
  return out;
}

/** "linux/arm64/v8" → Platform. */
export function parsePlatform(spec: string): Platform {
  const parts = spec.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => x === '')) {
    throw new KilnError('PLATFORM_INVALID', `Invalid platform "${spec}": expected "os/arch[/variant]"`);
  }
  const [os, architecture, variant] = parts as [string, string, string?];
  return normalizePlatform(variant ? { os, architecture, variant } : { os, architecture });
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** True when an image for `candidate` runs on `wanted` (after normalisation). */
export function platformMatches(wanted: Platform, candidate: Platform): boolean {
  const w = normalizePlatform(wanted);
  const c = normalizePlatform(candidate);
  if (w.os !== c.os || w.architecture !== c.architecture) return false;
  if (w.variant === undefined || c.variant === undefined) return true;
  return w.variant === c.variant;
}
