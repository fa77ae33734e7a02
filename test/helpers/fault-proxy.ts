/**
 * A loopback HTTP proxy in front of the test registry that injects faults.
 *
 *   const proxy = await startFaultProxy(reg.url);
 *   proxy.addFault({ match: (m, p) => m === 'GET' && p.includes('/blobs/'), fault: 'reset', times: 1 });
 *   `${proxy.host}/busybox:latest`   // use in references (loopback: plain HTTP allowed)
 *   proxy.log                        // every request: method, path, fault, status, Range, Content-Range
 *   await proxy.stop();
 *
 * Faults (each applied to the first `times` matching requests, default 1):
 *   status     answer `status` (e.g. 500, 429 with `retryAfter` seconds) without forwarding
 *   reset      forward, send the headers and half the body, then destroy the socket (a response
 *              without a body: destroy the socket once the upstream has answered)
 *   truncate   forward, send half the body without Content-Length (chunked), end cleanly
 *   corrupt    forward, flip one byte in the middle of the body (length unchanged)
 *   ignore-range  forward without the Range header (the registry answers 200 with the whole blob)
 *   redirect   answer 307 to http://PROXY/_storage/<path>?X-Signature=… (like blob storage with
 *              signed URLs); /_storage/ requests are forwarded to the upstream path with
 *              `storageAuthorization` (if given) instead of the client's Authorization
 * Host/Location headers are rewritten so redirects and upload sessions stay on the proxy.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FaultKind = 'status' | 'reset' | 'truncate' | 'corrupt' | 'redirect' | 'ignore-range';

export interface Fault {
  match: (method: string, path: string) => boolean;
  fault: FaultKind;
  times?: number;
  status?: number;
  retryAfter?: number;
}

export interface FaultProxy {
  host: string;
  url: string;
  log: Array<{ method: string; path: string; fault?: FaultKind; status: number; range?: string; contentRange?: string; authorization: boolean }>;
  addFault(f: Fault): void;
  clearFaults(): void;
  stop(): Promise<void>;
}

export async function startFaultProxy(upstreamUrl: string, opts: { storageAuthorization?: string } = {}): Promise<FaultProxy> {
  const upstream = new URL(upstreamUrl);
  const faults: Array<Fault & { left: number }> = [];
  const log: FaultProxy['log'] = [];
  let self = '';

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const f = faults.find((x) => x.left > 0 && x.match(method, path));
    if (f) f.left--;
    const entry: FaultProxy['log'][number] = { method, path, status: 0, authorization: req.headers.authorization !== undefined };
    if (f) entry.fault = f.fault;
    if (typeof req.headers.range === 'string') entry.range = req.headers.range;
    if (typeof req.headers['content-range'] === 'string') entry.contentRange = req.headers['content-range'];
    log.push(entry);
    if (f?.fault === 'status') {
      req.resume();
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (f.retryAfter !== undefined) headers['retry-after'] = String(f.retryAfter);
      entry.status = f.status ?? 500;
      res.writeHead(entry.status, headers);
      res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'injected fault' }] }));
      return;
    }
    if (f?.fault === 'redirect') {
      req.resume();
      entry.status = 307;
      res.writeHead(307, { location: `http://${self}/_storage${path}${path.includes('?') ? '&' : '?'}X-Signature=signed-url-secret` });
      res.end();
      return;
    }
    const headers = { ...req.headers, host: upstream.host };
    if (f?.fault === 'ignore-range') delete headers.range;
    let upPath = path;
    if (path.startsWith('/_storage/')) {
      upPath = path.slice('/_storage'.length).replace(/[?&]X-Signature=[^&]*$/, '');
      delete headers.authorization;
      if (opts.storageAuthorization) headers.authorization = opts.storageAuthorization;
    }
    const up = request({ host: upstream.hostname, port: upstream.port, method, path: upPath, headers }, (ur) => {
      const outHeaders = { ...ur.headers };
      if (typeof outHeaders.location === 'string') outHeaders.location = outHeaders.location.replace(upstream.origin, `http://${self}`);
      entry.status = ur.statusCode ?? 0;
      const hasBody = method !== 'HEAD' && Number(ur.headers['content-length'] ?? 1) > 0;
      if (f?.fault === 'reset' && !hasBody) {
        // The upstream handled the request; the client never hears back.
        ur.resume();
        res.socket?.destroy();
        return;
      }
      if (!f || !hasBody || f.fault === 'ignore-range') {
        res.writeHead(ur.statusCode ?? 502, outHeaders);
        ur.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      ur.on('data', (c: Buffer) => chunks.push(c));
      ur.on('end', () => {
        const body = Buffer.concat(chunks);
        const half = body.subarray(0, Math.floor(body.length / 2));
        if (f.fault === 'corrupt') {
          const b = Buffer.from(body);
          const i = Math.floor(b.length / 2);
          b[i] = b[i]! ^ 0xff;
          res.writeHead(ur.statusCode ?? 200, outHeaders);
          res.end(b);
        } else if (f.fault === 'truncate') {
          delete outHeaders['content-length'];
          res.writeHead(ur.statusCode ?? 200, outHeaders);
          res.end(half);
        } else {
          res.writeHead(ur.statusCode ?? 200, outHeaders);
          res.write(half, () => setTimeout(() => res.socket?.destroy(), 20));
        }
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  };

  const server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  self = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host: self,
    url: `http://${self}`,
    log,
    addFault: (f) => faults.push({ ...f, left: f.times ?? 1 }),
    clearFaults: () => void faults.splice(0),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
