/**
 * Where images live, as the ecr-ptc CLI sees YAML (the CachedImages Aspect shares the locator: see
 * test/cached-images-eks.test.ts). Each case: the exact output, and a second run that changes nothing.
 */
import { ImageMapping } from '../../src';
import { FileResult, Outcome } from '../../src/cli/judge';
import { rewriteYaml } from '../../src/cli/rewrite';

const REGISTRY = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
const judge = {
  mapping: new ImageMapping({ registryUri: REGISTRY }),
  cacheStatus: (image: string) => image.startsWith(`${REGISTRY}/`),
};

function rewrite(input: string): FileResult {
  const result = rewriteYaml(input, judge);
  expect(result.error).toBeUndefined();
  // idempotent: the output rewritten again is the same text
  expect(rewriteYaml(result.output, judge).output).toBe(result.output);
  return result;
}

const lines = (...l: string[]) => l.map(x => `${x}\n`).join('');
/** Added beside moved Bitnami images (src/cli/companions.ts; test/cli-companions.test.ts tests it). */
const BITNAMI_COMPANION = ['global:', '  security:', '    allowInsecureImages: true'];

describe('Helm image-map conventions', () => {
  test.each([
    ['Bitnami: registry + repository + tag + digest',
      lines('image:', '  registry: docker.io', '  repository: bitnami/nginx', '  tag: 1.27.3', '  digest: ""'),
      lines('image:', `  registry: ${REGISTRY}`, '  repository: docker-hub/bitnami/nginx', '  tag: 1.27.3', '  digest: ""', ...BITNAMI_COMPANION)],
    ['prometheus-community: sha instead of digest (kept, and read as a digest)',
      lines('image:', '  registry: quay.io', '  repository: prometheus/node-exporter', '  tag: v1.8.2', '  sha: ""'),
      lines('image:', `  registry: ${REGISTRY}`, '  repository: quay/prometheus/node-exporter', '  tag: v1.8.2', '  sha: ""')],
    ['ingress-nginx: registry + image + tag + digest, with an empty repository override',
      lines('controller:', '  image:', '    registry: registry.k8s.io', '    image: ingress-nginx/controller', '    repository: ""', '    tag: "v1.11.2"', '    digest: sha256:d5f8217feeac4887cb1ed21f27c2674e58be06bd8f5184cacea2a69abaf78dce'),
      lines('controller:', '  image:', `    registry: ${REGISTRY}`, '    image: k8s/ingress-nginx/controller', '    repository: ""', '    tag: "v1.11.2"', '    digest: sha256:d5f8217feeac4887cb1ed21f27c2674e58be06bd8f5184cacea2a69abaf78dce')],
    ['ingress-nginx: a repository replaces registry + image',
      lines('image:', '  registry: registry.k8s.io', '  image: ingress-nginx/controller', '  repository: quay.io/me/controller', '  tag: v1'),
      lines('image:', '  registry: registry.k8s.io', '  image: ingress-nginx/controller', `  repository: ${REGISTRY}/quay/me/controller`, '  tag: v1')],
    ['ingress-nginx: global.image.registry overrides every registry, and moves with them',
      lines('global:', '  image:', '    registry: registry.k8s.io', 'controller:', '  image:', '    registry: registry.k8s.io', '    image: ingress-nginx/controller', '    tag: v1'),
      lines('global:', '  image:', `    registry: ${REGISTRY}`, 'controller:', '  image:', `    registry: ${REGISTRY}`, '    image: k8s/ingress-nginx/controller', '    tag: v1')],
    ['NVIDIA gpu-operator: repository (registry and path) + image + version',
      lines('operator:', '  repository: ghcr.io/nvidia', '  image: gpu-operator', '  version: v24.6.2'),
      lines('operator:', `  repository: ${REGISTRY}/ghcr/nvidia`, '  image: gpu-operator', '  version: v24.6.2')],
    ['gpu-operator-style map under an image key',
      lines('driverImage:', '  repository: ghcr.io/nvidia', '  image: driver', '  version: "550"'),
      lines('driverImage:', `  repository: ${REGISTRY}/ghcr/nvidia`, '  image: driver', '  version: "550"')],
    ['cert-manager: top-level imageRegistry + imageNamespace + name, moved together',
      lines('imageRegistry: quay.io', 'imageNamespace: jetstack', 'image:', '  name: cert-manager-controller', 'webhook:', '  image:', '    name: cert-manager-webhook'),
      lines(`imageRegistry: ${REGISTRY}`, 'imageNamespace: quay/jetstack', 'image:', '  name: cert-manager-controller', 'webhook:', '  image:', '    name: cert-manager-webhook')],
    ['a tag written inside repository is kept',
      lines('image:', '  repository: nginx:1.27'),
      lines('image:', `  repository: ${REGISTRY}/docker-hub/library/nginx:1.27`)],
    ['a digest written inside repository is kept',
      lines('image:', '  registry: ""', '  repository: quay.io/a/b@sha256:d5f8217feeac4887cb1ed21f27c2674e58be06bd8f5184cacea2a69abaf78dce'),
      lines('image:', '  registry: ""', `  repository: ${REGISTRY}/quay/a/b@sha256:d5f8217feeac4887cb1ed21f27c2674e58be06bd8f5184cacea2a69abaf78dce`)],
    ['a numeric tag stays as written',
      lines('image:', '  registry: docker.io', '  repository: bitnami/redis', '  tag: 7.40'),
      lines('image:', `  registry: ${REGISTRY}`, '  repository: docker-hub/bitnami/redis', '  tag: 7.40', ...BITNAMI_COMPANION)],
  ])('%s', (_, input, expected) => {
    expect(rewrite(input).output).toBe(expected);
  });

  test('gpu-operator on nvcr.io (no pull through cache for it) is reported, not rewritten', () => {
    const input = lines('operator:', '  repository: nvcr.io/nvidia', '  image: gpu-operator', '  version: v24.6.2');
    const result = rewrite(input);
    expect(result.output).toBe(input);
    expect(result.findings).toEqual([expect.objectContaining({ image: 'nvcr.io/nvidia/gpu-operator:v24.6.2', outcome: Outcome.UNSERVED })]);
  });

  test.each([
    ['a repository that names a registry beside a registry',
      lines('image:', '  registry: docker.io', '  repository: quay.io/prometheus/x', '  tag: v1'), /names a registry and the registry is 'docker\.io' too/],
    ['a tag in repository and a tag field',
      lines('image:', '  repository: nginx:1.27', '  tag: "1.26"'), /has a tag or digest and the map has its own/],
    ['a registry that differs from global.image.registry (tempo-distributed: its enterprise images ignore the global)',
      lines('global:', '  image:', '    registry: docker.io', 'provisioner:', '  image:', '    registry: us-docker.pkg.dev', '    repository: grafanalabs/provisioner'),
      /its registry 'us-docker\.pkg\.dev' differs from global\.image\.registry 'docker\.io'/],
    ['registry + image with an empty registry',
      lines('image:', '  registry: ""', '  image: ingress-nginx/controller', '  tag: v1'), /empty registry/],
  ])('%s: left whole and reported', (_, input, note) => {
    const result = rewrite(input);
    expect(result.output).toBe(input);
    expect(result.findings).toEqual([expect.objectContaining({ outcome: Outcome.LEFT_ALONE, note: expect.stringMatching(note) })]);
  });

  test('global.imageRegistry with an image the cache cannot serve: none of its maps move, each reported', () => {
    const input = lines('global:', '  imageRegistry: registry.access.redhat.com', 'image:', '  repository: ubi9/ubi', 'other:', '  image:', '    repository: ubi9/nginx');
    const result = rewrite(input);
    expect(result.output).toBe(input);
    expect(result.findings.map(f => f.outcome)).toEqual([Outcome.UNSERVED, Outcome.UNSERVED]);
  });

  test('a map left whole under a global registry holds every map of that global: moving the global would move it too', () => {
    const input = lines('global:', '  imageRegistry: docker.io', 'a:', '  image:', '    registry: ghcr.io', '    repository: org/a',
      'b:', '  image:', '    repository: bitnami/b', '    tag: "1"');
    const result = rewrite(input);
    expect(result.output).toBe(input);
    expect(result.findings.map(f => [f.line, f.outcome, f.note])).toEqual([
      [5, Outcome.LEFT_ALONE, expect.stringMatching(/differs from global\.imageRegistry/)],
      [9, Outcome.LEFT_ALONE, 'Helm image map left whole: another image under global.imageRegistry cannot be rewritten'],
    ]);
  });

  test('cert-manager maps that would need different namespaces stay, and say why', () => {
    // docker.io/jetstack/x maps to docker-hub/jetstack/x: one namespace for both, so this moves...
    expect(rewrite(lines('imageRegistry: docker.io', 'imageNamespace: jetstack', 'a:', '  image:', '    name: x', 'b:', '  image:', '    name: y')).output)
      .toContain('imageNamespace: docker-hub/jetstack');
    // ...while an image whose repository overrides the name does not need the namespace
    const mixed = rewrite(lines('imageRegistry: quay.io', 'imageNamespace: jetstack', 'a:', '  image:', '    name: x', 'b:', '  image:', '    repository: quay.io/other/y', '    name: y'));
    expect(mixed.output).toContain(`imageRegistry: ${REGISTRY}`);
    expect(mixed.output).toContain(`repository: ${REGISTRY}/quay/other/y`);
  });
});

