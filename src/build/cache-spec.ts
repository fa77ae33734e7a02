import { UsageError } from '../errors.js';
import { parseCompression } from '../layer/compress.js';
import type { CompressionSpec } from '../layer/types.js';
import { parseDockerRef } from '../oci/reference.js';

/** Which records an export carries: the final image's steps (min) or every step built (max). */
export type CacheMode = 'min' | 'max';

/** One `--cache-to` value, parsed (buildx CSV form). */
export type CacheToSpec =
  | { type: 'registry'; ref: string; mode: CacheMode; compression?: CompressionSpec; ignoreError: boolean; mounts?: true }
  | { type: 'local'; dest: string; mode: CacheMode; compression?: CompressionSpec; ignoreError: boolean; mounts?: true }
  | { type: 'inline' };

/**
 * One `--cache-from` value, parsed. `mounts`: also import the RUN
 * --mount=type=cache contents the export carries (kiln's mounts=true).
 */
export type CacheFromSpec = { type: 'registry'; ref: string; mounts?: true } | { type: 'local'; src: string; mounts?: true };

const TYPES = ['registry', 'local', 'inline'];
const FOREIGN = new Set(['gha', 's3', 'azblob']);

function splitCsv(flag: string, value: string): Map<string, string> {
  const kv = new Map<string, string>();
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq === -1) throw new UsageError(`Invalid ${flag} "${value}": "${part}" is not key=value`, { hint: 'Example: type=registry,ref=HOST/REPO:cache' });
    const k = part.slice(0, eq).trim().toLowerCase();
    if (kv.has(k)) throw new UsageError(`Invalid ${flag} "${value}": "${k}" is given twice`);
    kv.set(k, part.slice(eq + 1).trim());
  }
  return kv;
}

function checkKeys(flag: string, value: string, type: string, kv: Map<string, string>, allowed: string[]): void {
  for (const k of kv.keys()) {
    if (k === 'type' || allowed.includes(k)) continue;
    if (k === 'mounts') {
      throw new UsageError(`Invalid ${flag} "${value}": mounts= is not supported for type=${type}`, { hint: 'Cache mount contents travel with type=registry or type=local.' });
    }
    throw new UsageError(`Invalid ${flag} "${value}": unknown attribute "${k}" for type=${type}`, { hint: `Supported: ${allowed.join(', ') || '(none)'}` });
  }
}

function cacheRef(flag: string, value: string, ref: string | undefined): string {
  if (!ref) throw new UsageError(`Invalid ${flag} "${value}": ref= is missing`, { hint: 'Example: type=registry,ref=HOST/REPO:cache' });
  try {
    return parseDockerRef(ref).toString();
  } catch (err) {
    throw new UsageError(`Invalid ${flag} "${value}": bad reference "${ref}": ${(err as Error).message}`, { cause: err });
  }
}

function typeOf(flag: string, value: string, kv: Map<string, string>): string {
  const type = kv.get('type') ?? (kv.has('ref') ? 'registry' : undefined);
  if (!type) throw new UsageError(`Invalid ${flag} "${value}": type= is missing`, { hint: `Types: ${TYPES.join(', ')}` });
  if (FOREIGN.has(type)) throw new UsageError(`Invalid ${flag} "${value}": cache type "${type}" is not supported by kiln`, { hint: `Types: ${TYPES.join(', ')}` });
  if (!TYPES.includes(type)) throw new UsageError(`Invalid ${flag} "${value}": unknown cache type "${type}"`, { hint: `Types: ${TYPES.join(', ')}` });
  return type;
}

/** `mounts=true|false` → `{ mounts: true }` or nothing. */
function mountsOption(flag: string, value: string, kv: Map<string, string>): { mounts?: true } {
  const m = kv.get('mounts');
  if (m === undefined || m === 'false') return {};
  if (m !== 'true') throw new UsageError(`Invalid ${flag} "${value}": mounts must be true or false, not "${m}"`);
  return { mounts: true };
}

