/**
 * One benchmark sample, in a fresh process: builds and synthesizes the example app in the given style
 * once to warm up (module loading, JIT), then once more timed, and prints the timed milliseconds.
 *
 *   node -r ts-node/register/transpile-only bench/synth-once.ts construct|bare-l1
 */
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { performance } from 'perf_hooks';
import { App } from 'aws-cdk-lib';
import { CacheStyle, ExampleStack } from '../examples/stack';

const style = process.argv[2] as CacheStyle;
if (!Object.values(CacheStyle).includes(style)) {
  console.error(`usage: synth-once.ts ${Object.values(CacheStyle).join('|')}`);
  process.exit(2);
}

function synth(): number {
  const outdir = mkdtempSync(join(tmpdir(), 'bench-synth-'));
  try {
    const start = performance.now();
    const app = new App({ outdir });
    new ExampleStack(app, 'Example', { cacheStyle: style });
    app.synth();
    return performance.now() - start;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

synth();
console.log(synth().toFixed(2));
