/**
 * ecr-ptc at scale: one file with 1k, 4k and 16k images, and trees of 1k and 10k files, each rewritten for real
 * (reading, locks, exclusive temporary files, fsync, rename) in a fresh process per sample. Prints time and peak
 * memory per case, the median of RUNS samples, and the growth factor against the smaller case.
 *
 *   npx projen bench:cli-scale        (RUNS=7 npx projen bench:cli-scale)
 *
 * Each sample: a fresh copy of the input, then a child process that loads the CLI, records its peak RSS, runs
 * `ecr-ptc rewrite` once (timed around `run()`, so node and ts-node start-up are not counted) and reports its
 * peak RSS after. Memory is reported as peak RSS and as its growth during the run.
 */
import { execFileSync } from 'child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';

const RUNS = Number(process.env.RUNS ?? 5);
const REGISTRY = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
const IMAGES = ['nginx:1.27', 'bitnami/redis:7.4', 'quay.io/prometheus/node-exporter:v1.8.2', 'registry.k8s.io/pause:3.10', 'ghcr.io/org/app:v2'];

/** A Deployment with two containers: two images. */
function deployment(i: number): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-${i}   # team ${i % 17}
spec:
  template:
    spec:
      containers:
        - name: main
          image: ${IMAGES[i % IMAGES.length]}
        - name: sidecar
          image: "${IMAGES[(i + 2) % IMAGES.length]}"
`;
}

/** One file of `images` images (a List of Deployments). */
function oneFile(root: string, images: number): void {
  const docs = Array.from({ length: images / 2 }, (_, i) => deployment(i));
  writeFileSync(join(root, 'all.yaml'), docs.join('---\n'));
}

/** `files` files of one Deployment each, 100 per folder. */
function tree(root: string, files: number): void {
  for (let f = 0; f < files; f++) {
    const dir = join(root, `team-${Math.floor(f / 100)}`);
    if (f % 100 === 0) {
      mkdirSync(dir, { recursive: true });
    }
    writeFileSync(join(dir, `app-${f}.yaml`), deployment(f));
  }
}

interface Sample { readonly ms: number; readonly peakMiB: number; readonly growthMiB: number }

function sample(input: string): Sample {
  const copy = mkdtempSync(join(tmpdir(), 'ecr-ptc-scale-run-'));
  cpSync(input, copy, { recursive: true });
  const script = `const { run } = require('./src/cli/main');
    const before = process.resourceUsage().maxRSS;
    const start = process.hrtime.bigint();
    const code = run(['rewrite', ${JSON.stringify(copy)}, '--registry', '${REGISTRY}'], { out() {}, err() {}, interactive: false });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    console.log(JSON.stringify({ code, ms, before, after: process.resourceUsage().maxRSS }));`;
  const out = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], {
    encoding: 'utf-8', env: { ...process.env, TS_NODE_PROJECT: 'bench/tsconfig.json' }, maxBuffer: 16 * 1024 * 1024,
  });
  rmSync(copy, { recursive: true, force: true });
  const result = JSON.parse(out.trim().split('\n').pop()!);
  if (result.code !== 0) {
    throw new Error(`ecr-ptc exited ${result.code}`);
  }
  return { ms: result.ms, peakMiB: result.after / 1024, growthMiB: (result.after - result.before) / 1024 };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const cases: Array<{ name: string; size: number; unit: string; make: (root: string) => void; group: string }> = [
  { group: 'one file', name: 'one file, 1,000 images', size: 1000, unit: 'images', make: root => oneFile(root, 1000) },
  { group: 'one file', name: 'one file, 4,000 images', size: 4000, unit: 'images', make: root => oneFile(root, 4000) },
  { group: 'one file', name: 'one file, 16,000 images', size: 16000, unit: 'images', make: root => oneFile(root, 16000) },
  { group: 'tree', name: 'tree of 1,000 files (2,000 images)', size: 1000, unit: 'files', make: root => tree(root, 1000) },
  { group: 'tree', name: 'tree of 10,000 files (20,000 images)', size: 10000, unit: 'files', make: root => tree(root, 10000) },
];

const base = mkdtempSync(join(tmpdir(), 'ecr-ptc-scale-'));
try {
  console.log(`## ecr-ptc rewrite at scale (median of ${RUNS} runs, each in a fresh process; node ${process.version})\n`);
  console.log('| case | time, median ms | time, best ms | ms per 1,000 (median) | median growth vs the smaller case | best-time growth | '
    + 'peak RSS, median MiB | RSS growth in the run, median MiB | samples (ms) |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  const previous = new Map<string, { size: number; ms: number; best: number }>();
  for (const c of cases) {
    const input = join(base, c.name.replace(/[^a-z0-9]+/gi, '-'));
    mkdirSync(input);
    c.make(input);
    sample(input); // warm-up: file cache and ts-node's compile cache
    const samples = Array.from({ length: RUNS }, () => sample(input));
    const ms = median(samples.map(s => s.ms));
    const best = Math.min(...samples.map(s => s.ms));
    const before = previous.get(c.group);
    const times = before ? `${(c.size / before.size).toFixed(0)}x the ${c.unit}` : '';
    const growth = before ? `${(ms / before.ms).toFixed(2)}x for ${times}` : '-';
    const bestGrowth = before ? `${(best / before.best).toFixed(2)}x` : '-';
    previous.set(c.group, { size: c.size, ms, best });
    console.log(`| ${c.name} | ${ms.toFixed(0)} | ${best.toFixed(0)} | ${(ms / (c.size / 1000)).toFixed(0)} (${c.unit}) | ${growth} | ${bestGrowth} | `
      + `${median(samples.map(s => s.peakMiB)).toFixed(0)} | ${median(samples.map(s => s.growthMiB)).toFixed(0)} | ${samples.map(s => s.ms.toFixed(0)).join(', ')} |`);
    rmSync(input, { recursive: true, force: true });
  }
} finally {
  rmSync(base, { recursive: true, force: true });
}
