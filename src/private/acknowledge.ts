import { Stack, Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/**
 * Acknowledge a policy-validation finding (cdk-nag and other plugins) on a construct this library owns,
 * with the reason, in the metadata `Validations.acknowledge` records.
 *
 * Why not `Validations.of(scope).acknowledge()`: before aws-cdk-lib 2.262 it rejects finding-level ids such
 * as `AwsSolutions-IAM5[Resource::arn:...]`, because `::` is its own prefix delimiter, and a bare
 * `AwsSolutions-IAM5` does not cover them. Finding-level ids are what we want anyway: each names the one
 * wildcard this library needs, so nothing else is hidden.
 */
export function acknowledgeFinding(scope: IConstruct, id: string, reason: string): void {
  const key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY;
  const existing = scope.node.metadata.find(m => m.type === key);
  if (existing) {
    existing.data[id] = reason; // one entry per construct, holding every acknowledgement
  } else {
    scope.node.addMetadata(key, { [id]: reason });
  }
}

/** Acknowledge `AwsSolutions-IAM5` for exactly these wildcard resources (ARNs as the construct writes them). */
export function acknowledgeWildcardResources(scope: IConstruct, resources: readonly string[], reason: string): void {
  const stack = Stack.of(scope);
  for (const resource of resources) {
    acknowledgeFinding(scope, `AwsSolutions-IAM5[Resource::${findingText(stack, resource)}]`, reason);
  }
}

/** A resource as cdk-nag prints it in finding ids: `{Ref: AWS::Region}` becomes `<AWS::Region>`. */
function findingText(stack: Stack, value: string): string {
  const resolved = stack.resolve(value);
  if (typeof resolved === 'string') {
    return resolved;
  }
  const parts: unknown[] = resolved?.['Fn::Join']?.[1] ?? [];
  return parts.map(p => (typeof p === 'string' ? p : `<${(p as { Ref: string }).Ref}>`)).join('');
}
