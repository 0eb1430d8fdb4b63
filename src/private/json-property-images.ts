/**
 * The images of a custom resource property holding JSON, for the CachedImages Aspect: a manifest (Kubernetes objects)
 * or Helm values. Images are found where they live (image-locator.ts, shared with the ecr-ptc CLI); references to
 * other stacks stay tokens (cfn-json-property.ts); a tag known only at deploy time moves with the tag kept a token
 * (token-tags.ts); values known only at deploy time elsewhere stay as they are, and only the images that hold one
 * are reported.
 */
import { Annotations, CfnResource, Stack } from 'aws-cdk-lib';
import * as eksClassic from 'aws-cdk-lib/aws-eks';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import { IConstruct } from 'constructs';
import { ImageMapping, MappedImage, MappingStatus } from '../image-mapping';
import { mappingWarningId } from './cache-mapping';
import { readCfnProperty } from './cfn-json-property';
import { inCacheRegistry, isUrlSuffix, literalUrlSuffix } from './ecr-url-suffix';
import { missingCompanionValues, setCompanionValue } from './helm-companions';
import { DocumentFormat } from './locator-tree';
import { parseJsonWithTokens, rewriteObject } from './object-images';
import { mapTokenTag, tokensOnlyInTag } from './token-tags';

/** What the Aspect lends: its cache's mapping, its mode, and how it reports. */
export interface JsonPropertyAspect {
  readonly mapping: ImageMapping;
  readonly reportOnly: boolean;
  /** With a warm-up: the image to write for a cache URI (warmed at deploy, pinned with `pin`); written for the cache ones too. */
  readonly warm?: (uri: string) => string;
  report(scope: IConstruct, message: string): void;
  reportUnserved(scope: IConstruct, what: string, mapped: MappedImage): void;
}

/** A deploy-time value in JSON read by `parseJsonWithTokens` (object-images.ts). */
const JSON_TOKEN = /@@ptc-[0-9a-f]+-\d+@@/;

/**
 * A custom resource property holding JSON: a manifest (Kubernetes objects) or Helm values. Images are found where
 * they live (image-locator.ts, shared with the ecr-ptc CLI); values known only at deploy time stay as they are,
 * and only the images that hold one are reported.
 */
