/**
 * Image sites in Helm values: image maps of the known conventions (helm-images.ts gives each convention's meaning),
 * image strings under `image`-like keys, and the shared settings (`global.imageRegistry`, `hub`...) that decide the
 * registry of every map. Part of the locator (image-locator.ts), which calls it for values files and for the values
 * embedded in Kubernetes kinds (Argo CD, Flux, the HelmChart of k3s).
 */
import { ImageReference } from '../image-reference';
import { DocumentSites, HELM_FIELDS, HELM_SHARED, HelmField, HelmMapSite, HelmShared, SiteKind, Tree, at, get } from './locator-tree';

/** Keys whose value may be an image in Helm values: `image` and `<something>Image`. */
export const IMAGE_KEY = /^(image|[a-z][A-Za-z0-9]*Image)$/;

/**
 * Keys whose string value is an image when it is a whole reference with a tag or digest: any key that starts or
 * ends with `image`, in any case, without an underscore (consul's `global.imageK8S`, `global.imageConsulDataplane`);
 * a `docker_image` or `*_IMAGE` is a setting (setting-images.ts).
 */
const IMAGE_STRING_KEY = /^image[A-Za-z0-9]*$|^[A-Za-z0-9]*image$/i;

export function helmValues<N>(tree: Tree<N>, root: N, prefix: string, sites: DocumentSites<N>): void {
  for (const [name, path] of Object.entries(HELM_SHARED) as Array<[HelmShared, readonly string[]]>) {
    const found = at(tree, root, path, prefix);
    if (found.length === 1 && tree.text(found[0].node) !== undefined) {
      sites.shared[name] = found[0];
    }
  }
  // `global.image` with only a registry is a shared setting; with a repository it is the default image (argo-cd)
  if (sites.shared.globalImageMapRegistry !== undefined) {
    const globalImage = at(tree, root, ['global', 'image'], prefix)[0]?.node;
    if (['repository', 'image', 'name'].some(f => nonEmpty(tree, get(tree, globalImage, f)))) {
      delete sites.shared.globalImageMapRegistry;
    }
  }
  const hub = [...at(tree, root, ['global', 'hub'], prefix), ...at(tree, root, ['hub'], prefix)].find(h => nonEmpty(tree, h.node));
  const bareNames: string[] = [];
  const visit = (node: N, where: string, underImageKey: boolean): void => {
    // a map that is an image map by its own keys, wherever it is: an `image` string beside a `registry` or
    // `repository` (gpu-operator `driver: {repository, image, version}`, ingress-nginx `{registry, image, tag}`),
    // or a `registry` beside a `repository`; under an image key (`image.busybox: {registry, repository}` in
    // kube-prometheus-stack), a `repository` alone will do
    const own = helmFields(tree, node);
    const imageText = own?.image !== undefined ? tree.text(own.image) : undefined;
    if (where !== prefix && own !== undefined && !holdsUrl(tree, own) && (
      (imageText !== undefined && (own.registry !== undefined || own.repository !== undefined))
      || (own.registry !== undefined && own.repository !== undefined && tree.entries(own.repository) === undefined)
      || (underImageKey && own.repository !== undefined && tree.text(own.repository) !== undefined))) {
      sites.helmMaps.push(helmMap(tree, where, node, own));
      return;
    }
    for (const [key, child] of tree.entries(node) ?? []) {
      const path = where ? `${where}.${key}` : key;
      if (/^(annotations|labels|[a-z][A-Za-z0-9]*(Annotations|Labels))$/.test(key)) {
        continue; // Kubernetes metadata: an `image` there is text
      }
      if (IMAGE_KEY.test(key)) {
        const image = tree.text(child);
        if (image !== undefined) {
          if (image !== '' && key === 'image' && /^[a-z0-9][a-z0-9._-]*$/.test(image)) {
            // a bare name: Istio puts its `hub` and `tag` around it; without a hub, whatever the chart adds is unknown
            if (hub !== undefined) {
              bareNames.push(image);
            } else {
              sites.skipped.push({ path, node: child, image, reason: 'a bare image name: the chart may put a registry, a path or a tag around it' });
            }
          } else if (image !== '' && (key === 'image' || looksLikeImage(image))) {
            sites.strings.push({ kind: SiteKind.HELM_STRING, path, node: child, image });
          }
          continue;
        }
        const fields = helmFields(tree, child);
        if (fields !== undefined) {
          sites.helmMaps.push(helmMap(tree, path, child, fields));
          continue;
        }
        const unknown = unknownImageMap(tree, child);
        if (unknown !== undefined) {
          sites.skipped.push({ path, node: child, image: unknown, reason: 'an image map of a convention the locator does not know' });
          continue;
        }
        visit(child, path, true);
        continue;
      }
      const text = tree.text(child);
      if (IMAGE_STRING_KEY.test(key) && text !== undefined && looksLikeImage(text)) {
        sites.strings.push({ kind: SiteKind.HELM_STRING, path, node: child, image: text });
        continue;
      }
      // Airflow's `images: {airflow: {repository, tag}, statsd: {...}}`: maps of images by name
      const parentKey = where.split('.').pop() ?? '';
      visit(child, path, key === 'images' || (underImageKey && (parentKey === 'images' || IMAGE_KEY.test(parentKey))));
    }
    (tree.items(node) ?? []).forEach((item, i) => visit(item, `${where}[${i}]`, false));
  };
  visit(root, prefix, false);
  if (hub !== undefined) {
    sites.hubs.push({ path: hub.path, node: hub.node, hub: tree.text(hub.node)!, names: bareNames });
  }
}

