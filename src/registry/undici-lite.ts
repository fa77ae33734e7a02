/**
 * The parts of undici kiln uses — Agent, Dispatcher, request() and ProxyAgent — loaded
 * without undici's index, which also loads fetch, WebSocket, EventSource, caches and mocks
 * (~40 ms of module loading in every registry command). Same classes, same behaviour:
 * request(url, opts) splits the URL into origin and path exactly as undici's own does and
 * calls opts.dispatcher.request(). Static imports, so that the CLI bundle includes these files
 * and V8's code cache covers them (required one by one from node_modules, they cost ~25 ms of
 * every build that talks to a registry). undici's version is pinned by package-lock.json: a
 * release that moves them fails the build and the tests, not a user's build.
 */
import './wasm-tiering.js';
import type * as U from 'undici';
import DispatcherClass from 'undici/lib/dispatcher/dispatcher.js';
import AgentClass from 'undici/lib/dispatcher/agent.js';
import api from 'undici/lib/api/index.js';
import ProxyAgentClass from 'undici/lib/dispatcher/proxy-agent.js';

// What undici's index does: the request/stream/pipeline/… methods live on Dispatcher.prototype.
if (typeof (DispatcherClass.prototype as { request?: unknown }).request !== 'function') Object.assign(DispatcherClass.prototype, api);

export const Agent = AgentClass;
export const Dispatcher = DispatcherClass;
/** Constructed only when a proxy is configured. */
export const ProxyAgent = ProxyAgentClass;

export type RequestOptions = Omit<U.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & { method?: U.Dispatcher.HttpMethod; dispatcher: U.Dispatcher };

/** undici's request(url, opts) with an explicit dispatcher (kiln never uses the global one). */
export function request(url: string | URL, opts: RequestOptions): Promise<U.Dispatcher.ResponseData> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const { dispatcher, ...rest } = opts;
  return dispatcher.request({ ...rest, origin: u.origin, path: u.search ? `${u.pathname}${u.search}` : u.pathname, method: opts.method ?? (opts.body ? 'PUT' : 'GET') });
}
