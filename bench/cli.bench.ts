/**
 * ecr-ptc rewrite throughput on a generated tree of Kubernetes YAML, against a bare parse-and-serialize of the
 * same files with the same YAML library (`yaml`).
 *
 *   npx projen bench:cli        (DOCS=20000 ROUNDS=7 npx projen bench:cli)
 *
 * Three figures, the first two alternating round by round in one process, each timed over the whole tree:
 * - rewrite: `rewriteYaml` on every file's text (parse, find images, map, splice), what the CLI does per file;
 * - bare: `parseAllDocuments` + `toString()` of every document, the cheapest round trip the library offers;
 * - cli: the real `ecr-ptc rewrite` on a copy of the tree on disk (reading, atomic writes), once per round.
 */
import { execFileSync } from 'child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { performance } from 'perf_hooks';
import { parseAllDocuments } from 'yaml';
import { ImageMapping } from '../src';
import { run } from '../src/cli/main';
import { rewriteYaml } from '../src/cli/rewrite';

const DOCS = Number(process.env.DOCS ?? 10000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const DOCS_PER_FILE = 10;
const REGISTRY = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
const IMAGES = ['nginx:1.27', 'bitnami/redis:7.4', 'quay.io/prometheus/node-exporter:v1.8.2', 'registry.k8s.io/pause:3.10',
  'ghcr.io/org/app:v2', 'public.ecr.aws/docker/library/alpine:3.20', 'mcr.microsoft.com/dotnet/aspnet:8.0'];

function deployment(i: number): string {
  return `# deployment ${i}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-${i}
  labels: {app: app-${i}, tier: "backend"}
spec:
  replicas: ${1 + (i % 3)}
  selector:
    matchLabels: {app: app-${i}}
  template:
    metadata:
      labels: {app: app-${i}}
    spec:
      initContainers:
        - name: init
          image: "${IMAGES[(i + 3) % IMAGES.length]}"   # init step
      containers:
        - name: main
          image: ${IMAGES[i % IMAGES.length]}
          ports: [{containerPort: 8080}]
          env:
            - {name: MODE, value: production}
        - name: sidecar
          image: '${IMAGES[(i + 1) % IMAGES.length]}'
`;
}

function makeTree(): { dir: string; files: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'ecr-ptc-bench-'));
  const files: string[] = [];
  for (let f = 0; f * DOCS_PER_FILE < DOCS; f++) {
    const sub = join(dir, `team-${f % 20}`);
    mkdirSync(sub, { recursive: true });
    const docs = Array.from({ length: DOCS_PER_FILE }, (_, d) => deployment(f * DOCS_PER_FILE + d));
    const file = join(sub, `app-${f}.yaml`);
    writeFileSync(file, docs.join('---\n'));
    files.push(file);
  }
  return { dir, files };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const { dir, files } = makeTree();
const texts = files.map(f => readFileSync(f, 'utf-8'));
const mapping = new ImageMapping({ registryUri: REGISTRY });
const judge = { mapping, cacheStatus: (image: string) => image.startsWith(`${REGISTRY}/`) };

function timeRewrite(): number {
  const start = performance.now();
  let changed = 0;
  for (const text of texts) {
    if (rewriteYaml(text, judge).output !== text) {
      changed++;
    }
  }
  const ms = performance.now() - start;
  if (changed !== texts.length) {
    throw new Error(`expected every file to change, ${changed} of ${texts.length} did`);
  }
  return ms;
}

function timeBare(): number {
  const start = performance.now();
  let bytes = 0;
  for (const text of texts) {
    bytes += parseAllDocuments(text).map(doc => doc.toString()).join('---\n').length;
  }
  const ms = performance.now() - start;
  if (bytes === 0) {
    throw new Error('bare round trip produced nothing');
  }
  return ms;
}

function timeCli(): number {
  const copy = mkdtempSync(join(tmpdir(), 'ecr-ptc-bench-cli-'));
  cpSync(dir, copy, { recursive: true });
  const start = performance.now();
  const code = run(['rewrite', copy, '--registry', REGISTRY], { out: () => undefined, err: () => undefined, interactive: false });
  const ms = performance.now() - start;
  rmSync(copy, { recursive: true, force: true });
  if (code !== 1) { // mcr.microsoft.com images are unserved on purpose
    throw new Error(`ecr-ptc exited ${code}`);
  }
  return ms;
}

timeRewrite(); // warm-up
timeBare();
const rewrite: number[] = [];
const bare: number[] = [];
const cli: number[] = [];
const ratios: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const r = timeRewrite();
  const b = timeBare();
  rewrite.push(r);
  bare.push(b);
  ratios.push(r / b);
  cli.push(timeCli());
}

/** Peak memory of the real CLI over the whole tree, in a process of its own (ts-node's compiler excluded). */
function cliPeakRssMiB(): number {
  const copy = mkdtempSync(join(tmpdir(), 'ecr-ptc-bench-mem-'));
  cpSync(dir, copy, { recursive: true });
  const script = `const { run } = require('./src/cli/main');
    const before = process.resourceUsage().maxRSS;
    run(['rewrite', ${JSON.stringify(copy)}, '--registry', '${REGISTRY}'], { out() {}, err() {}, interactive: false });
    console.log(JSON.stringify({ before, after: process.resourceUsage().maxRSS }));`;
  const out = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], {
    encoding: 'utf-8', env: { ...process.env, TS_NODE_PROJECT: 'bench/tsconfig.json' },
  });
  rmSync(copy, { recursive: true, force: true });
  const { before, after } = JSON.parse(out.trim().split('\n').pop()!);
  return (after - before) / 1024;
}
const cliMemory = cliPeakRssMiB();

const docsPerSecond = (ms: number) => Math.round(DOCS / (ms / 1000)).toLocaleString('en-US');
console.log(`## ecr-ptc rewrite throughput (${DOCS} documents in ${files.length} files, ${ROUNDS} rounds; node ${process.version})\n`);
console.log('| figure | median ms | documents/s | samples (ms) |');
console.log('|---|---|---|---|');
console.log(`| rewrite (rewriteYaml per file, in memory) | ${median(rewrite).toFixed(0)} | ${docsPerSecond(median(rewrite))} | ${rewrite.map(v => v.toFixed(0)).join(', ')} |`);
console.log(`| bare parse + serialize (yaml) | ${median(bare).toFixed(0)} | ${docsPerSecond(median(bare))} | ${bare.map(v => v.toFixed(0)).join(', ')} |`);
console.log(`| ecr-ptc rewrite <tree> (disk, atomic writes) | ${median(cli).toFixed(0)} | ${docsPerSecond(median(cli))} | ${cli.map(v => v.toFixed(0)).join(', ')} |`);
console.log(`\nratio rewrite / bare: median of per-round ratios ${median(ratios).toFixed(3)}x (target <= 1.5x)`);
console.log(`memory: ecr-ptc rewrite over the whole tree raised its process's peak RSS by ${cliMemory.toFixed(0)} MiB `
  + `(tree: ${(texts.reduce((n, t) => n + t.length, 0) / 2 ** 20).toFixed(1)} MiB in ${files.length} files, ${readdirSync(dir).length} folders)`);
rmSync(dir, { recursive: true, force: true });
