/**
 * Prints what `cdk synth` produced in a cloud assembly: each template, its resource count by type, the
 * pull through cache rules it declares, and its outputs. Used by `npx projen example:synth`.
 */
import { readdirSync, readFileSync } from 'fs';
import { join } from 'path';

const outdir = process.argv[2] ?? 'cdk.out';
const templates = readdirSync(outdir).filter(f => f.endsWith('.template.json'));
if (templates.length === 0) {
  console.error(`no *.template.json in ${outdir}: did cdk synth run?`);
  process.exit(1);
}
for (const file of templates) {
  const template = JSON.parse(readFileSync(join(outdir, file), 'utf-8'));
  const resources: Array<{ Type: string; Properties?: any }> = Object.values(template.Resources ?? {});
  const byType = new Map<string, number>();
  for (const r of resources) {
    byType.set(r.Type, (byType.get(r.Type) ?? 0) + 1);
  }
  console.log(`\n${join(outdir, file)}: ${resources.length} resources`);
  for (const [type, count] of [...byType].sort()) {
    console.log(`  ${String(count).padStart(3)}  ${type}`);
  }
  // rules with credentials or a role are the library's custom resource, with the same properties (src/rules/contract.ts)
  const rules = resources.filter(r => r.Type === 'AWS::ECR::PullThroughCacheRule' || r.Type === 'Custom::EcrPullThroughCacheRule');
  if (rules.length > 0) {
    console.log('  pull through cache rules:');
    for (const r of rules) {
      const p = r.Properties;
      console.log(`    ${p.EcrRepositoryPrefix.padEnd(12)} <- ${p.UpstreamRegistryUrl}${p.CredentialArn ? '  (credentials: Secrets Manager)' : ''}`);
    }
  }
  for (const [name, output] of Object.entries<any>(template.Outputs ?? {})) {
    console.log(`  output ${name}: ${JSON.stringify(output.Value)}`);
  }
}
