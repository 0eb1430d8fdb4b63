/**
 * Container image references, parsed and normalised exactly as Docker, containerd and Kubernetes do
 * (`github.com/distribution/reference`, `ParseNormalizedNamed`). Pure: no CDK imports.
 */
import { DOCKER_HUB_ALIASES, DOCKER_HUB_HOST } from './private/catalogue';

// The grammar of distribution/reference (regexp.go), written out once here.
const ALPHANUMERIC = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALPHANUMERIC}(?:${SEPARATOR}${ALPHANUMERIC})*`;
const DOMAIN_NAME_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_NAME_COMPONENT}(?:\\.${DOMAIN_NAME_COMPONENT})*`;
const IPV6_ADDRESS = '\\[(?:[a-fA-F0-9:]+)\\]';
const DOMAIN_AND_PORT = `(?:${DOMAIN_NAME}|${IPV6_ADDRESS})(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
const REMOTE_NAME = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const NAME = `(?:${DOMAIN_AND_PORT}/)?${REMOTE_NAME}`;

const REFERENCE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const ANCHORED_NAME = new RegExp(`^(?:(${DOMAIN_AND_PORT})/)?(${REMOTE_NAME})$`);
const ANCHORED_IDENTIFIER = /^[a-f0-9]{64}$/;

/**
 * Repository paths longer than this are refused (distribution/reference v0.6.0 `RepositoryNameTotalLengthMax`).
 * The limit is on the path alone: the registry host does not count.
 */
const REPOSITORY_PATH_LENGTH_MAX = 255;
/** No valid reference is longer than this; longer input is refused before any pattern runs. */
const INPUT_LENGTH_MAX = 1024;

/** Docker Hub; distribution/reference folds `index.docker.io` into it, we fold the API host too (catalogue). */
const DEFAULT_DOMAIN = DOCKER_HUB_HOST;
const OFFICIAL_REPO_PREFIX = 'library/';
const LOCALHOST = 'localhost';

/**
 * Digest algorithms with their hex lengths, as registered by opencontainers/go-digest. A Map, not an object:
 * an algorithm named like an object property (`constructor`, `toString`) must not find anything.
 */
const DIGEST_HEX_LENGTH: ReadonlyMap<string, number> = new Map([['sha256', 64], ['sha384', 96], ['sha512', 128]]);

/**
 * A parsed, normalised container image reference.
 *
 * @example
 * const ref = ImageReference.parse('nginx:1.25');
 * ref.registry;    // 'docker.io'
 * ref.repository;  // 'library/nginx'
 * ref.toString();  // 'docker.io/library/nginx:1.25'
 */
export class ImageReference {
  /**
   * Parses an image reference the way `docker pull` and Kubernetes do.
   *
   * A first path component containing `.` or `:`, equal to `localhost`, or with an uppercase letter is the
   * registry; otherwise the registry is `docker.io`, and a single-component Docker Hub name gets `library/`.
   * No tag is implied: `nginx` has neither tag nor digest.
   *
   * @param reference the reference, for example `nginx:1.25`, `quay.io/prometheus/prometheus:v2.53.0` or
   * `registry.k8s.io/pause@sha256:...`
   * @throws if `reference` is not a valid image reference; the message names the input and the reason
   */
  public static parse(reference: string): ImageReference {
    const fail = (reason: string): never => {
      throw new Error(`Invalid image reference '${reference}': ${reason}`);
    };
    if (typeof reference !== 'string' || reference.length === 0) {
      return fail('it is empty');
    }
    if (reference.length > INPUT_LENGTH_MAX) {
      return fail(`it is ${reference.length} characters long; no valid reference is longer than ${INPUT_LENGTH_MAX}`);
    }
    if (ANCHORED_IDENTIFIER.test(reference)) {
      return fail('a 64-character hexadecimal string is an image ID, not a repository name');
    }

    const { domain, remainder } = splitDockerDomain(reference);
    const tagSeparator = remainder.indexOf(':');
    const remote = tagSeparator > -1 ? remainder.slice(0, tagSeparator) : remainder;
    if (remote.toLowerCase() !== remote) {
      return fail(`the repository name '${remote}' must be lowercase (only the registry host may have uppercase letters)`);
    }

    const normalised = `${domain}/${remainder}`;
    const match = REFERENCE.exec(normalised);
    if (!match) {
      return fail(diagnose(remainder));
    }
    const name = match[1];
    const nameMatch = ANCHORED_NAME.exec(name)!;
    const path = nameMatch[2];
    if (path.length > REPOSITORY_PATH_LENGTH_MAX) {
      return fail(`the repository path '${path}' is ${path.length} characters long; the limit is ${REPOSITORY_PATH_LENGTH_MAX} (the registry host does not count)`);
    }
    if (nameMatch[1] === undefined) {
      // distribution/reference would return a name with an empty domain here (`a__b.c/d`): the first
      // component looks like a host but is not a valid one, and no registry can be pulled from.
      return fail(`'${domain}' stands where the registry goes (it has '.' or ':', is localhost, or has uppercase) but is not a valid host name`);
    }
    const tag = match[2] || undefined;
    const digest = match[3] || undefined;
    if (digest !== undefined) {
      const problem = digestProblem(digest);
      if (problem) {
        return fail(problem);
      }
    }
    return new ImageReference(nameMatch[1], nameMatch[2], tag, digest);
  }

  /**
   * The registry host, with its port if any: `docker.io` for Docker Hub (`index.docker.io` and
   * `registry-1.docker.io` are folded into it).
   */
  public readonly registry: string;

  /** The repository path without the registry: `library/nginx`, `prometheus/prometheus`. */
  public readonly repository: string;

  /**
   * The tag.
   * @default - no tag was given (no implicit `latest`)
   */
  public readonly tag?: string;

  /**
   * The digest, `algorithm:hex`.
   * @default - no digest was given
   */
  public readonly digest?: string;

  private constructor(registry: string, repository: string, tag?: string, digest?: string) {
    this.registry = registry;
    this.repository = repository;
    this.tag = tag;
    this.digest = digest;
  }

  /** `registry/repository`, without tag or digest. */
  public get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  /** The canonical form: `docker.io/library/nginx:1.25`; a tag and a digest are both kept when both were given. */
  public toString(): string {
    return `${this.name}${this.tag !== undefined ? `:${this.tag}` : ''}${this.digest !== undefined ? `@${this.digest}` : ''}`;
  }
}

/** distribution/reference `splitDockerDomain`, plus the `registry-1.docker.io` alias. */
function splitDockerDomain(name: string): { domain: string; remainder: string } {
  let domain: string;
  let remainder: string;
  const slash = name.indexOf('/');
  const first = slash === -1 ? '' : name.slice(0, slash);
  if (slash === -1 || (!/[.:]/.test(first) && first !== LOCALHOST && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = first;
    remainder = name.slice(slash + 1);
  }
  if (DOCKER_HUB_ALIASES.includes(domain)) {
    domain = DEFAULT_DOMAIN;
  }
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) {
    remainder = OFFICIAL_REPO_PREFIX + remainder;
  }
  return { domain, remainder };
}

/** Why an algorithm:hex digest that matched the grammar is still refused (go-digest `Validate`). */
function digestProblem(digest: string): string | undefined {
  const [algorithm, hex] = digest.split(':', 2);
  const expected = DIGEST_HEX_LENGTH.get(algorithm);
  if (expected === undefined) {
    return `unsupported digest algorithm '${algorithm}' (use sha256, sha384 or sha512)`;
  }
  if (hex.length !== expected || !/^[a-f0-9]+$/.test(hex)) {
    return `a ${algorithm} digest is ${expected} lowercase hexadecimal characters`;
  }
  return undefined;
}

/** A reason for a reference that does not match the grammar, as specific as cheap checks allow. */
function diagnose(remainder: string): string {
  if (remainder.startsWith('library/[')) {
    return 'an IPv6 registry host must be followed by a repository path, for example [::1]:5000/repo';
  }
  const at = remainder.indexOf('@');
  const beforeDigest = at === -1 ? remainder : remainder.slice(0, at);
  const lastColon = beforeDigest.lastIndexOf(':');
  const lastSlash = beforeDigest.lastIndexOf('/');
  if (at !== -1 && !new RegExp(`^${DIGEST}$`).test(remainder.slice(at + 1))) {
    return `'${remainder.slice(at + 1)}' is not a digest (expected algorithm:hex, for example sha256:<64 hex characters>)`;
  }
  if (lastColon > lastSlash) {
    const tag = beforeDigest.slice(lastColon + 1);
    if (!new RegExp(`^${TAG}$`).test(tag)) {
      return `'${tag}' is not a valid tag (1 to 128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-')`;
    }
  }
  return 'it does not follow the reference grammar [registry[:port]/]path[:tag][@digest], '
    + "where each path component is lowercase letters and digits joined by '.', '_', '__' or '-'";
}
