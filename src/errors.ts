/**
 * kiln's error model. Every error kiln raises on purpose is a KilnError with a
 * stable `code` (for scripts and tests), a `hint` (what the user can do), and
 * an optional `cause`. Subclasses carry where the failure happened.
 *
 * Message grammar: the failed action first, values quoted:
 *   Cannot pull "127.0.0.1:5000/base:1": 401 UNAUTHORIZED: authentication required
 * Credentials never appear in a message: use redactUrl() for URLs.
 */

export interface KilnErrorOptions {
  hint?: string;
  cause?: unknown;
}

export class KilnError extends Error {
  readonly code: string;
  readonly hint?: string;

  constructor(code: string, message: string, options: KilnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    if (options.hint !== undefined) this.hint = options.hint;
  }
}

/** A position in a Dockerfile: 1-based lines, inclusive. */
export interface SourceRange {
  startLine: number;
  endLine: number;
}

export interface DockerfileErrorOptions extends KilnErrorOptions {
  file: string;
  range?: SourceRange;
  instruction?: string;
  code?: string;
}

/** Bad Dockerfile input: names the file, the lines and the instruction. */
export class DockerfileError extends KilnError {
  readonly file: string;
  readonly range?: SourceRange;
  readonly instruction?: string;
  /** The message without the location prefix. */
  readonly detail: string;

  constructor(detail: string, options: DockerfileErrorOptions) {
    const where = options.range ? `${options.file}:${options.range.startLine}` : options.file;
    const what = options.instruction ? ` ${options.instruction}:` : '';
    super(options.code ?? 'DOCKERFILE_INVALID', `${where}:${what} ${detail}`, options);
    this.file = options.file;
    this.detail = detail;
    if (options.range) this.range = options.range;
    if (options.instruction) this.instruction = options.instruction;
  }
}

export interface RegistryErrorOptions extends KilnErrorOptions {
  registry: string;
  repository?: string;
  method?: string;
  /** Already redacted: never pass a URL with credentials or tokens. */
  url?: string;
  status?: number;
  code?: string;
}

/** A registry refused or failed a request. */
export class RegistryError extends KilnError {
  readonly registry: string;
  readonly repository?: string;
  readonly method?: string;
  readonly url?: string;
  readonly status?: number;

  constructor(message: string, options: RegistryErrorOptions) {
    super(options.code ?? 'REGISTRY_ERROR', message, options);
    this.registry = options.registry;
    if (options.repository !== undefined) this.repository = options.repository;
    if (options.method !== undefined) this.method = options.method;
    if (options.url !== undefined) this.url = redactUrl(options.url);
    if (options.status !== undefined) this.status = options.status;
  }
}

/** Bytes whose sha256 (or size) differ from the digest they were promised under. */
export class DigestMismatchError extends KilnError {
  readonly expected: string;
  readonly actual: string;
  readonly bytes: number;

  constructor(expected: string, actual: string, bytes: number, options: KilnErrorOptions & { what?: string } = {}) {
    const what = options.what ? ` of ${options.what}` : '';
    super(
      'DIGEST_MISMATCH',
      `Content${what} does not match its digest: expected "${expected}", got "${actual}" after ${bytes} bytes`,
      { hint: options.hint ?? 'The source sent corrupted or tampered content; nothing was stored.', cause: options.cause },
    );
    this.expected = expected;
    this.actual = actual;
    this.bytes = bytes;
  }
}

/** A sandboxed (or helper) process exited non-zero. Message uses BuildKit's wording. */
export class ProcessError extends KilnError {
  readonly argv: string[];
  readonly exitCode: number | null;
  readonly signal?: string;
  readonly stderrTail: string[];

  constructor(argv: string[], exitCode: number | null, options: KilnErrorOptions & { signal?: string; stderrTail?: string[]; display?: string } = {}) {
    const shown = options.display ?? JSON.stringify(argv.join(' '));
    const how = exitCode === null ? `signal: ${options.signal ?? 'unknown'}` : `exit code: ${exitCode}`;
    super('PROCESS_FAILED', `process ${shown} did not complete successfully: ${how}`, options);
    this.argv = argv;
    this.exitCode = exitCode;
    if (options.signal !== undefined) this.signal = options.signal;
    this.stderrTail = options.stderrTail ?? [];
  }
}

/** The host lacks something kiln needs; the hint carries the exact fix. */
export class HostError extends KilnError {
  constructor(message: string, options: KilnErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'HOST_UNSUPPORTED', message, options);
  }
}

/** A user-supplied option or argument is invalid. */
export class UsageError extends KilnError {
  constructor(message: string, options: KilnErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'USAGE', message, options);
  }
}

/** Something asked for does not exist (image, tag, stage, blob). */
export class NotFoundError extends KilnError {
  constructor(message: string, options: KilnErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'NOT_FOUND', message, options);
  }
}

/** Remove userinfo and token-like query values from a URL before showing it. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = u.username ? 'REDACTED' : '';
      u.password = '';
    }
    for (const key of [...u.searchParams.keys()]) {
      if (/token|signature|sig|credential|password|secret|key/i.test(key)) u.searchParams.set(key, 'REDACTED');
    }
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//REDACTED@');
  }
}
