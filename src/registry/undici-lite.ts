/**
 * The parts of undici kiln uses — Agent, Dispatcher, request() and (lazily) ProxyAgent — loaded
 * without undici's index, which also loads fetch, WebSocket, EventSource, caches and mocks
 * (~40 ms of module loading in every registry command). Same classes, same behaviour:
 * request(url, opts) splits the URL into origin and path exactly as undici's own does and
 * calls opts.dispatcher.request(). If a future undici moves these files, the full package
 * is loaded instead.
 */
import './wasm-tiering.js';
import { createRequire } from 'node:module';
import type * as U from 'undici';

const require = createRequire(import.meta.url);

interface Lite {
  Agent: typeof U.Agent;
  Dispatcher: typeof U.Dispatcher;
}

function load(): Lite {
  try {
    const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as typeof U.Dispatcher;
    const Agent = require('undici/lib/dispatcher/agent.js') as typeof U.Agent;
    const api = require('undici/lib/api/index.js') as object;
    // What undici's index does: the request/stream/pipeline/… methods live on Dispatcher.prototype.
    if (typeof (Dispatcher.prototype as { request?: unknown }).request !== 'function') Object.assign(Dispatcher.prototype, api);
    if (typeof Agent !== 'function' || typeof (Dispatcher.prototype as { request?: unknown }).request !== 'function') throw new Error('unexpected undici layout');
    return { Agent, Dispatcher };
  } catch {
    const full = require('undici') as typeof U;
    return { Agent: full.Agent, Dispatcher: full.Dispatcher };
  }
}

/** undici's ProxyAgent, loaded on first use (only when a proxy is configured). */
export function loadProxyAgent(): typeof U.ProxyAgent {
  try {
    const ProxyAgent = require('undici/lib/dispatcher/proxy-agent.js') as typeof U.ProxyAgent;
    if (typeof ProxyAgent === 'function') return ProxyAgent;
  } catch {
    /* moved: use the package's export */
  }
  return (require('undici') as typeof U).ProxyAgent;
}

const lite = load();
export const Agent = lite.Agent;
export const Dispatcher = lite.Dispatcher;

export type RequestOptions = Omit<U.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & { method?: U.Dispatcher.HttpMethod; dispatcher: U.Dispatcher };

/** undici's request(url, opts) with an explicit dispatcher (kiln never uses the global one). */
export function request(url: string | URL, opts: RequestOptions): Promise<U.Dispatcher.ResponseData> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const { dispatcher, ...rest } = opts;
  return dispatcher.request({ ...rest, origin: u.origin, path: u.search ? `${u.pathname}${u.search}` : u.pathname, method: opts.method ?? (opts.body ? 'PUT' : 'GET') });
}
