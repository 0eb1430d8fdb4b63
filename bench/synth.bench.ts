/**
 * Synth-time benchmark: the example EKS app with `PullThroughCacheRules` (five upstreams, two created
 * secrets, five repository templates, node grants, two image URIs) against the same app with the seed's three
 * hand-written `CfnPullThroughCacheRule`s.
 *
 * Each sample is a fresh process (bench/synth-once.ts), and the two styles alternate, so machine noise hits
 * both alike and no run inherits another's heap. Two figures per sample:
 * - in-process: building and synthesizing the app, after a warm-up synth in the same process (the
 *   construct's own cost);
 * - whole process: what a user waits for, from node start to exit (module loading included).
 *
 *   npx projen bench            (RUNS=15 npx projen bench for more samples; default 7)
 */
import { execFileSync } from 'child_process';
import { performance } from 'perf_hooks';
import { App, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { CacheStyle } from '../examples/stack';
import { PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../src';

const RUNS = Number(process.env.RUNS ?? 7);

interface Sample { readonly inProcess: number; readonly wholeProcess: number }

function sample(style: CacheStyle): Sample {
  const start = performance.now();
  const out = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', 'bench/synth-once.ts', style], {
    encoding: 'utf-8', env: { ...process.env, TS_NODE_PROJECT: 'bench/tsconfig.json' },
  });
  return { inProcess: Number(out.trim()), wholeProcess: performance.now() - start };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const STYLES: Array<[CacheStyle, string]> = [
  [CacheStyle.BARE_L1, 'seed: 3 bare CfnPullThroughCacheRule (baseline)'],
  [CacheStyle.CONSTRUCT_RULES_ONLY, 'PullThroughCacheRules, the same 3 upstreams, scanning and monitoring off'],
  [CacheStyle.CONSTRUCT_SEED_UPSTREAMS, 'PullThroughCacheRules, the same 3 upstreams (scanning and monitoring on, the default)'],
  [CacheStyle.CONSTRUCT, 'PullThroughCacheRules, the example\'s 5 upstreams'],
];
const samples = new Map<CacheStyle, Sample[]>(STYLES.map(([style]) => [style, []]));
for (let i = 0; i < RUNS; i++) {
  for (const [style] of STYLES) {
    samples.get(style)!.push(sample(style));
  }
}

const baseline = samples.get(CacheStyle.BARE_L1)!;
console.log(`## Synth time of the example app (${RUNS} rounds, the styles alternating, each sample a fresh process; node ${process.version})\n`);
console.log('| app | build + synth, warmed up: median ms | ratio to baseline (median of per-round ratios) | whole process: median ms | ratio to baseline |');
console.log('|---|---|---|---|---|');
for (const [style, label] of STYLES) {
  const s = samples.get(style)!;
  const ratio = (key: keyof Sample) => median(s.map((v, i) => v[key] / baseline[i][key])).toFixed(3);
  console.log(`| ${label} | ${median(s.map(v => v.inProcess)).toFixed(1)} | ${ratio('inProcess')}x | ${median(s.map(v => v.wholeProcess)).toFixed(0)} | ${ratio('wholeProcess')}x |`);
}
console.log('\nSamples, build + synth (ms):');
for (const [style, label] of STYLES) {
  console.log(`- ${label}: ${samples.get(style)!.map(v => v.inProcess.toFixed(0)).join(', ')}`);
}

/** Resources a cache adds to a stack (scanning and monitoring off unless asked), the test's own node role left out. */
function resourceCount(upstreams: UpstreamRegistry[], withNodeRole: boolean, withHandlers = false): number {
  const app = new App();
  const stack = new Stack(app, 'Count');
  new PullThroughCacheRules(stack, 'Cache', {
    upstreams,
    nodeRoles: withNodeRole ? [new iam.Role(stack, 'Node', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') })] : [],
    enableScanning: withHandlers,
    enableMonitoring: withHandlers,
  });
  const template = app.synth().getStackByName('Count').template;
  return Object.keys(template.Resources).filter(id => !id.startsWith('Node')).length;
}

const anonymous = resourceCount([UpstreamRegistry.quay()], false);
const withSecret = resourceCount([UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() })], false);
const five = resourceCount([
  UpstreamRegistry.quay(), UpstreamRegistry.kubernetes(), UpstreamRegistry.ecrPublic(),
  UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }),
  UpstreamRegistry.githubContainerRegistry({ credentials: UpstreamCredentials.createSecret() }),
], true);
console.log('\n## CloudFormation resources per upstream\n');
console.log('| upstream | resources |');
console.log('|---|---|');
console.log(`| anonymous (ECR Public, k8s, Quay) or fromSecret | ${anonymous} (rule + repository creation template) |`);
console.log(`| with createSecret (Docker Hub, GHCR, ...) | ${withSecret} (rule + template + secret) |`);
console.log('| node roles, any number | 1 policy for the whole cache |');
console.log(`| the example's 5 upstreams (2 created secrets) + node roles | ${five} |`);
const quayWithHandlers = resourceCount([UpstreamRegistry.quay()], false, true);
console.log(`| scanning and monitoring (the default), for any number of upstreams | ${quayWithHandlers - anonymous} more `
  + '(3 functions with their roles, log groups and dead-letter queues, 6 rules (7 with credentials), 2 topics, 4 alarms (5 with credentials), a dashboard) |');