describe('values files: a template in one value does not stop the others', () => {
  test('a values.yaml with {{ }} in unrelated values is rewritten; templated image values are reported with their line', () => {
    const input = lines(
      'podAnnotations:',
      '  checksum: "{{ include (print $.Template.BasePath \\"/cm.yaml\\") . | sha256sum }}"',
      'image:',
      '  repository: quay.io/argoproj/argocd',
      '  tag: v2.12.3',
      'extra:',
      '  image: "{{ .Values.global.registry }}/tool:1"',
    );
    const result = rewrite(input);
    expect(result.output).toBe(input.replace('repository: quay.io/argoproj/argocd', `repository: ${REGISTRY}/quay/argoproj/argocd`));
    expect(result.findings).toEqual([
      expect.objectContaining({ line: 4, outcome: Outcome.REWRITTEN }),
      expect.objectContaining({ line: 7, outcome: Outcome.LEFT_ALONE, note: expect.stringMatching(/templated/) }),
    ]);
  });

  test('a chart template: literal image lines are rewritten, templated ones reported, the rest untouched', () => {
    const input = lines(
      '{{- if .Values.enabled }}',
      'apiVersion: v1',
      'kind: Pod',
      'spec:',
      '  containers:',
      '    - name: {{ .Chart.Name }}',
      '      image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"',
      '    - name: wait',
      '      image: busybox:1.36 # waits',
      '    - name: quoted',
      "      image: 'quay.io/a/b:1'",
      '{{- end }}',
    );
    const result = rewriteYaml(input, judge);
    expect(result.error).toBeUndefined();
    expect(result.output).toBe(input
      .replace('image: busybox:1.36 # waits', `image: ${REGISTRY}/docker-hub/library/busybox:1.36 # waits`)
      .replace("image: 'quay.io/a/b:1'", `image: '${REGISTRY}/quay/a/b:1'`));
    expect(result.findings.map(f => [f.line, f.outcome])).toEqual([[7, Outcome.LEFT_ALONE], [9, Outcome.REWRITTEN], [11, Outcome.REWRITTEN]]);
    expect(rewriteYaml(result.output, judge).output).toBe(result.output);
  });

  test('a template that happens to parse as YAML ({{ }} as a flow map) is read as a template, not as values', () => {
    const input = lines('image: {{ .Values.image }}', 'sidecar:', '  image: nginx:1.27');
    const result = rewriteYaml(input, judge);
    // line by line, as a template: neither line is a container's, so both are reported
    expect(result.findings.map(f => [f.line, f.outcome])).toEqual([[1, Outcome.LEFT_ALONE], [3, Outcome.LEFT_ALONE]]);
    expect(result.output).toBe(input);
  });
});