/** A map whose registry or repository is a URL (`s3://`, `oci://`): a storage or chart location, not an image. */
function holdsUrl<N>(tree: Tree<N>, fields: Partial<Record<HelmField, N>>): boolean {
  return [fields.registry, fields.repository].some(node => node !== undefined && /:\/\//.test(tree.text(node) ?? ''));
}

/** Keys an image map may have that name no part of the image. */
const IMAGE_MAP_SETTINGS = new Set(['pullPolicy', 'pullSecrets', 'imagePullPolicy', 'imagePullSecrets', 'tag', 'digest', 'sha', 'version']);

/**
 * An image map that names a tag but whose other keys are not a known convention (aws-vpc-cni's `account` +
 * `region` + `domain`): its keys, to report it; undefined when the map names no image (only settings).
 */
function unknownImageMap<N>(tree: Tree<N>, node: N): string | undefined {
  const entries = tree.entries(node) ?? [];
  const tag = entries.find(([k]) => k === 'tag' || k === 'version');
  const others = entries.filter(([k, v]) => !IMAGE_MAP_SETTINGS.has(k) && tree.text(v) !== undefined && tree.text(v) !== '');
  return tag !== undefined && tree.text(tag[1]) && others.length > 0 ? entries.map(([k, v]) => `${k}: ${tree.text(v) ?? '...'}`).join(', ') : undefined;
}

/** The fields of a map that is a Helm image map, or undefined when it is not one. */
function helmFields<N>(tree: Tree<N>, node: N): Partial<Record<HelmField, N>> | undefined {
  const entries = tree.entries(node);
  if (entries === undefined) {
    return undefined;
  }
  const fields: Partial<Record<HelmField, N>> = {};
  for (const [key, value] of entries) {
    if ((HELM_FIELDS as readonly string[]).includes(key) && fields[key as HelmField] === undefined) {
      fields[key as HelmField] = value;
    }
  }
  return fields.repository !== undefined || fields.image !== undefined || fields.name !== undefined ? fields : undefined;
}

/**
 * The keys of an image map, besides its convention's fields, that name a registry: a key named `<something>Registry`
 * with a value, or any key whose value is a registry host (`reg.kyverno.io`, `localhost:5000`). kyverno's maps
 * have `registry: ~` and `defaultRegistry: reg.kyverno.io`, and its template uses the second when the first is
 * empty (kyverno/kyverno@111e07bbecc6:charts/kyverno/templates/_helpers/_image.tpl): such a map is not Docker Hub.
 */
function otherRegistries<N>(tree: Tree<N>, node: N): Array<readonly [string, N]> {
  return (tree.entries(node) ?? []).filter(([key, value]) => {
    const text = tree.text(value);
    if ((HELM_FIELDS as readonly string[]).includes(key) || IMAGE_MAP_SETTINGS.has(key) || text === undefined || text === '') {
      return false;
    }
    // a host has a last label of letters (`v3.24.0` is a version), or is localhost, with an optional port
    return /registry$/i.test(key) || /^(localhost|[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,})(:\d+)?$/i.test(text);
  });
}

function helmMap<N>(tree: Tree<N>, path: string, node: N, fields: Partial<Record<HelmField, N>>): HelmMapSite<N> {
  return { path, node, fields, otherRegistries: otherRegistries(tree, node), otherRepositories: otherRepositories(tree, node) };
}

/** The `<something>Repository` keys of an image map holding a repository path (not a URL). */
function otherRepositories<N>(tree: Tree<N>, node: N): Array<readonly [string, N]> {
  return (tree.entries(node) ?? []).filter(([key, value]) => {
    const text = tree.text(value);
    return /^[a-z][A-Za-z0-9]*Repository$/.test(key) && text !== undefined && text !== '' && !/:\/\/|\s/.test(text);
  });
}

function nonEmpty<N>(tree: Tree<N>, node: N | undefined): boolean {
  const text = node === undefined ? undefined : tree.text(node);
  return text !== undefined && text !== '';
}

/**
 * Whether a `<something>Image` string is an image: a valid reference with a tag or a digest. (`image` itself is
 * always taken as one: an invalid value there is reported.) `backgroundImage: /static/bg.png` is not an image.
 */
export function looksLikeImage(value: string): boolean {
  try {
    const ref = ImageReference.parse(value);
    return ref.tag !== undefined || ref.digest !== undefined;
  } catch {
    return false;
  }
}
