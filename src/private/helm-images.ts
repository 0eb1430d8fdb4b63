/**
 * The conventions by which images sit in Kubernetes manifests and Helm values, shared by the ecr-ptc CLI (YAML
 * text, edited in place) and the CachedImages Aspect (objects in a CDK app), so both decide alike.
 */

/** Keys whose value is an image: `image` (Kubernetes, compose, Helm) and Helm's `<something>Image`. */
export const IMAGE_KEY = /^(image|[a-z][A-Za-z0-9]*Image)$/;

/** The fields of a Helm image map as written; an empty string counts as absent. */
export interface HelmImageFields {
  readonly registry?: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

/**
 * The reference a Helm image map stands for. Bitnami-style charts take the registry from
 * `global.imageRegistry` when it is set, for every image; without a registry, `repository` may hold a full path.
 */
export function helmImageReference(fields: HelmImageFields, globalRegistry?: string): string {
  const registry = globalRegistry || fields.registry || undefined;
  return `${registry ? `${registry}/` : ''}${fields.repository}${fields.tag ? `:${fields.tag}` : ''}${fields.digest ? `@${fields.digest}` : ''}`;
}

/**
 * Whether a file's (or a chart's) Helm image maps may move to the cache. With `global.imageRegistry`, every image
 * comes from it, so either every image is served and it becomes the cache, or none may move.
 */
export function helmMapsMayMove(globalRegistry: string | undefined, served: readonly boolean[]): boolean {
  return globalRegistry === undefined || served.every(s => s);
}

/**
 * The new values of a served Helm image map: the registry becomes the cache where the map (or
 * `global.imageRegistry`) names one, and the repository the cache path, with the cache host in front otherwise.
 */
export function helmRewrite(cachePath: string, hasOwnRegistry: boolean, globalRegistry: string | undefined, registryDomain: string):
{ readonly repository: string; readonly registry?: string } {
  return {
    repository: hasOwnRegistry || globalRegistry !== undefined ? cachePath : `${registryDomain}/${cachePath}`,
    registry: hasOwnRegistry ? registryDomain : undefined,
  };
}
