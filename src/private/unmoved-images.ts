/**
 * Images of resources the CachedImages Aspect does not move, found so that they are reported rather than left on
 * their upstream without a word: CodeBuild build images, App Runner services, SageMaker models, and the AWS Batch
 * job definitions it does not move (multi-container ECS, EKS and multi-node jobs). Each needs its own pull setup
 * (an image pull credentials type, an access role, a model's execution role), so the user moves them with
 * `cache.imageUri` and grants the role that pulls.
 */
import { Annotations, CfnResource, Stack } from 'aws-cdk-lib';
import { ImageMapping, MappingStatus } from '../image-mapping';
import { canonicalEcrHost } from './cache-mapping';
import { ECR_REGISTRY_URL } from './catalogue';
import { renderedResource } from './cdk-internals';

/** The resource types whose images are reported, and the property keys that hold an image. */
const REPORTED: Readonly<Record<string, readonly string[]>> = {
  'AWS::CodeBuild::Project': ['Image'],
  'AWS::AppRunner::Service': ['ImageIdentifier'],
  'AWS::SageMaker::Model': ['Image'],
  'AWS::Batch::JobDefinition': ['Image'],
};

/** CodeBuild's curated images (`aws/codebuild/standard:7.0`) are CodeBuild's own, not registry references. */
const CODEBUILD_CURATED = /^aws\/codebuild\//;

/** One image the Aspect leaves, with where it is in the resource's properties. */
export interface UnmovedImage {
  readonly path: string;
  readonly image: string;
}

/** Whether the Aspect reports the images of this resource type. */
export function reportsImagesOf(cfn: CfnResource): boolean {
  return REPORTED[cfn.cfnResourceType] !== undefined;
}

/**
 * The literal images of `cfn` under `skip` or not: every string under one of the type's image keys. Values known
 * only at deploy time are not images to report here. Reads the resource as synthesis renders it.
 */
export function unmovedImages(cfn: CfnResource, skip: readonly string[] = []): UnmovedImage[] {
  const keys = REPORTED[cfn.cfnResourceType] ?? [];
  const rendered = renderedResource(cfn);
  const resolved: { Resources: Record<string, { Properties?: unknown }> } = Stack.of(cfn).resolve(rendered);
  const found: UnmovedImage[] = [];
  const walk = (value: unknown, path: string) => {
    if (skip.includes(path)) {
      return;
    }
    if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, `${path}[${i}]`));
    } else if (typeof value === 'object' && value !== null) {
      for (const [k, v] of Object.entries(value)) {
        const at = path ? `${path}.${k}` : k;
        if (keys.includes(k) && typeof v === 'string' && !CODEBUILD_CURATED.test(v)) {
          found.push({ path: at, image: v });
        } else {
          walk(v, at);
        }
      }
    }
  };
  walk(Object.values(resolved.Resources)[0]?.Properties, '');
  return found;
}

/**
 * Warns of each image of `cfn` (outside `skip`) that is not in the cache: one the cache serves, with the URI to
 * write; one it does not, with why. Images of the cache, and of other private ECR registries (SageMaker's own
 * images), are the app's business.
 */
export function reportUnmovedImages(cfn: CfnResource, mapping: ImageMapping, skip: readonly string[]): void {
  for (const { path, image } of unmovedImages(cfn, skip)) {
    const mapped = mapping.map(image);
    const privateEcr = ECR_REGISTRY_URL.test(canonicalEcrHost(image.split('/')[0]));
    if (mapped.status === MappingStatus.ALREADY_CACHED || (privateEcr && mapped.status === MappingStatus.NO_RULE)) {
      continue;
    }
    Annotations.of(cfn).addWarningV2('cdk-ecr-pull-through-cache:notMoved', `${path}: '${image}' is left on its registry: CachedImages `
      + `does not move the images of ${cfn.cfnResourceType}. ${mapped.status === MappingStatus.REWRITTEN
        ? `Write it as cache.imageUri('${image}') (${mapped.uri}) and grant the role that pulls it with cache.grantPull(role)`
        : `The cache does not serve it either: ${mapped.reason}`}, or acknowledge this warning.`);
  }
}