describe('only where images live', () => {
  test('Kubernetes: containers of workload kinds and known custom resource fields; nothing else named image', () => {
    const input = [
      lines('apiVersion: v1', 'kind: ConfigMap', 'data:', "  image: 'true'", '  backgroundImage: nginx:1.27'),
      lines('apiVersion: karpenter.k8s.aws/v1', 'kind: EC2NodeClass', 'spec:', '  os:', '    image: ubuntu-22.04-lts'),
      lines('apiVersion: image.toolkit.fluxcd.io/v1beta2', 'kind: ImageRepository', 'spec:', '  image: ghcr.io/org/app'),
      lines('apiVersion: monitoring.coreos.com/v1', 'kind: Prometheus', 'spec:', '  image: quay.io/prometheus/prometheus:v2.54.1'),
      lines('apiVersion: apps/v1', 'kind: Deployment', 'metadata:', '  annotations:', '    image: nginx:1.27', 'spec:', '  template:', '    spec:',
        '      containers:', '        - name: app', '          image: nginx:1.27'),
    ].join('---\n');
    const result = rewrite(input);
    expect(result.findings.map(f => [f.line, f.image, f.outcome])).toEqual([
      [21, 'quay.io/prometheus/prometheus:v2.54.1', Outcome.REWRITTEN],
      [33, 'nginx:1.27', Outcome.REWRITTEN],
    ]);
    const out = result.output.split('\n');
    expect(out[20]).toBe(`  image: ${REGISTRY}/quay/prometheus/prometheus:v2.54.1`);
    expect(out[32]).toBe(`          image: ${REGISTRY}/docker-hub/library/nginx:1.27`);
    expect(result.output.replace(out[20], '  image: quay.io/prometheus/prometheus:v2.54.1').replace(out[32], '          image: nginx:1.27')).toBe(input);
  });

  test('containers of a kind the locator does not know are reported, never rewritten on a guess', () => {
    const input = lines('apiVersion: example.com/v1', 'kind: Runner', 'spec:', '  pod:', '    containers:', '      - name: a', '        image: nginx:1.27');
    const result = rewrite(input);
    expect(result.output).toBe(input);
    expect(result.findings).toEqual([expect.objectContaining({ line: 7, outcome: Outcome.LEFT_ALONE, note: expect.stringMatching(/kind Runner \(example\.com\/v1\)/) })]);
  });

  test('an anchor shared by an image and a container name is left alone; one shared only by images is rewritten once', () => {
    const shared = lines('apiVersion: v1', 'kind: Pod', 'spec:', '  containers:', '    - name: &app nginx', '      image: *app');
    const left = rewrite(shared);
    expect(left.output).toBe(shared);
    expect(left.findings).toEqual([expect.objectContaining({ outcome: Outcome.LEFT_ALONE, note: expect.stringMatching(/anchored \(&app\)/) })]);

    const images = lines('apiVersion: v1', 'kind: Pod', 'spec:', '  containers:', '    - name: a', '      image: &img nginx:1.27', '    - name: b', '      image: *img');
    expect(rewrite(images).output).toBe(images.replace('&img nginx:1.27', `&img ${REGISTRY}/docker-hub/library/nginx:1.27`));
  });
});