function exportOptions(flag: string, value: string, kv: Map<string, string>) {
  const mode = kv.get('mode') ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw new UsageError(`Invalid ${flag} "${value}": mode must be min or max, not "${mode}"`);
  let compression: CompressionSpec | undefined;
  const c = kv.get('compression');
  const level = kv.get('compression-level');
  if (c !== undefined) {
    try {
      compression = parseCompression(level !== undefined ? `${c},level=${level}` : c);
    } catch (err) {
      throw new UsageError(`Invalid ${flag} "${value}": ${(err as Error).message}`, { cause: err });
    }
  } else if (level !== undefined) {
    throw new UsageError(`Invalid ${flag} "${value}": compression-level needs compression=`);
  }
  const ie = kv.get('ignore-error');
  if (ie !== undefined && ie !== 'true' && ie !== 'false') throw new UsageError(`Invalid ${flag} "${value}": ignore-error must be true or false`);
  return { mode: mode as CacheMode, ...(compression ? { compression } : {}), ignoreError: ie === 'true', ...mountsOption(flag, value, kv) };
}

/**
 * Parse a `--cache-to` value: `type=registry,ref=R[,mode=min|max][,compression=gzip|zstd|uncompressed]
 * [,compression-level=N][,ignore-error=true][,mounts=true]`, `type=local,dest=DIR[,…same]`,
 * `type=inline`, or a bare REF (= type=registry,ref=REF). Unknown types and attributes are
 * refused. mounts=true (kiln only): also export the contents of every RUN --mount=type=cache
 * the build used.
 */
export function parseCacheTo(value: string): CacheToSpec {
  const flag = '--cache-to';
  if (!value.includes('=')) return { type: 'registry', ref: cacheRef(flag, value, value), mode: 'min', ignoreError: false };
  const kv = splitCsv(flag, value);
  const type = typeOf(flag, value, kv);
  const common = ['mode', 'compression', 'compression-level', 'ignore-error', 'mounts'];
  switch (type) {
    case 'registry':
      checkKeys(flag, value, type, kv, ['ref', ...common]);
      return { type, ref: cacheRef(flag, value, kv.get('ref')), ...exportOptions(flag, value, kv) };
    case 'local': {
      checkKeys(flag, value, type, kv, ['dest', ...common]);
      const dest = kv.get('dest');
      if (!dest) throw new UsageError(`Invalid ${flag} "${value}": dest= is missing`, { hint: 'Example: type=local,dest=/var/cache/kiln' });
      return { type, dest, ...exportOptions(flag, value, kv) };
    }
    default:
      checkKeys(flag, value, type, kv, []);
      return { type: 'inline' };
  }
}

/**
 * Parse a `--cache-from` value: `type=registry,ref=R[,mounts=true]`, `type=local,src=DIR[,mounts=true]`, or a bare
 * REF. A registry ref may name a cache manifest (from --cache-to type=registry) or an
 * image carrying inline cache.
 */
export function parseCacheFrom(value: string): CacheFromSpec {
  const flag = '--cache-from';
  if (!value.includes('=')) return { type: 'registry', ref: cacheRef(flag, value, value) };
  const kv = splitCsv(flag, value);
  const type = typeOf(flag, value, kv);
  switch (type) {
    case 'registry':
      checkKeys(flag, value, type, kv, ['ref', 'mounts']);
      return { type, ref: cacheRef(flag, value, kv.get('ref')), ...mountsOption(flag, value, kv) };
    case 'local': {
      checkKeys(flag, value, type, kv, ['src', 'mounts']);
      const src = kv.get('src');
      if (!src) throw new UsageError(`Invalid ${flag} "${value}": src= is missing`, { hint: 'Example: type=local,src=/var/cache/kiln' });
      return { type, src, ...mountsOption(flag, value, kv) };
    }
    default:
      throw new UsageError(`Invalid ${flag} "${value}": type=inline is for --cache-to`, { hint: 'Import inline cache with --cache-from REF (the pushed image).' });
  }
}
