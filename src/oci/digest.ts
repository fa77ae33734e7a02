import { createHash } from 'node:crypto';
import { KilnError } from '../errors.js';

/** A content digest "algorithm:hex". Only produced by parseDigest() or sha256Digest(). */
export type Digest = string & { readonly __digest: true };

const HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };
const DIGEST_RE = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

/** Validate a digest string; throws KilnError("DIGEST_INVALID") on bad input. */
export function parseDigest(value: string): Digest {
  const m = DIGEST_RE.exec(value);
  if (!m) throw new KilnError('DIGEST_INVALID', `Invalid digest "${value}": expected "algorithm:hex"`);
  const [, alg, hex] = m as unknown as [string, string, string];
  const len = HEX_LENGTH[alg];
  if (len === undefined) throw new KilnError('DIGEST_INVALID', `Invalid digest "${value}": unsupported algorithm "${alg}"`);
  if (hex.length !== len || !/^[a-f0-9]+$/.test(hex)) {
    throw new KilnError('DIGEST_INVALID', `Invalid digest "${value}": ${alg} needs ${len} lowercase hex characters`);
  }
  return value as Digest;
}

export function isDigest(value: string): value is Digest {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

export function sha256Digest(data: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
}

export function digestAlgorithm(d: Digest): string {
  return d.slice(0, d.indexOf(':'));
}

export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}
