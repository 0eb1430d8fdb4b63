import { createHash } from 'crypto';
import * as http from 'http';
import { AddressInfo } from 'net';
import { ChunkedUpload, startUpload } from '../../src/mirror/blob-upload';
import { RegistryClient } from '../../src/mirror/oci-client';

/**
 * The credentials a copy holds (the destination's ECR token, the upstream's username and password) reach the
 * registry they belong to and nothing else, whatever a hostile or misconfigured registry answers: an upload
 * `Location` on another host, a redirect to a host that then asks for credentials with a token realm of its own.
 * Each "registry" here is a plain HTTP server on loopback that answers as the attack needs (a real registry
 * never does), and every request it receives is recorded with its `Authorization` header.
 */
const ECR_TOKEN = 'Basic QVdTOnNlY3JldC1lY3ItdG9rZW4='; // AWS:secret-ecr-token
const UPSTREAM = { username: 'upstream-user', password: 'upstream-secret' };

interface Seen { readonly method: string; readonly url: string; readonly authorization?: string }
interface Host { readonly url: string; readonly seen: Seen[]; stop(): Promise<void> }

async function host(answer: (req: http.IncomingMessage, res: http.ServerResponse, url: string) => void): Promise<Host> {
  const seen: Seen[] = [];
  let url = '';
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
    req.resume();
    req.on('end', () => answer(req, res, url));
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    stop: () => new Promise<void>(resolve => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const hosts: Host[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map(h => h.stop()));
});
async function started(answer: Parameters<typeof host>[0]): Promise<Host> {
  const h = await host(answer);
  hosts.push(h);
  return h;
}

/** The blob's bytes as the copy reads a source body: an async stream of buffers. */
async function* source(text: string): AsyncIterable<Buffer> {
  yield Buffer.from(text);
}

const DIGEST = `sha256:${createHash('sha256').update('abcd').digest('hex')}`;

test('an upload session whose Location is on another host is refused with the reason; the ECR token never goes there', async () => {
  const elsewhere = await started((_req, res) => res.writeHead(202, { Range: '0-3' }).end());
  const registry = await started((_req, res) => res.writeHead(202, { Location: `${elsewhere.url}/v2/app/blobs/uploads/stolen` }).end());
  const client = new RegistryClient({ url: registry.url, authorization: ECR_TOKEN });
  const attempt = async () => {
    const { session, chunkBytes } = await startUpload(client, 'app', DIGEST, 4);
    await new ChunkedUpload(client, 'app', 4, session).write(source('abcd'), { chunkBytes });
  };
  await expect(attempt()).rejects.toThrow(new RegExp(`^upload ${DIGEST} to app: PATCH 0-3: PATCH 127\\.0\\.0\\.1:\\d+/v2/app/blobs/uploads/stolen: the registry at ${registry.url} `
    + 'named a location on another host \\(http://127\\.0\\.0\\.1:\\d+\\); its credentials are never sent there'));
  expect(elsewhere.seen).toEqual([]);
});

test('a PATCH answer that moves the session to another host: the commit is refused, never sent there with the token', async () => {
  const elsewhere = await started((_req, res) => res.writeHead(201).end());
  const registry = await started((req, res) => (req.method === 'POST'
    ? res.writeHead(202, { Location: '/v2/app/blobs/uploads/1' }).end()
    : res.writeHead(202, { Range: '0-3', Location: `${elsewhere.url}/v2/app/blobs/uploads/2` }).end()));
  const client = new RegistryClient({ url: registry.url, authorization: ECR_TOKEN });
  const { session, chunkBytes } = await startUpload(client, 'app', DIGEST, 4);
  await expect(new ChunkedUpload(client, 'app', 4, session).write(source('abcd'), { chunkBytes }))
    .rejects.toThrow(/commit: PUT 127\.0\.0\.1:\d+\/v2\/app\/blobs\/uploads\/2: the registry at .* named a location on another host/);
  expect(registry.seen.map(s => [s.method, s.authorization])).toEqual([['POST', ECR_TOKEN], ['PATCH', ECR_TOKEN]]);
  expect(elsewhere.seen).toEqual([]);
});

test('a blob redirected to a host that asks for credentials (401 with its own token realm): the upstream secret never leaves the registry', async () => {
  const realm = await started((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"token":"t"}'));
  const cdn = await started((_req, res) => res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="${realm.url}/token",service="cdn"` }).end());
  // a registry that serves its blobs anonymously (a public repository), though the copy holds credentials for it
  const registry = await started((_req, res) => res.writeHead(307, { Location: `${cdn.url}/blob?signed=1` }).end());
  const client = new RegistryClient({ url: registry.url, credentials: UPSTREAM });
  await expect(client.getBlob('app', DIGEST)).rejects.toThrow(new RegExp(`^GET 127\\.0\\.0\\.1:\\d+/blob \\(redirected from ${new URL(registry.url).host}\\): `
    + 'the host asked for credentials \\(401\\), which are never sent to a host other than the registry'));
  expect(realm.seen).toEqual([]);
  expect(cdn.seen.every(s => s.authorization === undefined)).toBe(true);
});
