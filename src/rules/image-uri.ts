import { Annotations, Token } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { ImageMapping, MappingStatus } from '../image-mapping';
import { mappingWarningId } from '../private/cache-mapping';
import { CDK_TOKEN, mapTokenTag } from '../private/token-tags';

/** `imageUri` of a cache, made or imported: the cache URI of `image`, or an error that says why there is none. */
export function cacheImageUri(cache: IConstruct, mapping: ImageMapping, image: string): string {
  // a tag known only at deploy time (`nginx:${tag.valueAsString}`) keeps its token; the cache path is known
  const mapped = (Token.isUnresolved(image) ? mapTokenTag(mapping, image, CDK_TOKEN) : undefined) ?? mapping.map(image);
  switch (mapped.status) {
    case MappingStatus.REWRITTEN:
      if (mapped.warning) {
        Annotations.of(cache).addWarningV2(mappingWarningId(mapped.warning), mapped.warning);
      }
      return mapped.uri!;
    case MappingStatus.ALREADY_CACHED:
      return image;
    case MappingStatus.NO_RULE:
      throw new Error(`${cache.node.path}: no pull through cache rule serves '${image}': ${mapped.reason}.${
        mapped.reason!.includes('UpstreamRegistry.') ? '' : ' Add an upstream for that registry to this cache\'s upstreams.'}`);
    default:
      throw new Error(`${cache.node.path}: no pull through cache rule serves '${image}'. ${mapped.reason}`);
  }
}
