/**
 * The URI of an ECR repository of the app (`ecs.ContainerImage.fromEcrRepository`, `repository.repositoryUriForTag`)
 * names its domain with the `AWS::URLSuffix` pseudo parameter, while a cache in a concrete Region names it literally
 * (`amazonaws.com`): read as written, an image of the cache's own repository is not recognised as the cache's, and its
 * execution role misses the first-pull grant. In a stack of a concrete Region the suffix is known at synth
 * (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/pseudo-parameter-reference.html#cfn-pseudo-param-urlsuffix).
 */
import { Stack, Token } from 'aws-cdk-lib';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { IConstruct } from 'constructs';
import { ImageMapping } from '../image-mapping';
import { CDK_TOKEN } from './token-tags';

/** The URL suffix of the Region of `scope`'s stack, when the Region is known at synth. */
export function literalUrlSuffix(scope: IConstruct): string | undefined {
  const region = Stack.of(scope).region;
  return Token.isUnresolved(region) ? undefined : RegionInfo.get(region).domainSuffix;
}

/** Whether a value (a token string, or a token) is the `AWS::URLSuffix` pseudo parameter. */
export function isUrlSuffix(scope: IConstruct, token: unknown): boolean {
  const resolved = Stack.of(scope).resolve(token) as { Ref?: unknown } | undefined;
  return typeof resolved === 'object' && resolved !== null && Object.keys(resolved).length === 1 && resolved.Ref === 'AWS::URLSuffix';
}

/** `image` with each `AWS::URLSuffix` token replaced by the suffix of the Region of `scope`'s stack, when it is known. */
export function withLiteralUrlSuffix(scope: IConstruct, image: string): string {
  const suffix = Token.isUnresolved(image) ? literalUrlSuffix(scope) : undefined;
  return suffix === undefined ? image : image.replace(new RegExp(CDK_TOKEN.source, 'g'), token => isUrlSuffix(scope, token) ? suffix : token);
}

/**
 * An image of the cache registry as the cache names it, so that it is checked and granted like `imageUri`'s; any
 * other image (or a value that is not a string) as it is.
 */
export function inCacheRegistry<T>(scope: IConstruct, mapping: ImageMapping, image: T, literal = withLiteralUrlSuffix): T | string {
  const written = typeof image === 'string' ? literal(scope, image) : undefined;
  return written?.toLowerCase().startsWith(`${mapping.registryUri.toLowerCase()}/`) ? written : image;
}
