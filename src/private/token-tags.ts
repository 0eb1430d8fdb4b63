/**
 * Images whose tag is known only at deploy time: `nginx:${Tag}` (a parameter or SSM value holding the tag alone,
 * as the Aspect's own warning advises). The registry and repository are literal, so the cache path is known: the
 * image is mapped with a stand-in tag and the deploy-time value is put back where the stand-in is. Pure: the caller
 * says what a deploy-time value looks like (a CDK token string, or the Aspect's JSON placeholder).
 */
import { ImageMapping, MappedImage, MappingStatus } from '../image-mapping';

/** A CDK token in a string (`${Token[...]}`, as `Token.asString` writes it). */
export const CDK_TOKEN = /\$\{Token\[[^\]]+\]\}/;

/** A tag stand-in: valid tag characters, unlike anything in a real reference. */
const standIn = (i: number) => `ptcdeploytimetag${i}x`;

/**
 * Whether every deploy-time value of `image` is inside its tag: after the `:` that follows the last `/`, with only
 * tag characters around it, and no digest. False for an image with no deploy-time value.
 */
export function tokensOnlyInTag(image: string, tokens: RegExp): boolean {
  const pattern = new RegExp(tokens.source, 'g');
  const first = image.search(pattern);
  if (first < 0) {
    return false;
  }
  const name = image.slice(0, first);
  const colon = name.lastIndexOf(':');
  if (colon < 0 || colon < name.lastIndexOf('/') || !/^[\w.-]*$/.test(name.slice(colon + 1))) {
    return false;
  }
  return /^[\w.-]*$/.test(image.slice(first).replace(pattern, ''));
}

/**
 * Maps an image whose tag holds deploy-time values (`tokens` matches one), or undefined when some value lies
 * outside the tag. The URI, reason and input keep the deploy-time values as they were.
 */
export function mapTokenTag(mapping: ImageMapping, image: string, tokens: RegExp): MappedImage | undefined {
  if (!tokensOnlyInTag(image, tokens)) {
    return undefined;
  }
  const found: string[] = [];
  const literal = image.replace(new RegExp(tokens.source, 'g'), token => standIn(found.push(token) - 1));
  const mapped = mapping.map(literal);
  const restore = (text: string | undefined) => text?.replace(/ptcdeploytimetag(\d+)x/g, (_, i) => found[Number(i)]);
  return {
    ...mapped,
    input: image,
    uri: mapped.status === MappingStatus.ALREADY_CACHED ? image : restore(mapped.uri),
    reason: restore(mapped.reason),
    warning: restore(mapped.warning),
  };
}
