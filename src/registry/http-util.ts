import type { IncomingHttpHeaders } from 'node:http';

/** First value of a header (undici gives string | string[]). */
export function header(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Network-level failures worth retrying (resets, timeouts, refused, premature close). */
export function isRetryableNetworkError(err: unknown): boolean {
  const e = err as { code?: string; name?: string; message?: string; cause?: unknown };
  if (!e) return false;
  const codes = new Set([
    'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENETUNREACH', 'EHOSTUNREACH', 'EAI_AGAIN', 'ECONNABORTED',
    'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
    'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_ABORTED',
  ]);
  if (e.code && codes.has(e.code)) return true;
  if (e.message && /other side closed|socket hang up|terminated|premature close/i.test(e.message)) return true;
  return e.cause !== undefined && e.cause !== err ? isRetryableNetworkError(e.cause) : false;
}

/** Retry-After (seconds or HTTP date) → milliseconds, or undefined. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** The registry's error body {"errors":[{"code","message"}]} as "CODE: message", or the status text. */
export function describeErrorBody(text: string): string | undefined {
  try {
    const doc = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    if (Array.isArray(doc.errors) && doc.errors.length) {
      return doc.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
    }
  } catch {
    /* not JSON */
  }
  const t = text.trim();
  return t && t.length < 200 && !/[<>]/.test(t) ? t : undefined;
}

/** Scope string for a repository: "repository:NAME:pull" or "...:pull,push". */
export function repositoryScope(repository: string, actions: Array<'pull' | 'push' | 'delete'>): string {
  return `repository:${repository}:${actions.join(',')}`;
}