describe('compose: services that build their own image keep it', () => {
  test.each([
    ['build:', lines('services:', '  app:', '    build: .', '    image: myorg/app:dev')],
    ['build merged in with <<', lines('x-build: &b', '  build: .', 'services:', '  app:', '    <<: *b', '    image: myorg/app:dev')],
    ['extends a service that builds', lines('services:', '  base:', '    build: .', '    image: myorg/base:dev', '  app:', '    extends: base', '    image: myorg/app:dev')],
    ['extends (long form) a service that builds', lines('services:', '  base:', '    build: .', '  app:', '    extends:', '      service: base', '    image: myorg/app:dev')],
  ])('%s: not rewritten, listed as not pulled', (_, input) => {
    const result = rewrite(input);
    expect(result.output).toBe(input);
    expect(result.findings.every(f => f.outcome === Outcome.NOT_PULLED)).toBe(true);
    expect(result.findings.length).toBeGreaterThan(0);
  });

  test('extends of another file is reported (it may build), a plain service is rewritten', () => {
    const input = lines('services:', '  app:', '    extends:', '      file: common.yml', '      service: app', '    image: myorg/app:1', '  db:', '    image: postgres:16');
    const result = rewrite(input);
    expect(result.output).toBe(input.replace('image: postgres:16', `image: ${REGISTRY}/docker-hub/library/postgres:16`));
    expect(result.findings.map(f => [f.line, f.outcome])).toEqual([[6, Outcome.LEFT_ALONE], [8, Outcome.REWRITTEN]]);
  });
});

