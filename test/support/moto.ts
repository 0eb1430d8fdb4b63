import { ChildProcess, spawn } from 'child_process';
import * as http from 'http';
import * as net from 'net';

/**
 * A real AWS API on loopback: moto in server mode (PyPI `moto[server]`, pinned in requirements-dev.txt and
 * installed by the README's test command). A test that needs it fails, loudly, when moto is missing.
 */
export interface MotoServer {
  readonly endpoint: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** The HTTP status of a GET on loopback, or 0 when nothing answers within a second: readiness polls use it. */
export function httpStatus(url: string): Promise<number> {
  return new Promise(resolve => {
    const req = http.get(url, res => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.setTimeout(1000, () => req.destroy());
  });
}

export async function startMoto(): Promise<MotoServer> {
  const port = await freePort();
  const child: ChildProcess = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', chunk => {
    stderr = (stderr + String(chunk)).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`moto server exited with ${child.exitCode}: ${stderr}\nInstall it with: ./scripts/install-test-deps`);
    }
    if (await httpStatus(`${endpoint}/moto-api/`) === 200) {
      return {
        endpoint,
        port,
        stop: () => new Promise<void>(resolve => {
          if (child.exitCode !== null) {
            return resolve();
          }
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
      };
    }
    await new Promise(r => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`moto server did not answer on ${endpoint} within 30 s: ${stderr}`);
}

/** Point the AWS SDK (as the handlers create it) at an endpoint, with dummy credentials. */
export function useEndpoint(endpoint: string): void {
  process.env.AWS_ENDPOINT_URL = endpoint;
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID = 'testing';
  process.env.AWS_SECRET_ACCESS_KEY = 'testing';
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
}

/** Capture what handlers log (JSON lines) while `fn` runs. */
export async function captureLog<T>(fn: () => Promise<T>): Promise<{ result?: T; error?: unknown; lines: Record<string, any>[] }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const log = require('../../src/private/handlers/log');
  const lines: Record<string, any>[] = [];
  const previous = log.setLineWriter((line: string) => lines.push(JSON.parse(line)));
  try {
    return { result: await fn(), lines };
  } catch (error) {
    return { error, lines };
  } finally {
    log.setLineWriter(previous);
  }
}

/** The EMF metric values a handler wrote, as `Name{dim=value,...}` -> sum. */
export function emfValues(lines: Record<string, any>[]): Record<string, number> {
  const result: Record<string, number> = {};
  for (const line of lines) {
    const block = line._aws?.CloudWatchMetrics?.[0];
    if (!block) {
      continue;
    }
    for (const set of block.Dimensions as string[][]) {
      for (const metric of block.Metrics as { Name: string }[]) {
        const key = `${metric.Name}{${set.map(d => `${d}=${line[d]}`).join(',')}}`;
        result[key] = (result[key] ?? 0) + line[metric.Name];
      }
    }
  }
  return result;
}
