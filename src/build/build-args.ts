import type { Platform } from '../oci/platform.js';
import { formatPlatform } from '../oci/platform.js';

/** Proxy args: usable without declaration, passed to RUN, never in cache keys or history (BuildKit). */
export const PROXY_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);

/** The automatic platform args (values for a build on `build` targeting `target`). */
export function platformArgs(target: Platform, build: Platform): Map<string, string> {
  const m = new Map<string, string>();
  m.set('TARGETPLATFORM', formatPlatform(target));
  m.set('TARGETOS', target.os);
  m.set('TARGETARCH', target.architecture);
  m.set('TARGETVARIANT', target.variant ?? '');
  m.set('BUILDPLATFORM', formatPlatform(build));
  m.set('BUILDOS', build.os);
  m.set('BUILDARCH', build.architecture);
  m.set('BUILDVARIANT', build.variant ?? '');
  return m;
}
