/**
 * Bundled handlers: size, cold load and time per event.
 *
 * - bundle size of each handler as shipped (SDK inlined, tree-shaken, minified), and of the same handler
 *   built with the SDK left to the Lambda runtime (`--external:@aws-sdk/*`);
 * - cold load: a fresh `node` process requiring the bundle (what a Lambda cold start pays for the code),
 *   against an empty handler in the same run; rounds alternate so machine noise hits all alike;
 * - time per event: the scan trigger handling pull through cache events against moto on loopback.
 *
 *   npx projen bench:handlers          (ROUNDS=10 by default)
 */
import { execFileSync } from 'child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { performance } from 'perf_hooks';
import { ECRClient } from '@aws-sdk/client-ecr';
import { pullThroughCacheEvent } from '../test/scanning/events';
import { putImage } from '../test/scanning/images';
import { startMoto, useEndpoint } from '../test/support/moto';

const ROUNDS = Number(process.env.ROUNDS ?? 10);
const root = join(__dirname, '..');

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Milliseconds to require `file` in a fresh node process (measured inside it, so node's own start is excluded). */
function loadTime(file: string, nodePath?: string): number {
  const out = execFileSync(process.execPath, ['-e', `
    const t = process.hrtime.bigint();
    const m = require(${JSON.stringify(file)});
    if (typeof m.handler !== 'function') throw new Error('no handler');
    process.stdout.write(String(Number(process.hrtime.bigint() - t) / 1e6));
  `], { encoding: 'utf-8', env: { ...process.env, NODE_PATH: nodePath ?? '' } });
  return Number(out);
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'ptc-bench-handlers-'));
  try {
    const handlers = readdirSync(join(root, 'assets'), { recursive: true })
      .map(String).filter(f => f.endsWith('.lambda/index.js')).sort();
    const empty = join(work, 'empty.js');
    writeFileSync(empty, 'exports.handler = async () => undefined;\n');
    const variants: Array<{ name: string; file: string; nodePath?: string }> = [{ name: 'empty handler (baseline)', file: empty }];
    const sizes: string[] = [];
    for (const handler of handlers) {
      const name = handler.replace(/\.lambda\/index\.js$/, '');
      const shipped = join(root, 'assets', handler);
      const source = join(root, 'src', `${name}.lambda.ts`);
      const external = join(work, `${name.replace(/\W/g, '_')}-external.js`);
      execFileSync('npx', ['esbuild', '--bundle', source, '--target=node22', '--platform=node', '--minify', '--main-fields=module,main',
        '--external:@aws-sdk/*', `--outfile=${external}`, '--log-level=error'], { cwd: root });
      sizes.push(`| ${name} | ${(statSync(shipped).size / 1024).toFixed(1)} KB | ${(statSync(external).size / 1024).toFixed(1)} KB |`);
      variants.push({ name: `${name}, SDK bundled (shipped)`, file: shipped });
      // the runtime's SDK is a CommonJS build in the runtime's node_modules, as this repository's is
      variants.push({ name: `${name}, SDK from the runtime`, file: external, nodePath: join(root, 'node_modules') });
    }
    const samples = new Map(variants.map(v => [v.name, [] as number[]]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const v of variants) {
        samples.get(v.name)!.push(loadTime(v.file, v.nodePath));
      }
    }
    const baseline = median(samples.get(variants[0].name)!);
    console.log(`Bundle sizes (node ${process.version}):\n\n| handler | shipped (SDK inlined) | SDK left to the runtime |\n|---|---|---|\n${sizes.join('\n')}\n`);
    console.log(`Cold load, median of ${ROUNDS} fresh processes:\n\n| handler | load ms | above the empty handler |\n|---|---|---|`);
    for (const v of variants) {
      const m = median(samples.get(v.name)!);
      console.log(`| ${v.name} | ${m.toFixed(1)} | ${(m - baseline).toFixed(1)} ms |`);
    }

    // time per event against moto
    const moto = await startMoto();
    try {
      useEndpoint(moto.endpoint);
      Object.assign(process.env, { CACHE_PREFIXES: '["docker-hub"]', CACHE_NAME: 'Bench', METRIC_NAMESPACE: 'Bench', LOG_LEVEL: 'ERROR' });
      const ecr = new ECRClient({ endpoint: moto.endpoint, region: 'us-east-1' });
      const events = [];
      for (let i = 0; i < 60; i++) {
        events.push(pullThroughCacheEvent('docker-hub/library/bench', await putImage(ecr, 'docker-hub/library/bench', `v${i}`), 'docker-hub'));
      }
      ecr.destroy();
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { handler } = require('../src/scanning/scan-trigger.lambda');
      const log = require('../src/private/handlers/log'); // eslint-disable-line @typescript-eslint/no-require-imports
      log.setLineWriter(() => undefined);
      const times: number[] = [];
      for (const [i, event] of events.entries()) {
        const start = performance.now();
        await handler(event);
        if (i >= 10) { // the first ten warm the client up (connection, credentials)
          times.push(performance.now() - start);
        }
      }
      console.log(`\nScan trigger, one pull through cache event against moto on loopback (StartImageScan): median ${median(times).toFixed(1)} ms `
        + `over ${times.length} events (min ${Math.min(...times).toFixed(1)}, max ${Math.max(...times).toFixed(1)})`);
    } finally {
      await moto.stop();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});
