/**
 * The `images:` entries of a kustomization: how kustomize users override the images of the resources they build
 * (https://kubectl.docs.kubernetes.io/references/kustomize/kustomization/images/). Each entry matches the images
 * named `name` in the resources and replaces their name with `newName`, their tag with `newTag`, or their tag
 * with `digest`. Flux's install manifests use them (fluxcd/flux2@da2d22d3:manifests/install/kustomization.yaml).
 *
 * An entry moves to the cache by its `newName`: set to the cache path of the image it names, or added where only a
 * tag or digest is overridden. Its `name` is a pattern over the resources and never changes.
 */

/** A read-only view of a document (image-locator.ts's `Tree`, restated so that this module imports none of it). */
interface KustomizeTree<N> {
  entries(node: N): ReadonlyArray<readonly [string, N]> | undefined;
  items(node: N): readonly N[] | undefined;
  text(node: N): string | undefined;
}

/** One `images:` entry of a kustomization. */
export interface KustomizeImageSite<N> {
  /** Where, for messages: `images[2]`. */
  readonly path: string;
  /** The entry (a map). */
  readonly node: N;
  /** The image the entry makes the resources pull: `newName` (else `name`), with `digest` (else `newTag`). */
  readonly image: string;
  /** The `newName` value's node, when the entry has one. */
  readonly newName?: N;
  /** The nodes of the entry's values, so that nothing else reports them. */
  readonly values: readonly N[];
}

/** The fields of an `images:` entry (kustomize's `types.Image`). */
const FIELDS = new Set(['name', 'newName', 'newTag', 'digest']);

/** The keys of a kustomization file besides `images` (api/types/kustomization.go), to know a file without `kind`. */
const KUSTOMIZATION_KEYS = new Set(['resources', 'bases', 'components', 'patches', 'patchesStrategicMerge', 'patchesJson6902',
  'namespace', 'namePrefix', 'nameSuffix', 'commonLabels', 'labels', 'commonAnnotations', 'configMapGenerator', 'secretGenerator',
  'generators', 'transformers', 'helmCharts', 'replacements', 'replicas', 'crds', 'openapi', 'generatorOptions', 'sortOptions',
  'buildMetadata', 'vars', 'apiVersion', 'kind', 'images']);

/**
 * Whether a document without `kind` is a kustomization: every top-level key is one of a kustomization, and its
 * `images` is a list of entries with a `name` and a change (`newName`, `newTag`, `digest`).
 */
export function isKustomization<N>(tree: KustomizeTree<N>, root: N): boolean {
  const entries = tree.entries(root);
  const images = entries?.find(([k]) => k === 'images')?.[1];
  const items = images === undefined ? undefined : tree.items(images);
  return entries !== undefined && items !== undefined && items.length > 0
    && entries.every(([k]) => KUSTOMIZATION_KEYS.has(k))
    && items.every(item => {
      const keys = (tree.entries(item) ?? []).map(([k]) => k);
      return keys.includes('name') && keys.some(k => k === 'newName' || k === 'newTag' || k === 'digest') && keys.every(k => FIELDS.has(k));
    });
}

/** The `images:` entries of a kustomization (`root`), with what each makes the resources pull. */
export function kustomizeImages<N>(tree: KustomizeTree<N>, root: N, where: string): Array<KustomizeImageSite<N>> {
  const images = tree.entries(root)?.find(([k]) => k === 'images')?.[1];
  const prefix = where ? `${where}.images` : 'images';
  return (images === undefined ? [] : tree.items(images) ?? []).flatMap((entry, i) => {
    const fields = new Map(tree.entries(entry) ?? []);
    const text = (key: string) => {
      const node = fields.get(key);
      const value = node === undefined ? undefined : tree.text(node);
      return value === '' ? undefined : value;
    };
    const name = text('newName') ?? text('name');
    if (name === undefined) {
      return [];
    }
    const digest = text('digest');
    const tag = text('newTag');
    const image = digest !== undefined ? `${name}@${digest}` : tag !== undefined ? `${name}:${tag}` : name;
    return [{ path: `${prefix}[${i}]`, node: entry, image, newName: fields.get('newName'), values: [...fields.values()] }];
  });
}
