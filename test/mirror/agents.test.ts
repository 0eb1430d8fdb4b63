import { execFileSync } from 'child_process';
import { createHash, randomBytes } from 'crypto';
import { readFileSync } from 'fs';
import * as http from 'http';
import * as https from 'https';
import { AddressInfo } from 'net';
import { join } from 'path';
import { READ_BUFFER_BYTES, httpAgent, httpsAgent } from '../../src/mirror/agents';
import { testDir } from '../util';

/**
 * The registry client's agents read each socket into one reused buffer (agents.ts). Against real servers on loopback,
 * plain and TLS: every byte arrives intact whatever the reads' sizes, through the HTTP client's backpressure, on a
 * reused keep-alive socket, in a chunked answer too; and the reads really share one buffer (else the agent is the
 * default one under another name).
 */
const body = randomBytes(6 * 1024 * 1024 + 12_345);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Serves `body` in pieces of random sizes (so reads end anywhere, across HTTP framing too); `/chunked` without a length. */
function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(200, req.url === '/chunked' ? {} : { 'Content-Length': String(body.length) });
  let at = 0;
  const next = () => {
    while (at < body.length) {
      const piece = body.subarray(at, at + 1 + Math.floor(Math.random() * 200_000));
      at += piece.length;
      if (!res.write(piece)) {
        res.once('drain', next);
        return;
      }
    }
    res.end();
  };
  next();
}

interface Received { readonly bytes: Buffer; readonly socketReads: Array<{ buffer: ArrayBufferLike; length: number }> }

/** GETs `path` through `agent`, reading slowly (paused twice along the way), and records what the socket emitted. */
function get(transport: typeof http | typeof https, url: string, agent: http.Agent, ca?: Buffer): Promise<Received> {
  return new Promise((resolve, reject) => {
    const socketReads: Received['socketReads'] = [];
    const req = transport.get(url, { agent, ca }, res => {
      const pieces: Buffer[] = [];
      let pauses = 0;
      res.on('data', (piece: Buffer) => {
        pieces.push(piece);
        if (pieces.length % 20 === 0 && pauses++ < 2) {
          res.pause(); // the client's backpressure stops the socket's reads; resumed, they go on where they were
          setTimeout(() => res.resume(), 50);
        }
      });
      res.on('end', () => resolve({ bytes: Buffer.concat(pieces), socketReads }));
      res.on('error', reject);
    });
    req.on('socket', socket => socket.on('data', (d: Buffer) => socketReads.push({ buffer: d.buffer, length: d.length })));
    req.on('error', reject);
  });
}

function expectReusedBuffer(received: Received): void {
  expect(received.socketReads.length).toBeGreaterThan(10);
  expect(new Set(received.socketReads.map(r => r.buffer)).size).toBe(1);
  expect(received.socketReads.every(r => r.length <= READ_BUFFER_BYTES)).toBe(true);
}

describe('agents whose sockets read into one reused buffer', () => {
  test('plain HTTP: every byte intact, with a length and chunked, twice on one keep-alive socket', async () => {
    const server = http.createServer(handler);
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const agent = httpAgent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await get(http, `${url}/blob`, agent);
      const second = await get(http, `${url}/chunked`, agent);
      for (const received of [first, second]) {
        expect(received.bytes.length).toBe(body.length);
        expect(sha(received.bytes)).toBe(sha(body));
      }
      expectReusedBuffer(first);
      // the second answer came on the same socket: its reads went into the very buffer of the first
      expect(second.socketReads[0].buffer).toBe(first.socketReads[0].buffer);
      // the default agent's reads each get a buffer of their own: what the reused one saves
      const plain = await get(http, `${url}/blob`, new http.Agent());
      expect(sha(plain.bytes)).toBe(sha(body));
      expect(new Set(plain.socketReads.map(r => r.buffer)).size).toBeGreaterThan(1);
    } finally {
      agent.destroy();
      server.close();
    }
  });

  test('TLS: every byte intact, with a length and chunked, the decrypted reads in one reused buffer, twice on one keep-alive socket', async () => {
    const dir = testDir('agents-tls-');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
    { stdio: 'ignore' });
    const cert = readFileSync(join(dir, 'cert.pem'));
    const server = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert }, handler);
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const agent = httpsAgent({ keepAlive: true, maxSockets: 1 });
    try {
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const first = await get(https, `${url}/blob`, agent, cert);
      const second = await get(https, `${url}/chunked`, agent, cert);
      for (const received of [first, second]) {
        expect(received.bytes.length).toBe(body.length);
        expect(sha(received.bytes)).toBe(sha(body));
      }
      expectReusedBuffer(first);
      expect(second.socketReads[0].buffer).toBe(first.socketReads[0].buffer);
      // a read over TLS holds at most one record's plaintext (16 KiB), however large the buffer
      expect(Math.max(...first.socketReads.map(r => r.length))).toBeLessThanOrEqual(16 * 1024);
    } finally {
      agent.destroy();
      server.close();
    }
  });
});
