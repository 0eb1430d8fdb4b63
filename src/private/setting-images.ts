/**
 * Images held in settings: a whole image reference in a value that no image field of the locator covers, such as
 * a container's `env` value (`STRIMZI_DEFAULT_KAFKA_EXPORTER_IMAGE`, the OLM `RELATED_IMAGE_*` convention), a
 * ConfigMap's `data` (postgres-operator's `docker_image`), a Helm value named `*_image`, a Tekton param's
 * default. An operator reads them and pulls the image later, so a tree that keeps them passes no review by
 * the image fields alone.
 *
 * The rule: every string value that is a whole reference with a registry host and a tag or digest is either an
 * image site of the locator, or one of the settings found here. A setting of a known convention is rewritten;
 * any other is reported as "an image in a setting" (ecr-ptc check fails on it unless told to allow settings).
 */
import { ImageReference } from '../image-reference';

/**
 * Whether a value is a whole image reference whose registry host is written (`quay.io/strimzi/kafka:0.45.0`,
 * not `nginx:1.27`) and that names a tag or a digest, as an operator setting holds an image to pull. A host
 * alone with a path (`topology.kubernetes.io/zone`) is a label key, not an image.
 */
export function isHostedReference(value: string): boolean {
  const slash = value.indexOf('/');
  if (slash <= 0 || /\s/.test(value)) {
    return false;
  }
  const host = value.slice(0, slash);
  if (!/[.:]/.test(host) && host !== 'localhost') {
    return false;
  }
  try {
    const ref = ImageReference.parse(value);
    return ref.tag !== undefined || ref.digest !== undefined;
  } catch {
    return false;
  }
}

/**
 * Container environment variables documented to hold a whole image reference that the program pulls (or hands
 * to a pod it creates): rewritten like an image field.
 * - `RELATED_IMAGE_*`: the Operator Lifecycle Manager convention for the images an operator deploys; OLM
 *   tooling collects these variables into a bundle's `spec.relatedImages` so that mirrors can rewrite them
 *   (https://docs.redhat.com/en/documentation/openshift_container_platform/4.6/html/operators/olm-enabling-operator-for-restricted-network_osdk-generating-csvs,
 *   https://github.com/janus-idp/operator/pull/86).
 * - `STRIMZI_DEFAULT_*_IMAGE`: the Strimzi Cluster Operator's default images of its components
 *   (strimzi/strimzi-kafka-operator@0.38.0:install/cluster-operator/060-Deployment-strimzi-cluster-operator.yaml;
 *   https://docs.redhat.com/en/documentation/red_hat_streams_for_apache_kafka/2.7/html/deploying_and_managing_streams_for_apache_kafka_on_openshift/ref-operator-cluster-str).
 */
const KNOWN_IMAGE_VARIABLES: ReadonlyArray<{ readonly pattern: RegExp; readonly convention: string }> = [
  { pattern: /^RELATED_IMAGE_[A-Za-z0-9_]+$/, convention: 'the OLM RELATED_IMAGE_* convention' },
  // (STRIMZI_DEFAULT_MAVEN_BUILDER has no _IMAGE suffix; any STRIMZI_DEFAULT_* holding a whole reference is an image)
  { pattern: /^STRIMZI_DEFAULT_[A-Z0-9_]+$/, convention: 'a Strimzi Cluster Operator default image' },
];

/** The convention of a container environment variable known to hold an image, or undefined. */
export function knownImageVariable(name: string): string | undefined {
  return KNOWN_IMAGE_VARIABLES.find(v => v.pattern.test(name))?.convention;
}

/** The advice every reported setting ends with. */
export const SETTING_ADVICE = 'ecr-ptc does not know that what reads it pulls it as written, so it is not rewritten: '
  + 'point it at the cache by hand, or pass --allow-settings to accept it';

/** A read-only view of a document (image-locator.ts's `Tree`, restated here so this module imports none of it). */
interface SettingTree<N> {
  entries(node: N): ReadonlyArray<readonly [string, N]> | undefined;
  items(node: N): readonly N[] | undefined;
  text(node: N): string | undefined;
}

/** A whole reference found in a setting. */
export interface SettingImage<N> {
  /** Where, for messages: `spec.template.spec.containers[0].env[3].value`. */
  readonly path: string;
  readonly node: N;
  readonly image: string;
  /** The container environment variable that holds it, when it is one. */
  readonly variable?: string;
  /** The reference is one of several in the value (`4.3.1=quay.io/strimzi/kafka:...` lines), so never rewritten. */
  readonly within?: boolean;
}

/**
 * The references a setting's value holds: the value itself, or the references among its words, where a value
 * lists several (Strimzi's `STRIMZI_KAFKA_IMAGES`: `<version>=<image>` pairs separated by whitespace or commas).
 */
function referencesIn(value: string): Array<{ image: string; within: boolean }> {
  if (isHostedReference(value)) {
    return [{ image: value, within: false }];
  }
  return value.split(/[\s,;]+/).map(word => word.replace(/^[^=/]*=/, '')).filter(isHostedReference).map(image => ({ image, within: true }));
}

/**
 * Every string value of a document that is a whole reference with a registry host (`isHostedReference`), but
 * for the nodes in `seen` (the locator's image sites, and what they hold). Annotations and labels are searched
 * too: a controller may read an image from one.
 */
export function settingImages<N>(tree: SettingTree<N>, root: N, seen: ReadonlySet<unknown>): Array<SettingImage<N>> {
  const found: Array<SettingImage<N>> = [];
  const visited = new Set<unknown>();
  const visit = (node: N, path: string, parentKey: string | undefined): void => {
    if (seen.has(node) || visited.has(node)) {
      return; // a site of the locator, or a node reached again through an alias or a merge key
    }
    visited.add(node);
    const text = tree.text(node);
    if (text !== undefined) {
      found.push(...referencesIn(text).map(r => ({ path, node, ...r })));
      return;
    }
    const entries = tree.entries(node);
    if (entries !== undefined) {
      // a container's environment variable: `env: [{name: X, value: <image>}]`
      const name = parentKey === 'env' ? entries.find(([k]) => k === 'name') : undefined;
      const variable = name === undefined ? undefined : tree.text(name[1]);
      for (const [key, child] of entries) {
        const childPath = path ? `${path}.${key}` : key;
        const value = variable !== undefined && key === 'value' && !seen.has(child) ? tree.text(child) : undefined;
        if (value !== undefined) {
          visited.add(child);
          found.push(...referencesIn(value).map(r => ({ path: childPath, node: child, variable, ...r })));
          continue;
        }
        visit(child, childPath, key);
      }
      return;
    }
    (tree.items(node) ?? []).forEach((item, i) => visit(item, `${path}[${i}]`, parentKey));
  };
  visit(root, '', undefined);
  return found;
}
