/**
 * Where images live, decided once for the ecr-ptc CLI (YAML syntax trees, edited byte for byte) and the
 * CachedImages Aspect (plain objects in a CDK app). Both see a document through `Tree` and get the same image
 * sites; they differ only in how they apply an edit.
 *
 * An image site is one of:
 * - a container of a pod spec, in the workload kinds whose pod specs are known (`POD_SPECS`);
 * - a known image field of a custom resource (`CUSTOM_RESOURCE_IMAGES`);
 * - a Helm image map of a known convention, or an image string under an `image` (or `<something>Image`) key of
 *   Helm values (helm-images.ts), or under any key starting or ending with `image` when it has a tag or digest;
 * - the `image` of a compose service that does not build its own image.
 *
 * Nothing else is an image: a ConfigMap's `image: 'true'`, an annotation, `spec.os.image` of a node class, a
 * CRD's schema. Containers of kinds that are not known are reported (left alone), never rewritten on a guess.
 *
 * The locator's vocabulary and tree walks are in locator-tree.ts, Helm values in helm-value-sites.ts; conventions that
 * need more than a path live beside it in helm-images.ts, kustomize-images.ts and setting-images.ts.
 */
import { IMAGE_KEY, helmValues, looksLikeImage } from './helm-value-sites';
import { isKustomization, kustomizeImages } from './kustomize-images';
import { DocumentFormat, DocumentSites, SiteKind, Tree, at, get, itemsOf, textOf } from './locator-tree';
import { knownImageVariable, settingImages } from './setting-images';

/** Container lists of a pod spec. */
const CONTAINER_LISTS = ['containers', 'initContainers', 'ephemeralContainers'];

/**
 * Workload kinds and where their pod specs are: `<api group>/<kind>` (the core group is empty). A kind whose
 * group varies across versions is listed once per group.
 */
const POD_SPECS: Record<string, readonly string[][]> = {
  '/Pod': [['spec']],
  '/PodTemplate': [['template', 'spec']],
  '/ReplicationController': [['spec', 'template', 'spec']],
  'apps/Deployment': [['spec', 'template', 'spec']],
  'apps/StatefulSet': [['spec', 'template', 'spec']],
  'apps/DaemonSet': [['spec', 'template', 'spec']],
  'apps/ReplicaSet': [['spec', 'template', 'spec']],
  'extensions/Deployment': [['spec', 'template', 'spec']],
  'extensions/DaemonSet': [['spec', 'template', 'spec']],
  'extensions/ReplicaSet': [['spec', 'template', 'spec']],
  'batch/Job': [['spec', 'template', 'spec']],
  'batch/CronJob': [['spec', 'jobTemplate', 'spec', 'template', 'spec']],
  // Argo Rollouts, Knative Serving, OpenKruise: Kubernetes pod templates under their own kinds
  'argoproj.io/Rollout': [['spec', 'template', 'spec']],
  'serving.knative.dev/Service': [['spec', 'template', 'spec']],
  'serving.knative.dev/Configuration': [['spec', 'template', 'spec']],
  'serving.knative.dev/Revision': [['spec']],
  'apps.kruise.io/CloneSet': [['spec', 'template', 'spec']],
  'apps.kruise.io/StatefulSet': [['spec', 'template', 'spec']],
  'apps.kruise.io/DaemonSet': [['spec', 'template', 'spec']],
  // the Prometheus operator merges these containers into the pods it makes
  'monitoring.coreos.com/Prometheus': [['spec']],
  'monitoring.coreos.com/PrometheusAgent': [['spec']],
  'monitoring.coreos.com/Alertmanager': [['spec']],
  'monitoring.coreos.com/ThanosRuler': [['spec']],
};

/**
 * Image fields of custom resources, beyond pod specs: a path of keys, where `[]` walks every item of a list.
 * Each field holds one whole image reference.
 */