/** Moves (or, in report-only mode, reports) the images of one property; true when images were moved. */
export function moveJsonPropertyImages(cfn: CfnResource, property: string, format: DocumentFormat, aspect: JsonPropertyAspect): boolean {
  const kept = readCfnProperty(cfn, property); // references stay tokens: another stack's become imports when CDK prepares
  const resolved = kept?.value;
  const chartDefaults = () => Annotations.of(cfn).addWarningV2('cdk-ecr-pull-through-cache:chartDefaults',
    'The values of this Helm chart name no image, so its images are the chart\'s defaults, which the Aspect cannot see or move. '
    + 'Set its image values (the README lists the conventions), or acknowledge this warning.');
  if (resolved === undefined) {
    if (format === DocumentFormat.HELM_VALUES) {
      chartDefaults();
    }
    return false;
  }
  const json = parseJsonWithTokens(resolved);
  if (json === undefined) {
    Annotations.of(cfn).addWarningV2('cdk-ecr-pull-through-cache:unreadableJson',
      `${property} is not JSON that can be read before deployment, so its images were not checked against the pull through cache.`);
    return false;
  }
  const mapping = aspect.mapping;
  const shown = (image: string) => json.hasToken(image) ? image.replace(new RegExp(JSON_TOKEN.source, 'g'), '${Token}') : image;
  const mapped = new Map<string, MappedImage>(); // each reference is mapped once, then reported from here
  const mapOnce = (image: string) => mapped.get(image) ?? mapped.set(image, mapping.map(image)).get(image)!;
  // an image of a cache repository (`repository.repositoryUriForTag`) names its domain with AWS::URLSuffix: the cache's
  const suffix = literalUrlSuffix(cfn);
  const own = (text: string) => suffix === undefined || !json.hasToken(text) ? text : inCacheRegistry(cfn, mapping, text,
    (scope, t) => json.withLiterals(t, token => isUrlSuffix(scope, kept!.restore(token)) ? suffix : undefined));
  const judge = (written: string) => {
    const image = own(written);
    // a deploy-time tag alone (`nginx:${Tag}`) still has a known cache path: the value moves with the tag kept a token
    const tagged = json.hasToken(image) ? mapTokenTag(mapping, image, JSON_TOKEN) : undefined;
    if (json.hasToken(image) && tagged === undefined) {
      return { deployTime: true };
    }
    const m = tagged ? { ...tagged, input: shown(image) } : mapOnce(image);
    // planned in reportOnly too (on a copy that is not applied), so a map that would be held says so
    if (m.status === MappingStatus.ALREADY_CACHED && aspect.warm && !json.hasToken(image)) {
      return { mapped: m, uri: aspect.warm(image) }; // written for the cache: warmed (and pinned) where it is
    }
    return m.status === MappingStatus.REWRITTEN ? { mapped: m, uri: aspect.warm?.(m.uri!) ?? m.uri, cachePath: m.repository } : { mapped: m };
  };
  const value = structuredClone(json.value);
  const documents = format === DocumentFormat.KUBERNETES && Array.isArray(value) ? value : [value];
  const deployTimeOnly = (text: string) => json.hasToken(own(text)) && !tokensOnlyInTag(own(text), JSON_TOKEN);
  const results = documents.flatMap(document => rewriteObject(document, format, judge, mapping.registryUri, deployTimeOnly)
    .map(result => ({ ...result, path: format === DocumentFormat.KUBERNETES ? `${describeObject(document)} ${result.path}` : result.path })));
  if (format === DocumentFormat.HELM_VALUES && results.length === 0) {
    chartDefaults();
  }

  const moved: string[] = []; // the images that move, as written
  for (const result of results) {
    const what = `${property} ${result.path}`;
    if ('skipped' in result) {
      if (result.uncertain) {
        Annotations.of(cfn).addInfo(`${what}: '${shown(result.image)}' was left alone: ${result.skipped}`);
      } else if (!result.informational) {
        aspect.report(cfn, `${what}: '${shown(result.image)}' was left alone: ${result.skipped}`);
      }
      continue;
    }
    const { mapped: m, deployTime } = result.verdict as { mapped?: MappedImage; deployTime?: boolean };
    if (deployTime) {
      Annotations.of(cfn).addWarningV2('cdk-ecr-pull-through-cache:deployTimeImage',
        `${what}: '${shown(result.image)}' is known only at deploy time, so it was not checked against the pull through cache: `
        + 'pass an image the cache serves (PullThroughCacheRules.imageUri), or acknowledge this warning.');
    } else if (m === undefined || m.status === MappingStatus.ALREADY_CACHED) {
      continue;
    } else if (m.status !== MappingStatus.REWRITTEN) {
      aspect.reportUnserved(cfn, what, m);
    } else if (result.held !== undefined) {
      aspect.report(cfn, `${what}: '${m.input}' was not moved to the cache: ${result.held}`);
    } else if (aspect.reportOnly) {
      Annotations.of(cfn).addWarningV2('cdk-ecr-pull-through-cache:notCached', `${what}: '${m.input}' would be pulled through the cache as ${m.uri}`);
    } else {
      moved.push(m.input);
      if (m.warning) {
        Annotations.of(cfn).addWarningV2(mappingWarningId(m.warning), `${what}: ${m.warning}`);
      }
    }
  }
  if (format === DocumentFormat.HELM_VALUES && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const companion of missingCompanionValues(value, moved)) {
      setCompanionValue(value as Record<string, unknown>, companion);
      Annotations.of(cfn).addInfo(`${property} ${companion.path.join('.')}: set to ${JSON.stringify(companion.value)}: ${companion.why}`);
    }
  }
  const written = JSON.stringify(value);
  if (!aspect.reportOnly && written !== JSON.stringify(json.value)) {
    cfn.addPropertyOverride(property, kept!.restore(json.restore(written)));
    return true;
  }
  return false;
}

/** A Kubernetes object's kind and name, for messages about one object of a manifest. */
function describeObject(document: unknown): string {
  const object = document as { kind?: unknown; metadata?: { name?: unknown } } | undefined;
  return `${typeof object?.kind === 'string' ? object.kind : 'object'}/${typeof object?.metadata?.name === 'string' ? object.metadata.name : '?'}`;
}

/**
 * Pods pull with their node's role, and the managed policy node groups get, `AmazonEC2ContainerRegistryReadOnly`,
 * lacks `ecr:BatchImportUpstreamImage` and `ecr:CreateRepository`: the first pull of an image not cached yet fails.
 * Why the node groups of the manifest's stack may lack them (the cache was given no `nodeRoles`), or undefined.
 */
export function nodeRolesProblem(cache: IConstruct, manifest: CfnResource): string | undefined {
  if (cache.node.tryFindChild('NodePullPolicy') !== undefined) {
    return undefined; // the cache grants its nodeRoles
  }
  const nodegroups = Stack.of(manifest).node.findAll()
    .filter(c => c instanceof eks.Nodegroup || c instanceof eksClassic.Nodegroup)
    .map(c => c.node.path);
  const which = nodegroups.length > 0 ? `the node groups ${nodegroups.join(', ')}` : 'its nodes';
  return 'Images of this resource were moved to the pull through cache, which pods pull with their node\'s role, but the cache '
    + `was given no nodeRoles: ${which} keep only what the cluster gave them (AmazonEC2ContainerRegistryReadOnly has no `
    + 'ecr:BatchImportUpstreamImage or ecr:CreateRepository, so the first pull of an image not cached yet fails). Pass their roles as '
    + 'the cache\'s nodeRoles (or cache.grantPull(role) each), then acknowledge this warning.';
}
