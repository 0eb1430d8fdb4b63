import * as http from 'http';
import { freePort } from './moto';

/** What the proxy does with one request. */
export type Fault =
  | 'pass'
  /** answer 400 ThrottlingException without forwarding */
  | 'throttle'
  /** answer 500 ServerException without forwarding */
  | 'server-error'
  /** forward, then lose the answer: the call took effect, the client sees 503 */
  | 'lose-response';

export interface FaultProxy {
  readonly endpoint: string;
  stop(): Promise<void>;
}

/**
 * An HTTP proxy on loopback in front of moto that injects the faults AWS APIs produce (throttling, 5xx, a
 * response lost after the call took effect), chosen per request by `decide` from the JSON-protocol target
 * and body. Requests `decide` marks `serialize` are forwarded one at a time.
 */
export async function startFaultProxy(target: string, decide: (operation: string, body: any) => Fault,
  onForwarded: (operation: string, body: any, status: number) => void = () => undefined): Promise<FaultProxy> {
  const upstream = new URL(target);
  let chain: Promise<unknown> = Promise.resolve();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', c => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const operation = String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '';
      let body: any;
      try {
        body = JSON.parse(raw.toString('utf-8') || '{}');
      } catch {
        body = {};
      }
      const fault = decide(operation, body);
      const fail = (status: number, type: string) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type });
        res.end(JSON.stringify({ __type: type, message: `injected ${type}` }));
      };
      if (fault === 'throttle') {
        return fail(400, 'ThrottlingException');
      }
      if (fault === 'server-error') {
        return fail(500, 'ServerException');
      }
      // forwarded one at a time: ECR's one-scan-per-image rule is atomic, moto's check-then-set is not
      const forward = () => new Promise<void>(done => {
        const proxied = http.request({
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
        }, upstreamRes => {
          const out: Buffer[] = [];
          upstreamRes.on('data', c => out.push(c));
          upstreamRes.on('end', () => {
            onForwarded(operation, body, upstreamRes.statusCode ?? 0);
            if (fault === 'lose-response') {
              fail(503, 'ServiceUnavailableException');
            } else {
              res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
              res.end(Buffer.concat(out));
            }
            done();
          });
        });
        proxied.on('error', () => {
          fail(502, 'BadGateway');
          done();
        });
        proxied.end(raw);
      });
      chain = chain.then(forward);
    });
  });
  const port = await freePort();
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>(resolve => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** A small seeded PRNG (a linear congruential generator): the same faults on every run. */
export function seededRandom(seed: number): () => number {
  let state = seed % 4294967296;
  return () => {
    state = (state * 1664525 + 1013904223) % 4294967296;
    return state / 4294967296;
  };
}

/** What the HTTP proxy does with one request. */
export type HttpFault =
  | { readonly kind: 'pass' }
  /** answer this status without forwarding (with these headers, e.g. `Retry-After`) */
  | { readonly kind: 'status'; readonly status: number; readonly headers?: Record<string, string> }
  /** forward, then slow the response body to this many bytes per second after this many bytes */
  | { readonly kind: 'slow'; readonly afterBytes: number; readonly bytesPerSecond: number }
  /** forward, then cut the connection after this many bytes of the response body */
  | { readonly kind: 'cut'; readonly afterBytes: number }
  /** wait this long before forwarding */
  | { readonly kind: 'delay'; readonly ms: number }
  /** forward once this promise settles (a test holds requests back and sees which others arrive meanwhile) */
  | { readonly kind: 'hold'; readonly until: Promise<unknown> };

/**
 * A streaming HTTP proxy on loopback in front of a registry (or any HTTP server) that injects the faults a
 * network and an overloaded upstream produce: a 5xx, a body cut in the middle, a slow request. Nothing is
 * buffered: bodies flow through as they come. The Host header is kept, so URLs the server builds point back at
 * the proxy.
 */
export async function startHttpFaultProxy(target: string, decide: (method: string, path: string) => HttpFault): Promise<FaultProxy> {
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const fault = decide(req.method ?? 'GET', req.url ?? '/');
    if (fault.kind === 'status') {
      // answered once the request's body is in, as a registry does: an answer sent mid-upload would reach the client as a reset
      req.resume().on('end', () => {
        res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
        res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `injected ${fault.status}` }] }));
      });
      return;
    }
    const forward = () => {
      const options = { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers };
      const proxied = http.request(options, upstreamRes => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        if (fault.kind === 'slow') {
          slowDown(upstreamRes, res, fault.afterBytes, fault.bytesPerSecond);
          return;
        }
        if (fault.kind !== 'cut') {
          upstreamRes.pipe(res);
          return;
        }
        let sent = 0;
        upstreamRes.on('data', (chunk: Buffer) => {
          if (sent + chunk.length >= fault.afterBytes) {
            res.write(chunk.subarray(0, Math.max(0, fault.afterBytes - sent)));
            upstreamRes.destroy();
            res.socket?.destroy(); // the connection drops in the middle of the body
            return;
          }
          sent += chunk.length;
          res.write(chunk);
        });
        upstreamRes.on('end', () => res.end());
      });
      proxied.on('error', () => res.socket?.destroy());
      req.pipe(proxied);
    };
    if (fault.kind === 'delay') {
      setTimeout(forward, fault.ms);
    } else if (fault.kind === 'hold') {
      void fault.until.finally(forward);
    } else {
      forward();
    }
  });
  const port = await freePort();
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>(resolve => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Passes `from` to `to` at full speed for `afterBytes`, then in 1 KiB pieces at `bytesPerSecond` (a stalling network). */
function slowDown(from: http.IncomingMessage, to: http.ServerResponse, afterBytes: number, bytesPerSecond: number): void {
  let sent = 0;
  const pending: Buffer[] = [];
  let ended = false;
  let timer: NodeJS.Timeout | undefined;
  const drip = () => {
    const chunk = pending.shift();
    if (!chunk) {
      timer = undefined;
      if (ended) {
        to.end();
      }
      return;
    }
    const piece = chunk.subarray(0, 1024);
    if (chunk.length > 1024) {
      pending.unshift(chunk.subarray(1024));
    }
    to.write(piece);
    timer = setTimeout(drip, (piece.length / bytesPerSecond) * 1000);
  };
  from.on('data', (chunk: Buffer) => {
    const fast = Math.max(0, Math.min(chunk.length, afterBytes - sent));
    sent += chunk.length;
    if (fast > 0 && pending.length === 0) {
      to.write(chunk.subarray(0, fast));
    }
    const rest = fast > 0 && pending.length === 0 ? chunk.subarray(fast) : chunk;
    if (rest.length > 0) {
      pending.push(rest);
      timer ??= setTimeout(drip, 0);
    }
  });
  from.on('end', () => {
    ended = true;
    if (!timer && pending.length === 0) {
      to.end();
    }
  });
  to.on('close', () => {
    if (timer) {
      clearTimeout(timer);
    }
    from.destroy();
  });
}