const CUSTOM_RESOURCE_IMAGES: Record<string, readonly string[][]> = {
  'monitoring.coreos.com/Prometheus': [['spec', 'image']],
  'monitoring.coreos.com/PrometheusAgent': [['spec', 'image']],
  'monitoring.coreos.com/Alertmanager': [['spec', 'image']],
  'monitoring.coreos.com/ThanosRuler': [['spec', 'image']],
  ...Object.fromEntries(['Workflow', 'WorkflowTemplate', 'ClusterWorkflowTemplate'].map(kind => [`argoproj.io/${kind}`, argoTemplates(['spec'])])),
  'argoproj.io/CronWorkflow': argoTemplates(['spec', 'workflowSpec']),
  ...Object.fromEntries(['Task', 'ClusterTask'].map(kind => [`tekton.dev/${kind}`, tektonTask(['spec'])])),
  'tekton.dev/TaskRun': tektonTask(['spec', 'taskSpec']),
  'tekton.dev/Pipeline': tektonTask(['spec', 'tasks', '[]', 'taskSpec']),
  'tekton.dev/PipelineRun': tektonTask(['spec', 'pipelineSpec', 'tasks', '[]', 'taskSpec']),
  'sparkoperator.k8s.io/SparkApplication': [['spec', 'image'], ['spec', 'driver', 'image'], ['spec', 'executor', 'image']],
  'sparkoperator.k8s.io/ScheduledSparkApplication': [['spec', 'template', 'image'], ['spec', 'template', 'driver', 'image'], ['spec', 'template', 'executor', 'image']],
};

/**
 * A Tekton Task param whose value is a step's whole image (`image: $(params.builderImage)`): its `default` is an
 * image, rewritten like the step's would be (https://tekton.dev/docs/pipelines/tasks/#specifying-parameters).
 * A TaskRun or Pipeline may pass another value: that value is where it is written, not here.
 */
