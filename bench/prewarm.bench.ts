/**
 * The warm-up handler on 50 images: what a deploy waits for when the cache already answers quickly, i.e. the
 * handler's own cost (the requests it makes and how many it makes at once), not an upstream's.
 *
 * A CNCF Distribution registry on loopback (the test harness's) holds 50 single-platform images of 5 layers each
 * (32 KB of random bytes per layer) and stands in for the cache's registry endpoint. Each sample runs the bundled
 * handler's code (`warm-up.lambda.ts`, as CloudFormation calls it, its answer PUT to a server on loopback) on all 50
 * images: a manifest GET by tag and a GET of each of the 6 blobs (config and layers) per image, 350 requests. The
 * rounds alternate the default concurrency (8) and one image at a time, so load on the machine affects both alike.
 * Prints the median of ROUNDS samples of each, and the load average before and after.
 *
 *   npx projen bench:prewarm            (ROUNDS=5 by default)
 */
import { mkdtempSync, rmSync } from 'fs';
import { createServer } from 'http';
import { AddressInfo } from 'net';
import { loadavg, tmpdir } from 'os';
import { join } from 'path';
import { performance } from 'perf_hooks';
import { RegistryClient } from '../src/mirror/oci-client';
import { handler, useRegistry } from '../src/prewarm/warm-up.lambda';
import { setLineWriter } from '../src/private/handlers/log';
import { pushManifest, pushRandomBlob, startRegistry } from '../test/support/oci-registry';
import { RUN_DIR_VARIABLE } from '../test/util';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const IMAGES = 50;
const LAYERS = 5;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main() {
  const run = mkdtempSync(join(tmpdir(), 'ptc-bench-prewarm-'));
  process.env[RUN_DIR_VARIABLE] = run; // the registry keeps its data under it; removed at the end
  const registry = await startRegistry();
  const answers: Array<{ Status: string; Reason?: string }> = [];
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', chunk => (data += chunk));
    req.on('end', () => {
      answers.push(JSON.parse(data));
      res.writeHead(200).end();
    });
  });
  try {
    const images: Array<{ Repository: string; Tag: string; Platforms: string }> = [];
    for (let i = 0; i < IMAGES; i++) {
      const repository = `bench/image-${i}`;
      const layers: Array<{ digest: string; size: number }> = [];
      for (let l = 0; l < LAYERS; l++) {
        layers.push({ digest: await pushRandomBlob(registry, repository, 32 * 1024), size: 32 * 1024 });
      }
      await pushManifest(registry, repository, 'v1', layers);
      images.push({ Repository: repository, Tag: 'v1', Platforms: 'linux/amd64' });
    }
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/response`;
    useRegistry(async () => new RegistryClient({ url: registry.url }));
    setLineWriter(() => undefined); // the handler's log lines are not part of what is measured

    const sample = async (concurrency: number) => {
      const client = new RegistryClient({ url: registry.url });
      useRegistry(async () => client);
      const started = performance.now();
      await handler({
        RequestType: 'Create',
        ResponseURL: url,
        StackId: 'arn:aws:cloudformation:eu-west-1:111122223333:stack/Bench/0',
        RequestId: `r${Math.random()}`,
        LogicalResourceId: 'WarmUp',
        ResourceType: 'Custom::EcrPullThroughCacheWarmUp',
        ResourceProperties: { Images: images, RetryBudgetSeconds: '60', Concurrency: String(concurrency) },
      });
      const ms = performance.now() - started;
      const answer = answers.pop();
      if (answer?.Status !== 'SUCCESS') {
        throw new Error(`the warm-up failed: ${answer?.Reason}`);
      }
      return { ms, requests: client.requestCount };
    };
    const loadBefore = loadavg();
    await sample(8); // warm-up of the process and the registry's caches, not recorded
    const results: Record<number, number[]> = { 8: [], 1: [] };
    let requests = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const concurrency of [8, 1]) {
        const { ms, requests: n } = await sample(concurrency);
        results[concurrency].push(ms);
        requests = n;
      }
    }
    const loadAfter = loadavg();
    console.log(`warm-up of ${IMAGES} images (${LAYERS} layers + config each, ${requests} requests per sample), ${ROUNDS} rounds, node ${process.version}`);
    console.log(`load average (1, 5, 15 min) before: ${loadBefore.map(l => l.toFixed(2)).join(', ')}; after: ${loadAfter.map(l => l.toFixed(2)).join(', ')}`);
    console.log('| concurrency | median ms | ms per image | samples ms |');
    console.log('|---|---|---|---|');
    for (const concurrency of [8, 1]) {
      const m = median(results[concurrency]);
      console.log(`| ${concurrency}${concurrency === 8 ? ' (default)' : ''} | ${m.toFixed(0)} | ${(m / IMAGES).toFixed(1)} | ${results[concurrency].map(v => v.toFixed(0)).join(', ')} |`);
    }
  } finally {
    server.close();
    await registry.stop();
    rmSync(run, { recursive: true, force: true });
  }
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});
