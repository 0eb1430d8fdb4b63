/**
 * The registry client's agents (src/mirror/agents.ts: one reused read buffer per socket) against Node's default
 * agent, over plain HTTP and over TLS: the CPU a download costs the receiving process.
 *
 * bench:mirror measures the copy over plain HTTP only (the loopback registries and crane speak it); ECR speaks
 * HTTPS, where a socket read holds at most one TLS record's plaintext (16 KiB), so the reads are many and small
 * whatever the buffer's size. This measures what the reused buffer is worth there.
 *
 * A server process on loopback serves 8 blobs of 25 MB (random bytes, held in memory) over HTTP and over TLS (a
 * self-signed P-256 certificate made with openssl for the run). A fresh client process per sample downloads all 8,
 * 4 at a time (the copy's concurrency), through one of the two agents, bytes thrown away, and reports its own CPU
 * time for the download (process.cpuUsage around it: the process's start-up is left out). The client is bundled
 * with esbuild and runs on the handlers' Node.js, as in Lambda. In each round the four variants run in a rotated
 * order; each round gives a ratio reused / default per protocol, and the medians of the rounds are reported.
 *
 *   npx projen bench:agents            (ROUNDS=7 by default)
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { cpus, loadavg, tmpdir } from 'os';
import { join } from 'path';

const ROUNDS = Number(process.env.ROUNDS ?? 7);
const BLOBS = 8;
const BLOB_BYTES = 25 * 1024 * 1024;
const root = join(__dirname, '..');

const VARIANTS = ['http-default', 'http-reused', 'https-default', 'https-reused'] as const;
type Variant = typeof VARIANTS[number];

/** The server: prints its two ports, then serves /blob/<n> (the same 25 MB each) over HTTP and TLS until killed. */
const server = `
const http = require('http'), https = require('https'), { randomBytes } = require('crypto'), { readFileSync } = require('fs');
const [key, cert] = process.argv.slice(2).map(f => readFileSync(f));
const body = randomBytes(${BLOB_BYTES});
const handler = (req, res) => { res.writeHead(200, { 'Content-Length': String(body.length) }); res.end(body); };
const plain = http.createServer(handler).listen(0, '127.0.0.1', () => {
  const tls = https.createServer({ key, cert }, handler).listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ http: plain.address().port, https: tls.address().port }) + '\\n');
  });
});
`;

/** The client: downloads every blob through the variant's agent and prints {ms, cpuMs, bytes}. */
const client = `
import * as http from 'http';
import * as https from 'https';
import { readFileSync } from 'fs';
import { httpAgent, httpsAgent } from ${JSON.stringify(join(root, 'src', 'mirror', 'agents'))};

async function main() {
  const [variant, port, caFile] = process.argv.slice(2);
  const secure = variant.startsWith('https');
  const reused = variant.endsWith('reused');
  const options = { keepAlive: true, maxSockets: 16 };
  const agent = secure ? (reused ? httpsAgent(options) : new https.Agent(options)) : (reused ? httpAgent(options) : new http.Agent(options));
  const transport = secure ? https : http;
  const ca = secure ? readFileSync(caFile) : undefined;
  const queue = Array.from({ length: ${BLOBS} }, (_, n) => n);
  let bytes = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const worker = async () => {
    for (let n = queue.shift(); n !== undefined; n = queue.shift()) {
      const received = await new Promise<number>((resolve, reject) => {
        transport.get((secure ? 'https' : 'http') + '://127.0.0.1:' + port + '/blob/' + n, { agent, ca }, res => {
          let received = 0;
          res.on('data', (piece: Buffer) => received += piece.length);
          res.on('end', () => resolve(received));
          res.on('error', reject);
        }).on('error', reject);
      });
      bytes += received; // after the await: \`bytes += await ...\` would add to the value read before it
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  const used = process.cpuUsage(cpu);
  process.stdout.write(JSON.stringify({ ms: performance.now() - started, cpuMs: (used.user + used.system) / 1000, bytes }));
  process.exit(0);
}
main().catch(e => { console.error(e); process.exit(1); });
`;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function handlerNode(): string {
  const major = process.env.HANDLER_NODE_MAJOR;
  return major ? execFileSync('npx', ['-y', '-p', `node@${major}`, 'node', '-p', 'process.execPath'], { encoding: 'utf-8' }).trim() : process.execPath;
}

