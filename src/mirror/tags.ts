/**
 * Which tags a mirror pattern copies (`8.0.*` with at most N tags): versions compared by their numbers, and the
 * highest versions first. Pure: no AWS SDK, no aws-cdk-lib.
 */
import { matchesTagPattern } from '../image-spec';

/** Orders tags as versions: runs of digits compare as numbers (`8.0.10` after `8.0.9`), the rest as text. */
export function compareVersions(a: string, b: string): number {
  const split = (s: string) => s.match(/\d+|\D+/g) ?? [];
  const pa = split(a);
  const pb = split(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined || y === undefined) {
      return x === undefined ? -1 : 1;
    }
    const nx = /^\d/.test(x);
    const ny = /^\d/.test(y);
    const c = nx && ny ? Number(x) - Number(y) || x.length - y.length : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) {
      return c;
    }
  }
  return 0;
}

/**
 * The version a tag names: its leading dotted number, without a leading `v` (`8.0.15` of `8.0.15-noble`, `1.2.3` of
 * `v1.2.3`), or undefined for a tag without one (`latest`, `stable`): those are not versions, and are ranked after
 * every tag that is.
 */
function versionOf(tag: string): string | undefined {
  return /^v?(\d+(?:\.\d+)*)/.exec(tag)?.[1];
}

/**
 * The tags of `tags` that match the pattern, at most `limit`: the highest versions first, one tag per version
 * before any second tag of a version, so variants of one version (`8.0.15-noble`, `8.0.15-alpine`) never take the
 * place of another version (`8.0.14`). Within a version the plain tag comes first (`1.2.3` before `v1.2.3`), then
 * its variants, highest first. Tags that name no version (`latest`, `stable`) come only after every versioned tag.
 */
export function selectTags(tags: readonly string[], pattern: string, limit: number): string[] {
  const versions = new Map<string, string[]>();
  const words: string[] = [];
  for (const tag of tags.filter(t => matchesTagPattern(t, pattern))) {
    const version = versionOf(tag);
    if (version === undefined) {
      words.push(tag);
    } else {
      versions.set(version, [...(versions.get(version) ?? []), tag]);
    }
  }
  const byVersion = [...versions.entries()]
    .sort(([a], [b]) => compareVersions(b, a))
    .map(([version, variants]) => variants.sort((a, b) => (a === version ? -1 : b === version ? 1 : compareVersions(b, a))));
  const selected: string[] = [];
  for (let round = 0; selected.length < limit && byVersion.some(v => v.length > round); round++) {
    selected.push(...byVersion.filter(v => v.length > round).map(v => v[round]).slice(0, limit - selected.length));
  }
  selected.push(...words.sort((a, b) => compareVersions(b, a)).slice(0, Math.max(0, limit - selected.length)));
  return selected;
}
