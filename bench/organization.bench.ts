/**
 * Organization benchmark: the example under examples/organization.ts (a central cache with four upstreams, its
 * registry policy and the members' StackSet, plus the member stack the StackSet deploys).
 *
 * - synth time: build + synthesize the whole app (central stack and member stage), warmed up, median of RUNS;
 * - template sizes: the central stack as the CLI writes it, and the StackSet's inline TemplateBody (CloudFormation
 *   takes at most 51,200 bytes inline);
 * - resources per member account and Region (what the StackSet creates in each), and for 100 accounts.
 *
 *   npx projen bench:organization      (RUNS=15 npx projen bench:organization for more samples; default 9)
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { performance } from 'perf_hooks';
import { App } from 'aws-cdk-lib';
import { organizationExample } from '../examples/organization';

const RUNS = Number(process.env.RUNS ?? 9);
const ACCOUNTS = 100;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function synthOnce(inspect?: (outdir: string, app: App) => void): number {
  const outdir = mkdtempSync(join(tmpdir(), 'bench-org-'));
  try {
    const start = performance.now();
    const app = new App({ outdir });
    organizationExample(app);
    app.synth();
    const ms = performance.now() - start;
    inspect?.(outdir, app);
    return ms;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

synthOnce(); // warm-up: module loading and JIT
const times = Array.from({ length: RUNS }, () => synthOnce());

synthOnce((outdir) => {
  const centralFile = join(outdir, 'CentralCache.template.json');
  const central = JSON.parse(readFileSync(centralFile, 'utf-8'));
  const stackSet = Object.values<any>(central.Resources).find(r => r.Type === 'AWS::CloudFormation::StackSet');
  const body: string = stackSet.Properties.TemplateBody;
  const member = JSON.parse(body);
  const count = (template: any) => Object.keys(template.Resources).length;
  const byType = (template: any) => Object.entries(Object.values<any>(template.Resources).reduce<Record<string, number>>((acc, r) => {
    acc[r.Type] = (acc[r.Type] ?? 0) + 1; return acc;
  }, {})).map(([type, n]) => `${n} ${type}`).join(', ');
  const regions: string[] = stackSet.Properties.StackInstancesGroup[0].Regions;

  console.log(`## Organization: central stack, StackSet, member accounts (examples/organization.ts; ${RUNS} runs, node ${process.version})\n`);
  console.log('| figure | value |');
  console.log('|---|---|');
  console.log(`| synth of the whole app (central stack + member stage), warmed up: median ms | ${median(times).toFixed(1)} (min ${Math.min(...times).toFixed(1)}, max ${Math.max(...times).toFixed(1)}) |`);
  console.log(`| central stack template, as written to cdk.out | ${statSync(centralFile).size.toLocaleString('en-US')} bytes, ${count(central)} resources |`);
  console.log(`| StackSet TemplateBody (the member template, inline) | ${body.length.toLocaleString('en-US')} bytes of CloudFormation's 51,200 |`);
  console.log(`| resources per member account and Region | ${count(member)}: ${byType(member)} |`);
  console.log(`| stack instances for ${ACCOUNTS} accounts x ${regions.length} Regions (${regions.join(', ')}) | ${ACCOUNTS * regions.length} |`);
  console.log(`| resources in member accounts for ${ACCOUNTS} accounts x ${regions.length} Regions | ${(ACCOUNTS * regions.length * count(member)).toLocaleString('en-US')} (IAM roles are global: ${ACCOUNTS * regions.length} roles, one per stack instance) |`);
  console.log('| central resources that grow with the number of member accounts | 0 (one registry policy scoped by aws:PrincipalOrgID) |');
});