async function startServer(node: string, dir: string): Promise<{ ports: Record<'http' | 'https', number>; process: ChildProcess }> {
  writeFileSync(join(dir, 'server.js'), server);
  const child = spawn(node, [join(dir, 'server.js'), join(dir, 'key.pem'), join(dir, 'cert.pem')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ports = await new Promise<Record<'http' | 'https', number>>((resolve, reject) => {
    child.stdout!.once('data', (line: Buffer) => resolve(JSON.parse(String(line))));
    child.once('exit', code => reject(new Error(`the server exited (${code}) before it listened`)));
  });
  return { ports, process: child };
}

async function main() {
  const node = handlerNode();
  const dir = mkdtempSync(join(tmpdir(), 'ptc-bench-agents-'));
  let serverProcess: ChildProcess | undefined;
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
    { stdio: 'ignore' });
    writeFileSync(join(dir, 'client.ts'), client);
    execFileSync('npx', ['esbuild', '--bundle', join(dir, 'client.ts'), '--target=node22', '--platform=node', '--minify',
      `--outfile=${join(dir, 'client.js')}`, '--log-level=error'], { cwd: root });
    const started = await startServer(node, dir);
    serverProcess = started.process;
    const sample = (variant: Variant): { ms: number; cpuMs: number; bytes: number } => {
      const port = started.ports[variant.startsWith('https') ? 'https' : 'http'];
      const result = JSON.parse(execFileSync(node, [join(dir, 'client.js'), variant, String(port), join(dir, 'cert.pem')], { encoding: 'utf-8' }));
      if (result.bytes !== BLOBS * BLOB_BYTES) {
        throw new Error(`${variant}: received ${result.bytes} bytes, not ${BLOBS * BLOB_BYTES}`);
      }
      return result;
    };
    const loadBefore = loadavg()[0];
    sample('https-default'); // a warm-up: the server's first TLS handshakes and the page cache, in no sample
    const cpu: Record<Variant, number[]> = { 'http-default': [], 'http-reused': [], 'https-default': [], 'https-reused': [] };
    const ratios: Record<'http' | 'https', number[]> = { http: [], https: [] };
    for (let round = 0; round < ROUNDS; round++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]);
      const got = {} as Record<Variant, number>;
      for (const variant of order) {
        got[variant] = sample(variant).cpuMs;
        cpu[variant].push(got[variant]);
      }
      ratios.http.push(got['http-reused'] / got['http-default']);
      ratios.https.push(got['https-reused'] / got['https-default']);
      if (process.env.VERBOSE) console.log(`round ${round + 1}: ${order.map(v => `${v} ${Math.round(got[v])} ms`).join(', ')}`);
    }
    const mb = (BLOBS * BLOB_BYTES) / (1024 * 1024);
    console.log(`Node ${execFileSync(node, ['--version'], { encoding: 'utf-8' }).trim()}, ${cpus().length} cores, ${ROUNDS} rounds, `
      + `${mb} MB per sample (${BLOBS} blobs, 4 at a time); load ${loadBefore.toFixed(2)} -> ${loadavg()[0].toFixed(2)}`);
    console.log('| agent | protocol | client CPU per sample, ms (median) |');
    console.log('|---|---|---|');
    for (const variant of VARIANTS) {
      const [protocol, agent] = variant.split('-');
      console.log(`| ${agent === 'reused' ? 'the copy\'s (one reused buffer per socket)' : 'Node\'s default'} | ${protocol} | ${Math.round(median(cpu[variant]))} |`);
    }
    for (const protocol of ['http', 'https'] as const) {
      console.log(`CPU, the copy's agent / Node's default, ${protocol}: median ${median(ratios[protocol]).toFixed(2)} `
        + `(rounds: ${ratios[protocol].map(r => r.toFixed(2)).join(' ')})`);
    }
  } finally {
    serverProcess?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});