describe('hostile YAML', () => {
  test('a recursive alias is refused with its name, not a stack overflow', () => {
    const result = rewriteYaml(lines('a: &a', '  b: *a', '  image: nginx:1'), judge);
    expect(result.error).toEqual({ line: 1, reason: 'the alias *a is inside its own anchor (a recursive alias): not processed', template: false });
  });

  test('an alias bomb (a billion laughs) is refused once it expands past the limit', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 7; i++) {
      const name = String.fromCharCode(97 + i);
      const prev = String.fromCharCode(96 + i);
      levels.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(', ')}]`);
    }
    const result = rewriteYaml(lines(...levels, 'image: nginx:1'), judge);
    expect(result.error?.reason).toMatch(/aliases expand the document beyond 200000 maps and lists/);
  });
});

describe('more conventions from real charts (hostile review)', () => {
  test('Istio: global.hub in front of bare image names moves to the cache path; the names stay', () => {
    const input = lines('global:', '  hub: docker.io/istio', '  tag: 1.24.0', '  proxy:', '    image: proxyv2', 'pilot:', '  image: pilot');
    const result = rewrite(input);
    expect(result.output).toBe(input.replace('hub: docker.io/istio', `hub: ${REGISTRY}/docker-hub/istio`));
    expect(result.findings).toEqual([expect.objectContaining({ line: 2, image: 'docker.io/istio/proxyv2', outcome: Outcome.REWRITTEN })]);
  });

  test('a bare image name without a hub is reported: the chart decides what goes around it', () => {
    const input = lines('pilot:', '  image: pilot');
    expect(rewrite(input).findings).toEqual([expect.objectContaining({ outcome: Outcome.LEFT_ALONE, note: expect.stringMatching(/a bare image name/) })]);
  });

  test('Airflow: maps of images by name under images:', () => {
    const input = lines('images:', '  airflow:', '    repository: apache/airflow', '    tag: 2.10.5', '  statsd:', '    repository: quay.io/prometheus/statsd-exporter', '    tag: v0.28.0');
    expect(rewrite(input).output).toBe(input
      .replace('repository: apache/airflow', `repository: ${REGISTRY}/docker-hub/apache/airflow`)
      .replace('repository: quay.io/prometheus/statsd-exporter', `repository: ${REGISTRY}/quay/prometheus/statsd-exporter`));
  });

  test('values with a top-level services: map are values, not a compose file', () => {
    const input = lines('services:', '  api:', '    port: 80', 'controller:', '  image:', '    registry: quay.io', '    repository: org/controller');
    expect(rewrite(input).output).toContain(`registry: ${REGISTRY}`);
  });

  test('CI pipelines are not the cluster\'s: GitHub Actions and GitLab CI images stay, and are not listed', () => {
    for (const input of [
      lines('on: [push]', 'jobs:', '  test:', '    runs-on: ubuntu-latest', '    container:', '      image: node:18'),
      lines('image: ruby:3.2', 'stages: [test]', 'test:', '  stage: test', '  script: [rake]'),
    ]) {
      const result = rewrite(input);
      expect(result.output).toBe(input);
      expect(result.findings).toEqual([]);
    }
  });

  test('maps whose registry or repository is a URL are storage or chart locations, not images', () => {
    const input = lines('backup:', '  repository: s3://bucket/path', '  image: restic/restic:0.16.0', 'chartRepo:', '  registry: oci://ghcr.io', '  repository: charts/app');
    const result = rewrite(input);
    expect(result.output).toBe(input.replace('image: restic/restic:0.16.0', `image: ${REGISTRY}/docker-hub/restic/restic:0.16.0`));
    expect(result.findings.map(f => f.outcome)).toEqual([Outcome.REWRITTEN]);
  });

  test('annotations and labels in values are text, even under a key named image', () => {
    const input = lines('podAnnotations:', '  image: nginx:1', 'commonLabels:', '  image: nginx:1');
    expect(rewrite(input)).toEqual({ output: input, findings: [] });
  });

  test('an image map with only a full name, and no cert-manager registry or namespace, is reported', () => {
    const input = lines('image:', '  name: docker.io/library/nginx', '  tag: "1.27"');
    expect(rewrite(input).findings).toEqual([expect.objectContaining({ outcome: Outcome.LEFT_ALONE })]);
  });

  test('custom resources: known image fields are rewritten, other image-like fields reported, OS image names ignored', () => {
    const docs = [
      lines('apiVersion: sparkoperator.k8s.io/v1beta2', 'kind: SparkApplication', 'spec:', '  image: apache/spark:3.5.3'),
      lines('apiVersion: tekton.dev/v1', 'kind: TaskRun', 'spec:', '  taskSpec:', '    steps:', '      - name: s', '        image: alpine:3.20'),
      lines('apiVersion: argoproj.io/v1alpha1', 'kind: Workflow', 'spec:', '  templates:', '    - name: t', '      containerSet:', '        containers:', '          - name: c', '            image: alpine:3.20'),
      lines('apiVersion: helm.toolkit.fluxcd.io/v2', 'kind: HelmRelease', 'spec:', '  values:', '    image:', '      repository: quay.io/org/app', '      tag: v1'),
      lines('apiVersion: example.com/v1', 'kind: Thing', 'spec:', '  runnerImage: ghcr.io/org/runner:2', '  os:', '    image: ubuntu-22.04-lts'),
    ];
    const result = rewrite(docs.join('---\n'));
    expect(result.findings.map(f => [f.image, f.outcome])).toEqual([
      ['apache/spark:3.5.3', Outcome.REWRITTEN],
      ['alpine:3.20', Outcome.REWRITTEN],
      ['alpine:3.20', Outcome.REWRITTEN],
      ['quay.io/org/app:v1', Outcome.REWRITTEN],
      ['ghcr.io/org/runner:2', Outcome.LEFT_ALONE],
    ]);
    expect(result.output).toContain('image: ubuntu-22.04-lts');
  });
});

describe('chart templates, line by line: only container images', () => {
  test('literal images of containers are rewritten; other kinds, block scalars and templated values are not', () => {
    const input = lines(
      '{{- if .Values.enabled }}',
      'apiVersion: image.toolkit.fluxcd.io/v1beta2',
      'kind: ImageRepository',
      'spec:',
      '  image: ghcr.io/org/app',
      '---',
      'apiVersion: v1',
      'kind: ConfigMap',
      'data:',
      '  pod.yaml: |',
      '    image: nginx:1.27',
      '---',
      'apiVersion: apps/v1',
      'kind: Deployment',
      'spec:',
      '  template:',
      '    spec:',
      '      initContainers:',
      '      - name: init',
      '        # waits',
      '        image: busybox:1.36',
      '      containers:',
      '        - image: "quay.io/org/app:1"',
      '          name: {{ .Chart.Name }}',
      '        - name: side',
      '          {{- with .Values.x }}',
      '          image: {{ . }}',
      '          {{- end }}',
      '{{- end }}',
    );
    const result = rewriteYaml(input, judge);
    expect(result.findings.map(f => [f.line, f.outcome])).toEqual([
      [5, Outcome.LEFT_ALONE], [21, Outcome.REWRITTEN], [23, Outcome.REWRITTEN], [27, Outcome.LEFT_ALONE],
    ]);
    expect(result.findings[0].note).toBe('an image line of a Helm template that is not a container of a pod spec');
    expect(result.output).toBe(input
      .replace('image: busybox:1.36', `image: ${REGISTRY}/docker-hub/library/busybox:1.36`)
      .replace('image: "quay.io/org/app:1"', `image: "${REGISTRY}/quay/org/app:1"`));
    expect(rewriteYaml(result.output, judge).output).toBe(result.output);
  });
});

describe('compose extension fields and override files', () => {
  test('an image in an x- extension merged into services is rewritten once, as every use is an image', () => {
    const input = lines('x-app: &app', '  image: ghcr.io/org/app:1.2', '  restart: always', 'services:', '  web:', '    <<: *app', '  worker:', '    <<: *app', '    command: work');
    const result = rewrite(input);
    expect(result.output).toBe(input.replace('image: ghcr.io/org/app:1.2', `image: ${REGISTRY}/ghcr/org/app:1.2`));
  });

  test('...but not when one of the services builds it', () => {
    const input = lines('x-app: &app', '  image: ghcr.io/org/app:1.2', 'services:', '  web:', '    <<: *app', '  dev:', '    <<: *app', '    build: .');
    const result = rewrite(input);
    expect(result.output).toBe(input);
    expect(result.findings.map(f => f.outcome).sort()).toEqual([Outcome.LEFT_ALONE, Outcome.NOT_PULLED]);
  });

  test('a Bitnami override file without a registry key is rewritten with a caution to set registry: ""', () => {
    const result = rewrite(lines('image:', '  repository: bitnami/nginx', '  tag: "1.27"'));
    expect(result.findings).toEqual([expect.objectContaining({
      outcome: Outcome.REWRITTEN,
      note: 'the map has no registry: if the chart has a default one (Bitnami: docker.io), set registry: "" beside it',
    }), expect.objectContaining({ outcome: Outcome.COMPANION_SET })]);
  });
});

test('a duplicate key is refused with its line: kubectl, Helm and compose reject it, and which one wins is unclear', () => {
  const result = rewriteYaml(lines('apiVersion: v1', 'kind: Pod', 'spec:', '  containers:', '    - name: a', '      image: nginx:1', '      image: redis:7'), judge);
  expect(result.error).toEqual({ line: 7, reason: 'Map keys must be unique', template: false });
});

/**
 * The chart survey's defects (docs/HELM-CONVENTIONS.md, "Survey of the most-installed charts"): images that were
 * moved wrongly, or neither moved nor listed, so `check` passed a tree that still pulls from its upstream.
 */
describe('no image passes check unseen (issue 20, chart survey)', () => {
  test('kyverno: an empty registry beside defaultRegistry is not Docker Hub; the map is left whole and listed', () => {
    // kyverno/kyverno@111e07bbecc6:charts/kyverno/values.yaml line 1319; the template uses defaultRegistry when registry is empty
    const input = lines('admissionController:', '  container:', '    image:', '      registry: ~', '      defaultRegistry: reg.kyverno.io',
      '      repository: kyverno/kyverno', '      tag: ~');
    const result = rewrite(input);
    expect(result.output).toBe(input);
    expect(result.findings).toEqual([expect.objectContaining({
      line: 4,
      outcome: Outcome.LEFT_ALONE,
      note: expect.stringMatching(/registry is empty and defaultRegistry 'reg\.kyverno\.io'.*set registry/),
    })]);
  });

  test('a sibling registry key that differs from the map\'s own registry is left whole; one that agrees does not hold the map', () => {
    const differs = lines('image:', '  registry: docker.io', '  mirrorRegistry: quay.io', '  repository: kyverno/kyverno', '  tag: v1');
    expect(rewrite(differs).output).toBe(differs);
    expect(rewrite(differs).findings).toEqual([expect.objectContaining({ outcome: Outcome.LEFT_ALONE, note: expect.stringMatching(/mirrorRegistry 'quay\.io'/) })]);
    // a key named like a registry is one even when its value has no dot; a value that is a host is one whatever the key
    const hostValue = lines('image:', '  registry: ""', '  fallback: registry.example.com', '  repository: org/app', '  tag: v1');
    expect(rewrite(hostValue).findings).toEqual([expect.objectContaining({ outcome: Outcome.LEFT_ALONE, note: expect.stringMatching(/fallback 'registry\.example\.com'/) })]);
    // a version that looks like a dotted name is not a host
    expect(rewrite(lines('image:', '  repository: org/app', '  release: v3.24.0')).findings)
      .toEqual([expect.objectContaining({ outcome: Outcome.REWRITTEN })]);
    const agrees = rewrite(lines('image:', '  registry: quay.io', '  defaultRegistry: quay.io', '  repository: org/app', '  tag: v1'));
    expect(agrees.output).toContain('repository: quay/org/app');
  });

  test('traefik: an image map with every field empty is listed, as the chart\'s default image applies', () => {
    // traefik/traefik-helm-chart@a8a66d009870:traefik/values.yaml line 5; the template fills in docker.io/traefik
    const input = lines('image:', '  registry:', '  repository:', '  tag:', '  pullPolicy: IfNotPresent');
    const result = rewrite(input);
    expect(result.output).toBe(input);
    expect(result.findings).toEqual([expect.objectContaining({
      line: 2,
      outcome: Outcome.LEFT_ALONE,
      note: expect.stringMatching(/the chart's default image applies; set repository \(and registry\) to move it/),
    })]);
    // an empty string is as empty as null
    expect(rewrite(lines('image:', '  repository: ""', '  tag: ""')).findings).toEqual([expect.objectContaining({ outcome: Outcome.LEFT_ALONE })]);
    // grafana's "null = inherit" (tempo-distributed: `ingester.image` overrides `tempo.image`) names no image of its own:
    // the map it probably inherits moves, and the empty one is still listed (only the chart's template knows; fail closed)
    expect(rewrite(lines('tempo:', '  image:', '    repository: grafana/tempo', 'ingester:', '  image:', '    registry: null', '    repository: null')).findings)
      .toEqual([expect.objectContaining({ line: 3, outcome: Outcome.REWRITTEN }),
        expect.objectContaining({ line: 6, outcome: Outcome.LEFT_ALONE, note: expect.stringMatching(/perhaps from tempo\.image/) })]);
    // ...while a nested empty map that nothing else names is the chart's default, listed
    expect(rewrite(lines('controller:', '  image:', '    repository: null')).findings).toEqual([expect.objectContaining({ line: 3, outcome: Outcome.LEFT_ALONE })]);
  });

  test('gatekeeper: a second repository key of an image map moves with its repository, or is listed', () => {
    // open-policy-agent/gatekeeper@dd8507eb97f5:charts/gatekeeper/values.yaml line 91
    const input = lines('image:', '  repository: openpolicyagent/gatekeeper', '  crdRepository: openpolicyagent/gatekeeper-crds', '  release: v3.24.0');
    const result = rewrite(input);
    expect(result.output).toBe(lines('image:', `  repository: ${REGISTRY}/docker-hub/openpolicyagent/gatekeeper`,
      `  crdRepository: ${REGISTRY}/docker-hub/openpolicyagent/gatekeeper-crds`, '  release: v3.24.0'));
    expect(result.findings.map(f => [f.line, f.outcome])).toEqual([[2, Outcome.REWRITTEN], [3, Outcome.REWRITTEN]]);
    // with the map's own registry, both move under it
    expect(rewrite(lines('image:', '  registry: quay.io', '  repository: a/b', '  initRepository: a/c', '  tag: v1')).output)
      .toBe(lines('image:', `  registry: ${REGISTRY}`, '  repository: quay/a/b', '  initRepository: quay/a/c', '  tag: v1'));
    // a second repository that cannot move holds a map whose registry would change, and both are listed
    const held = lines('image:', '  registry: quay.io', '  repository: a/b', '  crdRepository: nvcr.io/a/c', '  tag: v1');
    expect(rewrite(held).output).toBe(held);
    expect(rewrite(held).findings.map(f => f.outcome)).toEqual([Outcome.LEFT_ALONE, Outcome.LEFT_ALONE]);
  });

  test('consul: keys that start or end with image holding a whole reference with a tag or digest are image strings', () => {
    // hashicorp/consul-k8s@28aeb05b7bbe (v1.8.16):charts/consul/values.yaml lines 90 and 797
    const input = lines('global:', '  image: hashicorp/consul:1.22.0', '  imageK8S: hashicorp/consul-k8s-control-plane:1.8.0',
      '  imageConsulDataplane: hashicorp/consul-dataplane:1.8.0', '  IMAGE_TAG_POLICY: semver', '  imagePullPolicy: IfNotPresent');
    const result = rewrite(input);
    expect(result.output).toBe(lines('global:', `  image: ${REGISTRY}/docker-hub/hashicorp/consul:1.22.0`,
      `  imageK8S: ${REGISTRY}/docker-hub/hashicorp/consul-k8s-control-plane:1.8.0`,
      `  imageConsulDataplane: ${REGISTRY}/docker-hub/hashicorp/consul-dataplane:1.8.0`, '  IMAGE_TAG_POLICY: semver', '  imagePullPolicy: IfNotPresent'));
    expect(result.findings.map(f => f.outcome)).toEqual([Outcome.REWRITTEN, Outcome.REWRITTEN, Outcome.REWRITTEN]);
  });
});
