/**
 * Image specs: `repository:tag`, where the tag may be a pattern with `*` (`dotnet/runtime:8.0.*`). Pure logic about
 * image references, beside `image-reference.ts`: the copy mirror lists its images this way, and the mapping of
 * references to the cache (`image-mapping.ts`) asks whether a reference is one of them.
 */

/** `repository:tag`, where the tag may hold `*` wildcards. */
export interface ImageSpec {
  readonly repository: string;
  readonly tag: string;
  readonly pattern: boolean;
}

const REPOSITORY = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const TAG_PATTERN = /^[\w*][\w.*-]{0,127}$/;

/** Parses `dotnet/runtime:8.0` or `dotnet/runtime:8.0.*`; the message of a thrown error says what is wrong. */
export function parseImageSpec(spec: string): ImageSpec {
  const colon = spec.lastIndexOf(':');
  if (spec.includes('@')) {
    throw new Error(`'${spec}': name a tag, not a digest: the copier copies tags, and keeps every digest (the copy is pullable by digest too)`);
  }
  if (colon <= 0 || colon < spec.lastIndexOf('/')) {
    throw new Error(`'${spec}' has no tag: write repository:tag (for example dotnet/runtime:8.0) or a pattern (dotnet/runtime:8.0.*)`);
  }
  const repository = spec.slice(0, colon);
  const tag = spec.slice(colon + 1);
  if (!REPOSITORY.test(repository)) {
    throw new Error(`'${spec}': '${repository}' is not a repository path (lowercase components separated by '/', without the registry host)`);
  }
  const pattern = tag.includes('*');
  if (!(pattern ? TAG_PATTERN : TAG).test(tag)) {
    throw new Error(`'${spec}': '${tag}' is not a tag${pattern ? ' pattern' : ''} (letters, digits, '_', '.', '-'${pattern ? ' and \'*\'' : ''}, at most 128)`);
  }
  return { repository, tag, pattern };
}

/** Whether `tag` matches a pattern where `*` stands for any run of characters. */
export function matchesTagPattern(tag: string, pattern: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map(p => p.replace(/[.+?^${}()|[\]\\-]/g, '\\$&')).join('.*')}$`);
  return re.test(tag);
}

/** Whether one of the image specs names `repository:tag` (exactly, or through a pattern). */
export function specsInclude(specs: readonly string[], repository: string, tag: string | undefined): boolean {
  return tag !== undefined && specs.map(parseImageSpec)
    .some(s => s.repository === repository && (s.pattern ? matchesTagPattern(tag, s.tag) : s.tag === tag));
}
