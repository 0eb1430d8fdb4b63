/**
 * The rule of `check`: in any file, every string value that is a whole image reference with a registry host is
 * either rewritten by `rewrite` or listed by `check` (cached, not served, left alone, not pulled, or an image in a
 * setting). There is no third outcome: an image `check` passes without a word is a hole in the cache.
 *
 * Documents are generated from the shapes images hide in (workloads, env, ConfigMaps, Helm values and image
 * maps, kustomizations, Tekton params, compose files), nested at random, with references placed anywhere.
 * CI pipelines and the kinds that name images without pulling them (image-locator.ts `NOT_PULLED`) are outside
 * the rule by design, and are not generated.
 */
import * as fc from 'fast-check';
import { stringify } from 'yaml';
import { Judge, Outcome } from '../src/cli/judge';
import { rewriteYaml } from '../src/cli/rewrite';
import { ImageMapping } from '../src/image-mapping';
import { isHostedReference } from '../src/private/setting-images';

const REGISTRY = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
const onCache = (image: string) => image.startsWith(`${REGISTRY}/`);
const checking: Judge = { cacheStatus: onCache };
const rewriting: Judge = { mapping: new ImageMapping({ registryUri: REGISTRY }), cacheStatus: onCache };

const hosted = fc.constantFrom('quay.io/strimzi/kafka:0.45.0-kafka-3.9.0', 'ghcr.io/zalando/spilo-16:3.3-p1', 'registry.k8s.io/pause:3.10',
  `public.ecr.aws/eks/aws-load-balancer-controller@sha256:${'c'.repeat(64)}`, 'registry.example.com:5000/team/app:v2', 'docker.io/library/nginx:1.27',
  'gcr.io/kaniko-project/executor:v1.23.2', 'localhost:5000/dev/tool:1', 'index.docker.io/bitnami/redis:7.4');
const other = fc.constantFrom('nginx:1.27', 'topology.kubernetes.io/zone', 'https://quay.io/strimzi', 'true', '8080', 'cluster.local',
  'quay.io/strimzi/kafka', 'v1.2.3', '', 'a b c', '$(params.image)', '{{ .Values.image }}');
const key = fc.constantFrom('image', 'images', 'name', 'value', 'env', 'data', 'containers', 'initContainers', 'spec', 'template',
  'params', 'default', 'steps', 'registry', 'repository', 'tag', 'newName', 'newTag', 'digest', 'sidecarImage', 'docker_image',
  'RELATED_IMAGE_DB', 'config', 'global', 'services', 'environment', 'hub', 'annotations', 'x');

const value: fc.Arbitrary<unknown> = fc.letrec<{ node: unknown }>(tie => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    hosted, other,
    fc.dictionary(key, tie('node'), { maxKeys: 4 }),
    fc.array(tie('node'), { maxLength: 3 }),
    // an env variable, a kustomize entry, a Helm image map: the shapes that hold references apart from `image`
    fc.record({ name: fc.constantFrom('RELATED_IMAGE_DB', 'STRIMZI_DEFAULT_KAFKA_EXPORTER_IMAGE', 'SIDECAR', 'nginx', 'quay.io/a/b'), value: fc.oneof(hosted, other) }),
    fc.record({ name: fc.oneof(hosted, other), newName: fc.oneof(hosted, other), newTag: fc.constantFrom('v1', '2') }, { requiredKeys: ['name'] }),
    fc.record({ registry: fc.constantFrom('quay.io', '', 'ghcr.io'), repository: fc.oneof(hosted, other), tag: fc.constantFrom('1', '') }, { requiredKeys: [] }),
  ),
})).node;

const head = fc.constantFrom<Record<string, unknown>>({}, { apiVersion: 'apps/v1', kind: 'Deployment' }, { apiVersion: 'v1', kind: 'ConfigMap' },
  { apiVersion: 'tekton.dev/v1', kind: 'Task' }, { apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization' },
  { apiVersion: 'example.com/v1', kind: 'Widget' }, { apiVersion: 'v1', kind: 'Pod' }, { apiVersion: 'v1', kind: 'List' });

const documents = fc.tuple(head, fc.dictionary(key, value, { minKeys: 1, maxKeys: 5 })).map(([h, body]) => ({ ...body, ...h }));

/** Every string value of a plain object that is a whole reference with a registry host. */
function hostedValues(node: unknown): string[] {
  if (typeof node === 'string') {
    return isHostedReference(node) ? [node] : [];
  }
  if (Array.isArray(node)) {
    return node.flatMap(hostedValues);
  }
  return node !== null && typeof node === 'object' ? Object.values(node).flatMap(hostedValues) : [];
}

describe('no silent gap', () => {
  test('every hosted reference of a document is rewritten or listed by check', () => {
    fc.assert(fc.property(documents, doc => {
      const text = stringify(doc);
      const lines = text.split('\n');
      const checked = rewriteYaml(text, checking);
      if (checked.error) {
        return; // a refused file fails check as a whole
      }
      const rewritten = rewriteYaml(text, rewriting);
      for (const image of hostedValues(doc)) {
        // listed: a finding names it, or sits on its line (a Helm map or kustomize entry names the image it makes)
        const listed = checked.findings.some(f => f.image.includes(image) || (lines[f.line - 1] ?? '').includes(image));
        expect(`${image} listed by check: ${listed}\n${text}`).toBe(`${image} listed by check: true\n${text}`);
        // and rewrite moves it or says why not: the same rule, from the other side
        const moved = rewritten.findings.some(f => (f.outcome === Outcome.REWRITTEN || f.outcome === Outcome.CACHED)
          && (f.image.includes(image) || (lines[f.line - 1] ?? '').includes(image)));
        const told = rewritten.findings.some(f => f.image.includes(image) || (lines[f.line - 1] ?? '').includes(image));
        expect(moved || told).toBe(true);
      }
    }), { numRuns: 500 });
  }, 120_000);
});