function tektonParamImages<N>(tree: Tree<N>, root: N, where: string, sites: DocumentSites<N>): void {
  const used = new Set(['steps', 'sidecars'].flatMap(list => at(tree, root, ['spec', list, '[]', 'image'], where))
    .map(step => /^\$\(params(?:\.([A-Za-z0-9_-]+)|\[["']([A-Za-z0-9_.-]+)["']\])\)$/.exec(tree.text(step.node) ?? ''))
    .filter((m): m is RegExpExecArray => m !== null).map(m => m[1] ?? m[2]));
  for (const param of at(tree, root, ['spec', 'params', '[]'], where)) {
    const fallback = get(tree, param.node, 'default');
    const image = textOf(tree, fallback);
    if (fallback !== undefined && image !== undefined && image !== '' && used.has(textOf(tree, get(tree, param.node, 'name')) ?? '')) {
      sites.strings.push({ kind: SiteKind.SETTING, path: `${param.path}.default`, node: fallback, image });
    }
  }
}

function tektonTask(spec: string[]): string[][] {
  return [[...spec, 'steps', '[]', 'image'], [...spec, 'sidecars', '[]', 'image'], [...spec, 'stepTemplate', 'image']];
}

/** Kinds whose `images:` entries override the images of the resources they build (kustomize-images.ts). */
const KUSTOMIZATIONS = new Set(['kustomize.config.k8s.io/Kustomization', 'kustomize.config.k8s.io/Component']);

/** Kinds that hold Helm values: the values are read as a values file. */
const HELM_VALUES_OF: Record<string, readonly string[]> = {
  'helm.toolkit.fluxcd.io/HelmRelease': ['spec', 'values'],
  'argoproj.io/Application': ['spec', 'source', 'helm', 'valuesObject'],
};

function argoTemplates(spec: string[]): string[][] {
  const inline = (path: string[]) => [[...path, 'inline', 'container', 'image'], [...path, 'inline', 'script', 'image']];
  return [
    [...spec, 'templates', '[]', 'container', 'image'],
    [...spec, 'templates', '[]', 'script', 'image'],
    [...spec, 'templates', '[]', 'initContainers', '[]', 'image'],
    [...spec, 'templates', '[]', 'sidecars', '[]', 'image'],
    [...spec, 'templates', '[]', 'containerSet', 'containers', '[]', 'image'],
    ...inline([...spec, 'templates', '[]', 'steps', '[]', '[]']),
    ...inline([...spec, 'templates', '[]', 'dag', 'tasks', '[]']),
  ];
}

/**
 * Kinds that name images without pulling them (Flux's image automation scans a repository's tags; policy
 * engines match references with patterns), and schemas: nothing in them is an image to move or report.
 */
const NOT_PULLED = new Set([
  'image.toolkit.fluxcd.io/ImageRepository', 'image.toolkit.fluxcd.io/ImagePolicy', 'image.toolkit.fluxcd.io/ImageUpdateAutomation',
  'kyverno.io/ClusterPolicy', 'kyverno.io/Policy', 'apiextensions.k8s.io/CustomResourceDefinition',
]);

/** The format of a parsed document: Kubernetes when it has `apiVersion` and `kind`, compose with `services`. */
export function formatOf<N>(tree: Tree<N>, root: N): DocumentFormat {
  const entries = new Map(tree.entries(root) ?? []);
  const apiVersion = entries.get('apiVersion');
  const kind = entries.get('kind');
  if (apiVersion !== undefined && kind !== undefined && tree.text(apiVersion) !== undefined && tree.text(kind) !== undefined) {
    return DocumentFormat.KUBERNETES;
  }
  const keys = [...entries.keys()];
  if (entries.has('services') && tree.entries(entries.get('services')!) !== undefined && keys.every(k => COMPOSE_KEYS.has(k) || k.startsWith('x-'))) {
    return DocumentFormat.COMPOSE;
  }
  // GitHub Actions (`on` + `jobs`), GitLab CI (`stages`, or jobs with a `script`)
  if ((entries.has('jobs') && (entries.has('on') || entries.has('true'))) || entries.has('stages')
    || [...entries.values()].some(v => get(tree, v, 'script') !== undefined && get(tree, v, 'stage') !== undefined)) {
    return DocumentFormat.CI;
  }
  return DocumentFormat.HELM_VALUES;
}

/** The top-level keys of a compose file (the Compose Specification), besides `x-` extensions. */
const COMPOSE_KEYS = new Set(['version', 'name', 'include', 'services', 'networks', 'volumes', 'configs', 'secrets', 'models']);

/** What the locator looks for beyond image fields. */
export interface LocateOptions {
  /**
   * Also every other string value that is a whole reference with a registry host (setting-images.ts): rewritten
   * where a known convention says it is an image, else reported as a setting. The CLI asks for it (check must
   * see every image a workload pulls).
   * @default false
   */
  readonly settings?: boolean;
}

/** Finds the image sites of one document. */
export function locateImages<N>(tree: Tree<N>, root: N, format: DocumentFormat = formatOf(tree, root),
  options: LocateOptions = {}): DocumentSites<N> {
  const sites: DocumentSites<N> = { format, strings: [], hubs: [], kustomize: [], helmMaps: [], shared: {}, skipped: [] };
  switch (format) {
    case DocumentFormat.KUBERNETES:
      kubernetes(tree, root, '', sites);
      break;
    case DocumentFormat.COMPOSE:
      compose(tree, root, sites);
      break;
    case DocumentFormat.HELM_VALUES:
      if (isKustomization(tree, root)) {
        sites.kustomize.push(...kustomizeImages(tree, root, '')); // a kustomization.yaml without apiVersion and kind
      } else {
        helmValues(tree, root, '', sites);
      }
      break;
    case DocumentFormat.CI:
      break;
  }
  if (options.settings && format !== DocumentFormat.CI && !notPulled(tree, root)) {
    settings(tree, root, sites);
  }
  return sites;
}

/** Whether a Kubernetes document is of a kind that names images without pulling them (`NOT_PULLED`). */
function notPulled<N>(tree: Tree<N>, root: N): boolean {
  const apiVersion = textOf(tree, get(tree, root, 'apiVersion')) ?? '';
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  return NOT_PULLED.has(`${group}/${textOf(tree, get(tree, root, 'kind')) ?? ''}`);
}

/** The settings that hold whole references, beyond the sites found so far: rewritten by a known convention, else reported. */
function settings<N>(tree: Tree<N>, root: N, sites: DocumentSites<N>): void {
  const seen = new Set<unknown>([
    ...sites.strings.map(s => s.node), ...sites.hubs.map(h => h.node), ...sites.skipped.map(s => s.node),
    ...sites.kustomize.flatMap(k => [k.node, ...k.values]),
    // a Helm map's values are read by its convention; a map or list under one of its fields is not, so is searched
    ...sites.helmMaps.flatMap(m => Object.values(m.fields).filter(f => tree.text(f as N) !== undefined)),
    ...sites.helmMaps.flatMap(m => m.otherRepositories.map(([, node]) => node)),
    ...Object.values(sites.shared).map(s => s?.node),
  ]);
  for (const found of settingImages(tree, root, seen)) {
    const convention = found.variable === undefined || found.within ? undefined : knownImageVariable(found.variable);
    if (convention !== undefined) {
      sites.strings.push({ kind: SiteKind.SETTING, path: found.path, node: found.node, image: found.image });
    } else {
      const what = found.variable !== undefined ? `the environment variable ${found.variable}` : found.path;
      const reason = found.within ? `an image in a setting (${what}, one of several references in its value)` : `an image in a setting (${what})`;
      sites.skipped.push({ path: found.path, node: found.node, image: found.image, setting: true, reason });
    }
  }
}

// ---------------------------------------------------------------- Kubernetes

function kubernetes<N>(tree: Tree<N>, root: N, where: string, sites: DocumentSites<N>): void {
  const apiVersion = textOf(tree, get(tree, root, 'apiVersion')) ?? '';
  const kind = textOf(tree, get(tree, root, 'kind')) ?? '';
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  const key = `${group}/${kind}`;
  if (kind === 'List' || kind.endsWith('List')) {
    itemsOf(tree, get(tree, root, 'items')).forEach((item, i) => kubernetes(tree, item, `${where}items[${i}].`, sites));
    return;
  }
  if (NOT_PULLED.has(key)) {
    return;
  }
  const podSpecs = POD_SPECS[key];
  const fields = CUSTOM_RESOURCE_IMAGES[key];
  for (const spec of (podSpecs ?? []).flatMap(path => at(tree, root, path, where.replace(/\.$/, '')))) {
    containers(tree, spec.node, spec.path, sites);
  }
  for (const field of (fields ?? []).flatMap(path => at(tree, root, path, where.replace(/\.$/, '')))) {
    const image = tree.text(field.node);
    if (image !== undefined && image !== '') {
      sites.strings.push({ kind: SiteKind.CUSTOM_RESOURCE, path: field.path, node: field.node, image });
    }
  }
  if (key === 'tekton.dev/Task' || key === 'tekton.dev/ClusterTask') {
    tektonParamImages(tree, root, where.replace(/\.$/, ''), sites);
  }
  if (KUSTOMIZATIONS.has(key)) {
    sites.kustomize.push(...kustomizeImages(tree, root, where.replace(/\.$/, '')));
  }
  const values = HELM_VALUES_OF[key];
  for (const found of values === undefined ? [] : at(tree, root, values, where.replace(/\.$/, ''))) {
    helmValues(tree, found.node, found.path, sites);
  }
  if (group !== '' && !CORE_GROUPS.has(group)) {
    // a custom resource: any other field named like an image is one the locator does not know
    const known = new Set<unknown>([...sites.strings.map(x => x.node), ...sites.helmMaps.map(x => x.node)]);
    unknownFields(tree, root, where.replace(/\.$/, ''), `${kind} (${apiVersion})`, values, known, sites);
  }
}

/** API groups of Kubernetes itself: their kinds are known whole, nothing else in them is an image. */
const CORE_GROUPS = new Set(['apps', 'batch', 'extensions', 'networking.k8s.io', 'policy', 'rbac.authorization.k8s.io',
  'storage.k8s.io', 'autoscaling', 'admissionregistration.k8s.io', 'scheduling.k8s.io', 'coordination.k8s.io',
  'discovery.k8s.io', 'node.k8s.io', 'certificates.k8s.io', 'flowcontrol.apiserver.k8s.io', 'resource.k8s.io']);

function containers<N>(tree: Tree<N>, spec: N, where: string, sites: DocumentSites<N>): void {
  for (const list of CONTAINER_LISTS) {
    itemsOf(tree, get(tree, spec, list)).forEach((container, i) => {
      const node = get(tree, container, 'image');
      const image = node === undefined ? undefined : tree.text(node);
      if (node !== undefined && image !== undefined && image !== '') {
        sites.strings.push({ kind: SiteKind.CONTAINER, path: `${where}.${list}[${i}].image`, node, image });
      }
    });
  }
}

/**
 * The fields of a custom resource that look like images (an `image` or `<something>Image` string, outside
 * `metadata`) and that no known path covers: reported, never rewritten on a guess. A container list anywhere is
 * named as such.
 */
function unknownFields<N>(tree: Tree<N>, root: N, where: string, kind: string, valuesPath: readonly string[] | undefined,
  known: Set<unknown>, sites: DocumentSites<N>): void {
  const visit = (node: N, path: string, keys: string[]): void => {
    for (const [key, child] of tree.entries(node) ?? []) {
      const childKeys = [...keys, key];
      if ((keys.length === 0 && key === 'metadata') || (valuesPath && childKeys.join('.') === valuesPath.join('.'))) {
        continue;
      }
      const childPath = path ? `${path}.${key}` : key;
      const text = tree.text(child);
      if (IMAGE_KEY.test(key) && text !== undefined && text !== '' && !known.has(child)) {
        const inContainer = /\.(containers|initContainers|ephemeralContainers)\[\d+\]\.image$/.test(`.${childPath}`);
        if (inContainer) {
          sites.skipped.push({ path: childPath, node: child, image: text, reason: `a container of kind ${kind}, whose pod spec is not one the locator knows` });
        } else if (looksLikeImage(text) || /^[^/]*[.:][^/]*\//.test(text)) {
          // `spec.os.image: ubuntu-22.04-lts` names no registry, tag or digest: not reported
          sites.skipped.push({ path: childPath, node: child, image: text, uncertain: true, reason: `a field of kind ${kind} that the locator does not know to be an image` });
        }
      } else {
        visit(child, childPath, childKeys);
      }
    }
    (tree.items(node) ?? []).forEach((item, i) => visit(item, `${path}[${i}]`, [...keys, '[]']));
  };
  visit(root, where, []);
}

// ---------------------------------------------------------------- compose

function compose<N>(tree: Tree<N>, root: N, sites: DocumentSites<N>): void {
  const services = get(tree, root, 'services');
  const byName = new Map(services === undefined ? [] : tree.entries(services) ?? []);
  for (const [name, service] of byName) {
    const node = get(tree, service, 'image');
    const image = node === undefined ? undefined : tree.text(node);
    if (node === undefined || image === undefined || image === '') {
      continue;
    }
    const path = `services.${name}.image`;
    const builds = buildsItsImage(tree, byName, name, new Set());
    if (builds !== undefined) {
      sites.skipped.push({ path, node, image, reason: builds.reason, informational: builds.informational });
    } else {
      sites.strings.push({ kind: SiteKind.COMPOSE, path, node, image });
    }
  }
}

/**
 * Why a service's `image` is not pulled as written: it has `build` (its own, merged in with `<<`, or from the
 * service it `extends`), so compose builds and tags the image under that name. An `extends` of another file is
 * not followed: it may build.
 */
function buildsItsImage<N>(tree: Tree<N>, services: Map<string, N>, name: string, seen: Set<string>):
{ reason: string; informational: boolean } | undefined {
  const service = services.get(name);
  if (service === undefined || seen.has(name)) {
    return undefined;
  }
  seen.add(name);
  if (get(tree, service, 'build') !== undefined) {
    return { reason: seen.size === 1 ? 'the service builds this image (build:)' : `the service extends ${name}, which builds its image`, informational: true };
  }
  const extendsNode = get(tree, service, 'extends');
  if (extendsNode === undefined) {
    return undefined;
  }
  const base = tree.text(extendsNode) ?? textOf(tree, get(tree, extendsNode, 'service'));
  if (get(tree, extendsNode, 'file') !== undefined) {
    return { reason: 'the service extends a service of another file, which may build the image', informational: false };
  }
  return base === undefined ? undefined : buildsItsImage(tree, services, base, seen);
}
