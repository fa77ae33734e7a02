import type * as U from 'undici';
import { Agent, Dispatcher, ProxyAgent } from './undici-lite.js';
import { isLoopbackHost } from './registries-conf.js';

/**
 * HTTP(S)_PROXY / NO_PROXY as Go's net/http reads them (what docker and skopeo use):
 * https:// origins use HTTPS_PROXY, http:// ones HTTP_PROXY (upper case first, then
 * lower case); NO_PROXY is a comma/space separated list of hosts, ".domain" or
 * "domain" suffixes (subdomains included), host:port entries, IPs, CIDRs or "*".
 * Loopback destinations are never proxied.
 */
export interface ProxySettings {
  httpProxy?: string;
  httpsProxy?: string;
  noProxy: string;
}

export function proxySettings(env: NodeJS.ProcessEnv): ProxySettings | undefined {
  const httpProxy = env.HTTP_PROXY || env.http_proxy || undefined;
  const httpsProxy = env.HTTPS_PROXY || env.https_proxy || undefined;
  if (!httpProxy && !httpsProxy) return undefined;
  const out: ProxySettings = { noProxy: env.NO_PROXY ?? env.no_proxy ?? '' };
  if (httpProxy) out.httpProxy = httpProxy.includes('://') ? httpProxy : `http://${httpProxy}`;
  if (httpsProxy) out.httpsProxy = httpsProxy.includes('://') ? httpsProxy : `http://${httpsProxy}`;
  return out;
}

function ipv4ToInt(ip: string): number | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** True when a request to `host` (no brackets) on `port` must not go through the proxy. */
export function bypassProxy(host: string, port: string, noProxy: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (isLoopbackHost(h)) return true;
  for (let entry of noProxy.split(/[\s,]+/).filter(Boolean)) {
    entry = entry.toLowerCase();
    if (entry === '*') return true;
    const cidr = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(entry);
    if (cidr) {
      const ip = ipv4ToInt(h);
      const net = ipv4ToInt(cidr[1]!);
      const bits = Number(cidr[2]);
      if (ip !== undefined && net !== undefined && bits <= 32) {
        const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
        if ((ip & mask) === (net & mask)) return true;
      }
      continue;
    }
    let entryPort: string | undefined;
    const pm = /^(.*):(\d+)$/.exec(entry);
    if (pm && !entry.includes(']') && (pm[1]!.match(/:/g) ?? []).length === 0) {
      entry = pm[1]!;
      entryPort = pm[2];
    }
    entry = entry.replace(/^\[|\]$/g, '');
    if (entryPort !== undefined && entryPort !== port) continue;
    if (entry.startsWith('*.')) entry = entry.slice(1);
    if (entry.startsWith('.')) {
      if (h.endsWith(entry) || h === entry.slice(1)) return true;
    } else if (h === entry || h.endsWith(`.${entry}`)) return true;
  }
  return false;
}

/**
 * A dispatcher that sends each request through the proxy its origin calls for, or
 * directly. `tls` applies to the registry connection (also inside a CONNECT tunnel).
 */
export class ProxyDispatcher extends Dispatcher {
  private readonly direct: U.Agent;
  private readonly http?: U.ProxyAgent;
  private readonly https?: U.ProxyAgent;

  constructor(
    private readonly settings: ProxySettings,
    agentOptions: U.Agent.Options,
    tls?: { rejectUnauthorized: boolean; ca?: string[] },
  ) {
    super();
    this.direct = new Agent({ ...agentOptions, ...(tls ? { connect: tls } : {}) });
    const proxied = (uri: string) => new ProxyAgent({ ...agentOptions, uri, ...(tls ? { requestTls: tls } : {}) });
    if (settings.httpProxy) this.http = proxied(settings.httpProxy);
    if (settings.httpsProxy) this.https = proxied(settings.httpsProxy);
  }

  private pick(origin: URL): U.Dispatcher {
    const secure = origin.protocol === 'https:';
    const proxy = secure ? this.https : this.http;
    if (!proxy) return this.direct;
    const port = origin.port || (secure ? '443' : '80');
    return bypassProxy(origin.hostname, port, this.settings.noProxy) ? this.direct : proxy;
  }

  override dispatch(options: U.Dispatcher.DispatchOptions, handler: U.Dispatcher.DispatchHandlers): boolean {
    return this.pick(new URL(String(options.origin))).dispatch(options, handler);
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    const done = Promise.all([this.direct.close(), this.http?.close(), this.https?.close()]).then(() => undefined);
    if (!callback) return done;
    done.then(callback, callback);
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const err = typeof a === 'function' ? null : (a ?? null);
    const callback = typeof a === 'function' ? a : b;
    const done = Promise.all([this.direct.destroy(err), this.http?.destroy(err), this.https?.destroy(err)]).then(() => undefined);
    if (!callback) return done;
    done.then(callback, callback);
  }
}
