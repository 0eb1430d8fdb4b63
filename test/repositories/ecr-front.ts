import * as http from 'http';
import { AddressInfo } from 'net';

/**
 * What moto 5.2.1 lacks for the repository handlers, put in front of it on loopback: DescribeRepositories answered in
 * pages of `maxResults` with a `nextToken` (moto returns every repository in one page), DescribePullThroughCacheRules
 * (moto has no pull through cache API) from `rules`, a ThrottlingException on the calls `throttle` picks, and the
 * CloudFormation response URL (`/cfn`). Everything else is forwarded to moto as it came, concurrently.
 * Wire format: JSON 1.1, errors as `__type` (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/CommonErrors.html).
 */
export interface EcrFront {
  readonly endpoint: string;
  readonly responseUrl: string;
  /** Prefixes that have a pull through cache rule. */
  readonly rules: Set<string>;
  /** Operations forwarded to moto (or answered here), in order. */
  readonly calls: Array<{ operation: string; body: any }>;
  /** CloudFormation responses received. */
  readonly responses: Array<Record<string, any>>;
  /** Whether to throttle this call instead of answering it. */
  throttle: (operation: string, body: any) => boolean;
  stop(): Promise<void>;
}

function read(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise(resolve => {
    const chunks: Buffer[] = [];
    req.on('data', c => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

export async function startEcrFront(motoEndpoint: string): Promise<EcrFront> {
  const moto = new URL(motoEndpoint);
  const forward = (req: http.IncomingMessage, raw: Buffer) => new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>(
    (resolve, reject) => {
      const proxied = http.request({
        host: moto.hostname,
        port: moto.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, 'host': moto.host, 'content-length': String(raw.length) },
      }, res => void read(res).then(body => resolve({ status: res.statusCode ?? 502, headers: res.headers, body })));
      proxied.on('error', reject);
      proxied.end(raw);
    });
  const front: Omit<EcrFront, 'endpoint' | 'responseUrl' | 'stop'> = { rules: new Set(), calls: [], responses: [], throttle: () => false };
  const server = http.createServer((req, res) => void (async (): Promise<unknown> => {
    const raw = await read(req);
    if (req.url === '/cfn') {
      front.responses.push(JSON.parse(raw.toString()));
      return res.writeHead(200).end();
    }
    const operation = String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '';
    const body = JSON.parse(raw.toString() || '{}');
    const json = (status: number, payload: object) =>
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(payload));
    if (front.throttle(operation, body)) {
      return json(400, { __type: 'ThrottlingException', message: 'Rate exceeded' });
    }
    front.calls.push({ operation, body });
    if (operation === 'DescribePullThroughCacheRules') {
      const found = (body.ecrRepositoryPrefixes ?? []).filter((p: string) => front.rules.has(p));
      if (found.length === 0) {
        return json(400, { __type: 'PullThroughCacheRuleNotFoundException', message: 'The pull through cache rule was not found' });
      }
      return json(200, { pullThroughCacheRules: found.map((p: string) => ({ ecrRepositoryPrefix: p, upstreamRegistryUrl: 'quay.io' })) });
    }
    if (operation === 'DescribeRepositories' && !body.repositoryNames) {
      const all = await forward(req, Buffer.from(JSON.stringify({})));
      const repositories = JSON.parse(all.body.toString()).repositories;
      const start = Number(body.nextToken ?? 0);
      const size = body.maxResults ?? 100;
      const end = start + size;
      return json(200, { repositories: repositories.slice(start, end), ...(end < repositories.length ? { nextToken: String(end) } : {}) });
    }
    const answer = await forward(req, raw);
    return res.writeHead(answer.status, answer.headers).end(answer.body);
  })().catch(error => res.writeHead(502).end(String(error))));
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(front, {
    endpoint,
    responseUrl: `${endpoint}/cfn`,
    stop: () => new Promise<void>(resolve => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  });
}
