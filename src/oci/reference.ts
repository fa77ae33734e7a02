/**
 * Image references: the grammar and Docker normalisation of distribution/reference
 * (what Docker, BuildKit and containerd use), written for kiln.
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path-component { "/" path-component }
 *   domain    := host [ ":" port ]      host := dns-name | "[" ipv6 "]"
 *
 * Three parsers, from strict to forgiving:
 *   parseReference(s)        strict: no defaults; `domain` is whatever the grammar says.
 *   parseNormalizedNamed(s)  Docker: `nginx` → docker.io/library/nginx (no default tag).
 *   parseDockerRef(s)        builder: normalised, `:latest` added when there is neither tag nor
 *                            digest, and the tag dropped when a digest is present.
 * Errors are ReferenceFormatError whose message is the upstream message text.
 */
import { KilnError } from '../errors.js';

// ---- grammar pieces (each a regexp source without anchors) ----

const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const optionalPort = '(?::[0-9]+)?';
const tagPat = '[\\w][\\w.-]{0,127}';
const digestPat = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
const ipv6address = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const host = `(?:${domainName}|${ipv6address})`;
const domainAndPort = `${host}${optionalPort}`;
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const namePat = `(?:${domainAndPort}/)?${remoteName}`;

/** Anchored grammar pieces; exported for tests and for callers validating single parts. */
export const referenceGrammar = {
  /** host[:port] */
  domainAndPort: new RegExp(`^${domainAndPort}$`),
  /** [domain/]remainder with captures 1 = domain (may be undefined), 2 = remainder. */
  name: new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`),
  /** name[:tag][@digest] with captures 1 = name, 2 = tag, 3 = digest. */
  reference: new RegExp(`^(${namePat})(?::(${tagPat}))?(?:@(${digestPat}))?$`),
  tag: new RegExp(`^${tagPat}$`),
  digest: new RegExp(`^${digestPat}$`),
  /** A bare 64-hex image ID. */
  identifier: /^([a-f0-9]{64})$/,
} as const;

export const NAME_TOTAL_LENGTH_MAX = 255;
export const DEFAULT_DOMAIN = 'docker.io';
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
/** The host actually contacted for Docker Hub. */
export const DOCKER_HUB_REGISTRY_HOST = 'registry-1.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';

// ---- errors ----

/** Symbolic reasons, named as upstream names them, mapped to upstream's exact messages. */
export const REFERENCE_ERROR_MESSAGES = {
  ErrReferenceInvalidFormat: 'invalid reference format',
  ErrTagInvalidFormat: 'invalid tag format',
  ErrDigestInvalidFormat: 'invalid digest format',
  ErrNameContainsUppercase: 'repository name must be lowercase',
  ErrNameEmpty: 'repository name must have at least one component',
  ErrNameTooLong: `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`,
  ErrNameNotCanonical: 'repository name must be canonical',
  'digest.ErrDigestInvalidFormat': 'invalid checksum digest format',
  'digest.ErrDigestInvalidLength': 'invalid checksum digest length',
  'digest.ErrDigestUnsupported': 'unsupported digest algorithm',
} as const;

export type ReferenceErrorReason = keyof typeof REFERENCE_ERROR_MESSAGES | 'LowercaseRequired' | 'HexIdentifier' | 'NoName';

/**
 * A reference failed to parse. `message` is the upstream text exactly (callers add context such
 * as `failed to parse stage name "…": `); `reason` is the symbolic upstream error; `input` the text.
 */
export class ReferenceFormatError extends KilnError {
  readonly reason: ReferenceErrorReason;
  readonly input: string;

  constructor(reason: ReferenceErrorReason, input: string, message?: string) {
    super('REFERENCE_INVALID', message ?? REFERENCE_ERROR_MESSAGES[reason as keyof typeof REFERENCE_ERROR_MESSAGES], {
      hint: 'Image references look like [registry[:port]/]name[:tag][@sha256:digest], with a lowercase name.',
    });
    this.reason = reason;
    this.input = input;
  }
}

// ---- digests (go-digest rules) ----

const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };
const GO_DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Validate a digest as go-digest's Parse does; throws ReferenceFormatError with digest.* reasons. */
export function validateReferenceDigest(d: string): void {
  const i = d.indexOf(':');
  if (i <= 0 || i + 1 === d.length) throw new ReferenceFormatError('digest.ErrDigestInvalidFormat', d);
  const alg = d.slice(0, i);
  const encoded = d.slice(i + 1);
  const len = DIGEST_HEX_LENGTH[alg];
  if (len === undefined) {
    if (!GO_DIGEST_RE.test(d)) throw new ReferenceFormatError('digest.ErrDigestInvalidFormat', d);
    throw new ReferenceFormatError('digest.ErrDigestUnsupported', d);
  }
  if (encoded.length !== len) throw new ReferenceFormatError('digest.ErrDigestInvalidLength', d);
  if (!/^[a-f0-9]+$/.test(encoded)) throw new ReferenceFormatError('digest.ErrDigestInvalidFormat', d);
}

// ---- the reference value ----

export type ReferenceKind = 'named' | 'tagged' | 'canonical';

/**
 * A named image reference. `domain` is '' only for strictly parsed references without one;
 * every normalised reference has a domain (docker.io for Docker Hub).
 */
export class ImageReference {
  readonly domain: string;
  readonly path: string;
  readonly tag?: string;
  readonly digest?: string;

  constructor(domain: string, path: string, tag?: string, digest?: string) {
    this.domain = domain;
    this.path = path;
    if (tag) this.tag = tag;
    if (digest) this.digest = digest;
  }

  /** named (no tag, no digest), tagged (tag only) or canonical (has a digest). */
  get kind(): ReferenceKind {
    return this.digest ? 'canonical' : this.tag ? 'tagged' : 'named';
  }

  /** domain/path (no tag or digest). */
  name(): string {
    return this.domain ? `${this.domain}/${this.path}` : this.path;
  }

  /** name[:tag][@digest], the full form. */
  toString(): string {
    return this.name() + (this.tag ? `:${this.tag}` : '') + (this.digest ? `@${this.digest}` : '');
  }

  /** The short name shown to users: docker.io/ dropped, and library/ for one-level official names. */
  familiarName(): string {
    if (this.domain !== DEFAULT_DOMAIN) return this.name();
    if (this.path.startsWith(OFFICIAL_REPO_PREFIX)) {
      const rest = this.path.slice(OFFICIAL_REPO_PREFIX.length);
      if (!rest.includes('/')) return rest;
    }
    return this.path;
  }

  /** familiarName()[:tag][@digest] */
  familiarString(): string {
    return this.familiarName() + (this.tag ? `:${this.tag}` : '') + (this.digest ? `@${this.digest}` : '');
  }

  /** The host:port a registry client connects to (Docker Hub's docker.io is served by registry-1.docker.io). */
  get registryHost(): string {
    return this.domain === DEFAULT_DOMAIN || this.domain === '' ? DOCKER_HUB_REGISTRY_HOST : this.domain;
  }

  /** The repository path within the registry, e.g. library/nginx. */
  get repository(): string {
    return this.path;
  }

  /** The manifest reference to request: the digest if there is one, else the tag, else "latest". */
  get manifestReference(): string {
    return this.digest ?? this.tag ?? 'latest';
  }

  /** Same name with this tag (keeps a digest, as upstream WithTag does). */
  withTag(tag: string): ImageReference {
    if (!referenceGrammar.tag.test(tag)) throw new ReferenceFormatError('ErrTagInvalidFormat', tag);
    return new ImageReference(this.domain, this.path, tag, this.digest);
  }

  /** Same name with this digest (keeps a tag). The digest is checked against the grammar only. */
  withDigest(digest: string): ImageReference {
    if (!referenceGrammar.digest.test(digest)) throw new ReferenceFormatError('ErrDigestInvalidFormat', digest);
    return new ImageReference(this.domain, this.path, this.tag, digest);
  }

  /** The bare name, without tag or digest. */
  trimmed(): ImageReference {
    return new ImageReference(this.domain, this.path);
  }

  equals(other: ImageReference): boolean {
    return this.toString() === other.toString();
  }
}

/** A digest-only reference (an image ID), as parseAnyReference may return. */
export class DigestReference {
  readonly kind = 'digest' as const;
  readonly digest: string;
  constructor(digest: string) {
    this.digest = digest;
  }
  toString(): string {
    return this.digest;
  }
  familiarString(): string {
    return this.digest;
  }
}

// ---- parsers ----

/** Strict parse (upstream Parse): no normalisation, no defaults. */
export function parseReference(s: string): ImageReference {
  const m = referenceGrammar.reference.exec(s);
  if (!m) {
    if (s === '') throw new ReferenceFormatError('ErrNameEmpty', s);
    if (referenceGrammar.reference.test(s.toLowerCase())) throw new ReferenceFormatError('ErrNameContainsUppercase', s);
    throw new ReferenceFormatError('ErrReferenceInvalidFormat', s);
  }
  const name = m[1]!;
  const nm = referenceGrammar.name.exec(name);
  const domain = nm?.[1] ?? '';
  const path = nm ? nm[2]! : name;
  if (path.length > NAME_TOTAL_LENGTH_MAX) throw new ReferenceFormatError('ErrNameTooLong', s);
  const digest = m[3];
  if (digest) validateReferenceDigest(digest);
  return new ImageReference(domain, path, m[2], digest);
}

/** A bare repository name (upstream WithName): no tag or digest allowed. */
export function parseRepositoryName(name: string): ImageReference {
  const m = referenceGrammar.name.exec(name);
  if (!m) throw new ReferenceFormatError('ErrReferenceInvalidFormat', name);
  if (m[2]!.length > NAME_TOTAL_LENGTH_MAX) throw new ReferenceFormatError('ErrNameTooLong', name);
  return new ImageReference(m[1] ?? '', m[2]!);
}

/** Split a user-typed name into Docker's domain and remainder (docker.io and library/ defaults). */
export function splitDockerDomain(name: string): { domain: string; remainder: string } {
  const i = name.indexOf('/');
  let domain: string;
  let remainder: string;
  const first = i === -1 ? '' : name.slice(0, i);
  if (i === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = first;
    remainder = name.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

/** Docker normalisation (upstream ParseNormalizedNamed): keeps tag and digest, adds no default tag. */
export function parseNormalizedNamed(s: string): ImageReference {
  if (referenceGrammar.identifier.test(s)) {
    throw new ReferenceFormatError('HexIdentifier', s, `invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`);
  }
  const { domain, remainder } = splitDockerDomain(s);
  const tagSep = remainder.indexOf(':');
  const remote = tagSep > -1 ? remainder.slice(0, tagSep) : remainder;
  if (remote.toLowerCase() !== remote) {
    throw new ReferenceFormatError('LowercaseRequired', s, `invalid reference format: repository name (${remote}) must be lowercase`);
  }
  return parseReference(`${domain}/${remainder}`);
}

/**
 * What a builder does with a FROM or --tag value (upstream ParseDockerRef): normalise, add
 * ":latest" when there is neither tag nor digest, drop the tag when a digest is present.
 */
export function parseDockerRef(s: string): ImageReference {
  const r = parseNormalizedNamed(s);
  if (r.digest) return new ImageReference(r.domain, r.path, undefined, r.digest);
  if (!r.tag) return new ImageReference(r.domain, r.path, 'latest');
  return r;
}

/** Only names already in canonical form (upstream ParseNamed); anything normalisation changes is refused. */
export function parseCanonicalName(s: string): ImageReference {
  const r = parseNormalizedNamed(s);
  if (r.toString() !== s) throw new ReferenceFormatError('ErrNameNotCanonical', s);
  return r;
}

/** A reference or an image ID: a bare 64-hex string or a valid digest is a DigestReference. */
export function parseAnyReference(s: string): ImageReference | DigestReference {
  if (referenceGrammar.identifier.test(s)) return new DigestReference(`sha256:${s}`);
  try {
    validateReferenceDigest(s);
    return new DigestReference(s);
  } catch {
    return parseNormalizedNamed(s);
  }
}

/** The familiar (short) form of a normalisable name, e.g. docker.io/library/nginx:1 → nginx:1. */
export function familiarString(s: string): string {
  return parseNormalizedNamed(s).familiarString();
}

/**
 * Glob-match a pattern (Go path.Match syntax) against a reference's familiar string, or failing
 * that its familiar name (upstream FamiliarMatch). A malformed pattern throws.
 */
export function familiarMatch(pattern: string, ref: ImageReference): boolean {
  return pathMatch(pattern, ref.familiarString()) || pathMatch(pattern, ref.familiarName());
}

const badPattern = () => new KilnError('PATTERN_INVALID', 'syntax error in pattern');

/** Split off the leading stars and the following chunk (up to the next `*` outside a class). */
function scanChunk(p: string[]): { star: boolean; chunk: string[]; rest: string[] } {
  let i = 0;
  let star = false;
  while (i < p.length && p[i] === '*') {
    i++;
    star = true;
  }
  const from = i;
  let inRange = false;
  for (; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      if (i + 1 < p.length) i++;
    } else if (c === '[') inRange = true;
    else if (c === ']') inRange = false;
    else if (c === '*' && !inRange) break;
  }
  return { star, chunk: p.slice(from, i), rest: p.slice(i) };
}

/** One class endpoint; throws on a malformed class. Returns the code point and the index after it. */
function classChar(chunk: string[], i: number): [number, number] {
  if (i >= chunk.length || chunk[i] === '-' || chunk[i] === ']') throw badPattern();
  if (chunk[i] === '\\') {
    i++;
    if (i >= chunk.length) throw badPattern();
  }
  const cp = chunk[i]!.codePointAt(0)!;
  i++;
  if (i >= chunk.length) throw badPattern();
  return [cp, i];
}

/**
 * Match one chunk (no `*`) at the start of s. Keeps parsing after a mismatch so a malformed
 * pattern is always reported. Returns the rest of s, or undefined for no match.
 */
function matchChunk(chunk: string[], s: string[]): string[] | undefined {
  let failed = false;
  let si = 0;
  for (let i = 0; i < chunk.length; ) {
    if (!failed && si >= s.length) failed = true;
    const c = chunk[i]!;
    if (c === '[') {
      const r = failed ? -1 : s[si++]!.codePointAt(0)!;
      i++;
      let negated = false;
      if (chunk[i] === '^') {
        negated = true;
        i++;
      }
      let match = false;
      let nrange = 0;
      for (;;) {
        if (i < chunk.length && chunk[i] === ']' && nrange > 0) {
          i++;
          break;
        }
        let lo: number;
        let hi: number;
        [lo, i] = classChar(chunk, i);
        hi = lo;
        if (chunk[i] === '-') [hi, i] = classChar(chunk, i + 1);
        if (lo <= r && r <= hi) match = true;
        nrange++;
      }
      if (match === negated) failed = true;
    } else if (c === '?') {
      if (!failed) {
        if (s[si] === '/') failed = true;
        si++;
      }
      i++;
    } else {
      if (c === '\\') {
        i++;
        if (i >= chunk.length) throw badPattern();
      }
      if (!failed) {
        if (chunk[i] !== s[si]) failed = true;
        si++;
      }
      i++;
    }
  }
  return failed ? undefined : s.slice(si);
}

/**
 * Go path.Match: `*` any run of non-'/', `?` one non-'/', `[…]` classes (`^` negates), `\` escapes.
 * Throws KilnError("syntax error in pattern") for a malformed pattern, as Go reports ErrBadPattern.
 */
export function pathMatch(pattern: string, name: string): boolean {
  let pat = Array.from(pattern);
  let rest = Array.from(name);
  outer: while (pat.length > 0) {
    const { star, chunk, rest: after } = scanChunk(pat);
    pat = after;
    if (star && chunk.length === 0) return !rest.includes('/');
    const t = matchChunk(chunk, rest);
    if (t && (t.length === 0 || pat.length > 0)) {
      rest = t;
      continue;
    }
    if (star) {
      for (let i = 0; i < rest.length && rest[i] !== '/'; i++) {
        const t2 = matchChunk(chunk, rest.slice(i + 1));
        if (t2) {
          if (pat.length === 0 && t2.length > 0) continue;
          rest = t2;
          continue outer;
        }
      }
    }
    while (pat.length > 0) {
      const next = scanChunk(pat);
      pat = next.rest;
      matchChunk(next.chunk, []);
    }
    return false;
  }
  return rest.length === 0;
}
