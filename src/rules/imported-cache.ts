import { Stack, Token } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { Construct } from 'constructs';
import { onScanCompletedRule, onSyncFailedRule } from './cache-events';
import { IPullThroughCacheRules, PullThroughCacheRulesAttributes, RuleCredentials } from './i-pull-through-cache-rules';
import { cacheImageUri } from './image-uri';
import { PullTarget, grantCachePull } from './pull-grant';
import { ImageMapping } from '../image-mapping';

/**
 * A cache of another CDK app, in this stack's account: `imageUri` and `grantPull` from its prefixes, nothing created.
 * Like `ecr.Repository.fromRepositoryAttributes`, it trusts the attributes: a prefix the cache lacks gives URIs that fail at pull time.
 */
export class ImportedPullThroughCacheRules extends Construct implements IPullThroughCacheRules {
  public readonly registryUri: string;
  public readonly ecrRepositoryPrefixes: string[];
  public readonly mapping: ImageMapping;
  /** None: the platform team's secrets, which its own monitoring checks. */
  public readonly ruleCredentials: RuleCredentials[] = [];
  private readonly targets: PullTarget[];
  private readonly taggedRepositories: boolean;
  private readonly region: string;

  constructor(scope: Construct, id: string, attrs: PullThroughCacheRulesAttributes) {
    super(scope, id);
    const where = `${this.node.path} (PullThroughCacheRules.fromPullThroughCacheRulesAttributes)`;
    const prefixes = attrs?.prefixes;
    if (!Array.isArray(prefixes) || prefixes.length === 0) {
      throw new Error(`${where}: prefixes is empty. List the cache's prefixes by registry, for example `
        + 'prefixes: [{ registry: \'docker.io\', ecrRepositoryPrefix: \'docker-hub\' }], as the platform team\'s cache.mapping has them.');
    }
    const stack = Stack.of(this);
    const region = attrs.region ?? stack.region;
    if (!Token.isUnresolved(region) && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) {
      throw new Error(`${where}: region '${region}' is not an AWS Region; write it like 'eu-west-1'.`);
    }
    this.region = region;
    const urlSuffix = Token.isUnresolved(region) ? stack.urlSuffix : RegionInfo.get(region).domainSuffix ?? stack.urlSuffix;
    this.registryUri = `${stack.account}.dkr.ecr.${region}.${urlSuffix}`;
    this.mapping = new ImageMapping({ registryUri: this.registryUri, prefixes });
    this.taggedRepositories = attrs.taggedRepositories ?? false;
    // a shared cache's downstream serves two registries from one prefix: one target per prefix
    const seen = new Map<string, PullTarget>();
    for (const row of prefixes) {
      const prefix = row.ecrRepositoryPrefix.replace(/\/$/, '');
      const copied = row.copiedImages !== undefined;
      const before = seen.get(prefix);
      if (before && before.copied !== copied) {
        throw new Error(`${where}: the prefix '${prefix}' is listed both with and without copiedImages; a prefix is either `
          + 'copied into or pulled through, not both. Fix the row that is wrong.');
      }
      seen.set(prefix, {
        prefix,
        copied,
        arn: stack.formatArn({ service: 'ecr', region, resource: 'repository', resourceName: prefix === 'ROOT' ? '*' : `${prefix}/*` }),
      });
    }
    this.targets = [...seen.values()];
    this.ecrRepositoryPrefixes = this.targets.map(t => t.prefix);
  }

  public grantPull(grantee: iam.IGrantable): iam.Grant {
    return grantCachePull(this, grantee, this.targets, this.taggedRepositories);
  }

  public imageUri(image: string): string {
    return cacheImageUri(this, this.mapping, image);
  }

  public cacheRepositoryArns(): string[] {
    return this.targets.map(t => t.arn);
  }

  public onSyncFailed(id: string, options: events.OnEventOptions = {}): events.Rule {
    return onSyncFailedRule(this.inCacheRegion('onSyncFailed'), id, this.ecrRepositoryPrefixes, options);
  }

  public onScanCompleted(id: string, options: events.OnEventOptions = {}): events.Rule {
    return onScanCompletedRule(this.inCacheRegion('onScanCompleted'), id, this.ecrRepositoryPrefixes, options);
  }

  /** ECR sends its events to EventBridge in the cache's own Region: a rule of a stack elsewhere never sees them. */
  private inCacheRegion(method: string): Construct {
    const here = Stack.of(this).region;
    if (!Token.isUnresolved(here) && !Token.isUnresolved(this.region) && here !== this.region) {
      throw new Error(`${this.node.path}.${method}(): the cache is in ${this.region}, and ECR sends its events to EventBridge there only, `
        + `so a rule in this stack (${here}) would never fire. Define the rule in a stack of ${this.region}.`);
    }
    return this;
  }
}
