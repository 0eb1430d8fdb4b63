/**
 * Images held in settings (src/private/setting-images.ts): operator environment variables, ConfigMap data, Helm
 * values named `*_image`, Tekton param defaults. Each file here is hand-made in the shape of a real one (named
 * beside it), so CI tests every shape without the real-world fixtures.
 */
import * as fs from 'fs';
import { join } from 'path';
import { runCli } from './support/cli';
import { testDir } from './util';
import { EXIT_FINDINGS, EXIT_OK } from '../src/cli/main';

const REGISTRY = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';

const cli = runCli;

interface JsonFinding { line: number; image: string; outcome: string; uri?: string; note?: string }

/** Writes `text` as `name` in a fresh folder, rewrites it, and returns the new text and the findings. */
function rewrite(name: string, text: string): { path: string; output: string; findings: JsonFinding[] } {
  const dir = testDir('settings-');
  const path = join(dir, name);
  fs.writeFileSync(path, text);
  const result = cli(['rewrite', path, '--registry', REGISTRY, '--json']);
  const report = JSON.parse(result.out) as { files: Array<{ findings: JsonFinding[] }> };
  return { path, output: fs.readFileSync(path, 'utf-8'), findings: report.files[0].findings };
}

// the shape of strimzi/strimzi-kafka-operator install/cluster-operator/060-Deployment-strimzi-cluster-operator.yaml
const STRIMZI_OPERATOR = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: strimzi-cluster-operator
spec:
  template:
    spec:
      containers:
        - name: strimzi-cluster-operator
          image: quay.io/strimzi/operator:0.45.0
          env:
            - name: STRIMZI_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            - name: STRIMZI_DEFAULT_KAFKA_EXPORTER_IMAGE
              value: quay.io/strimzi/kafka:0.45.0-kafka-3.9.0
            - name: STRIMZI_DEFAULT_CRUISE_CONTROL_IMAGE
              value: "quay.io/strimzi/kafka:0.45.0-kafka-3.9.0"
            - name: STRIMZI_OPERATION_TIMEOUT_MS
              value: "300000"
            - name: SIDECAR_IMAGE
              value: quay.io/example/sidecar:1.2
            - name: STRIMZI_KAFKA_IMAGES
              value: |
                3.9.0=quay.io/strimzi/kafka:0.45.0-kafka-3.9.0
                3.8.1=quay.io/strimzi/kafka:0.45.0-kafka-3.8.1
            - name: STRIMZI_DEFAULT_MAVEN_BUILDER
              value: quay.io/strimzi/maven-builder:0.45.0
`;

// the shape of an operator bundle's manager Deployment that follows the OLM RELATED_IMAGE_* convention
const OLM_OPERATOR = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: example-operator
spec:
  template:
    spec:
      containers:
        - name: manager
          image: ghcr.io/example/operator:v1.0.0
          env:
            - name: RELATED_IMAGE_POSTGRES
              value: 'docker.io/library/postgres:16.4'
            - name: RELATED_IMAGE_EXPORTER
              value: quay.io/prometheuscommunity/postgres-exporter@sha256:${'a'.repeat(64)}
            - name: RELATED_IMAGE_UNSERVED
              value: registry.example.com/tools/agent:2.0
`;

// the shape of zalando/postgres-operator manifests/configmap.yaml
const POSTGRES_OPERATOR_CONFIG = `apiVersion: v1
kind: ConfigMap
metadata:
  name: postgres-operator
data:
  docker_image: ghcr.io/zalando/spilo-16:3.3-p1
  logical_backup_docker_image: "ghcr.io/zalando/postgres-operator/logical-backup:v1.13.0"
  cluster_domain: cluster.local
  pod_role_label: spilo-role
  topology_key: topology.kubernetes.io/zone
`;

// the shape of a Tekton Task whose step image is a param (tektoncd/catalog)
const TEKTON_TASK = `apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: build
spec:
  params:
    - name: builderImage
      default: gcr.io/kaniko-project/executor:v1.23.2
    - name: context
      default: ./
  steps:
    - name: build
      image: $(params.builderImage)
`;

// the shape of the postgres-operator chart's values.yaml: snake_case settings under configGeneral
const HELM_SETTINGS = `configGeneral:
  docker_image: ghcr.io/zalando/spilo-16:3.3-p1
  workers: 8
image:
  registry: ghcr.io
  repository: zalando/postgres-operator
  tag: v1.13.0
`;

describe('images in settings', () => {
  test('a Strimzi operator Deployment: STRIMZI_DEFAULT_*_IMAGE moves to the cache, another variable is reported as a setting', () => {
    const { output, findings } = rewrite('operator.yaml', STRIMZI_OPERATOR);
    expect(output).toBe(STRIMZI_OPERATOR
      .replace('image: quay.io/strimzi/operator:0.45.0', `image: ${REGISTRY}/quay/strimzi/operator:0.45.0`)
      .replace('value: quay.io/strimzi/kafka:0.45.0-kafka-3.9.0', `value: ${REGISTRY}/quay/strimzi/kafka:0.45.0-kafka-3.9.0`)
      .replace('value: "quay.io/strimzi/kafka:0.45.0-kafka-3.9.0"', `value: "${REGISTRY}/quay/strimzi/kafka:0.45.0-kafka-3.9.0"`)
      .replace('value: quay.io/strimzi/maven-builder:0.45.0', `value: ${REGISTRY}/quay/strimzi/maven-builder:0.45.0`));
    expect(findings.map(f => `${f.line} ${f.outcome} ${f.image}`)).toEqual([
      '10 rewritten quay.io/strimzi/operator:0.45.0',
      '17 rewritten quay.io/strimzi/kafka:0.45.0-kafka-3.9.0',
      '19 rewritten quay.io/strimzi/kafka:0.45.0-kafka-3.9.0',
      '23 setting quay.io/example/sidecar:1.2',
      // a block of <version>=<image> pairs (documented by Strimzi) cannot be edited in place: each image is reported
      '25 setting quay.io/strimzi/kafka:0.45.0-kafka-3.9.0',
      '25 setting quay.io/strimzi/kafka:0.45.0-kafka-3.8.1',
      '29 rewritten quay.io/strimzi/maven-builder:0.45.0',
    ]);
    expect(findings[3].note).toMatch(/^an image in a setting \(the environment variable SIDECAR_IMAGE\): .*pass --allow-settings/);
    expect(findings[4].note).toMatch(/^an image in a setting \(the environment variable STRIMZI_KAFKA_IMAGES, one of several references in its value\)/);
  });

  test('an OLM operator: every RELATED_IMAGE_* is rewritten or reported as not served', () => {
    const { output, findings } = rewrite('manager.yaml', OLM_OPERATOR);
    expect(output).toContain(`value: '${REGISTRY}/docker-hub/library/postgres:16.4'`);
    expect(output).toContain(`value: ${REGISTRY}/quay/prometheuscommunity/postgres-exporter@sha256:${'a'.repeat(64)}`);
    expect(findings.map(f => `${f.line} ${f.outcome}`)).toEqual(['10 rewritten', '13 rewritten', '15 rewritten', '17 unserved']);
  });

  test('a ConfigMap of operator settings: each whole reference is reported, a label key is not', () => {
    const { output, findings } = rewrite('configmap.yaml', POSTGRES_OPERATOR_CONFIG);
    expect(output).toBe(POSTGRES_OPERATOR_CONFIG);
    expect(findings.map(f => `${f.line} ${f.outcome} ${f.image}`)).toEqual([
      '6 setting ghcr.io/zalando/spilo-16:3.3-p1',
      '7 setting ghcr.io/zalando/postgres-operator/logical-backup:v1.13.0',
    ]);
    expect(findings[0].note).toMatch(/^an image in a setting \(data\.docker_image\)/);
  });

  test('a Tekton param default is rewritten when a step takes it as its image, else reported; a Helm value named *_image is reported', () => {
    const task = rewrite('task.yaml', TEKTON_TASK);
    expect(task.findings.map(f => `${f.line} ${f.outcome} ${f.image}`)).toEqual([
      // gcr.io is no ECR upstream: not served, and said so
      '8 unserved gcr.io/kaniko-project/executor:v1.23.2',
      '13 left-alone $(params.builderImage)',
    ]);
    const served = rewrite('task.yaml', TEKTON_TASK.replace(/gcr\.io\/kaniko-project/g, 'quay.io/kaniko-project'));
    expect(served.output).toContain(`default: ${REGISTRY}/quay/kaniko-project/executor:v1.23.2`);
    const unused = rewrite('task.yaml', TEKTON_TASK.replace('image: $(params.builderImage)', 'image: alpine:3.20'));
    expect(unused.findings.map(f => `${f.line} ${f.outcome} ${f.image}`)).toEqual([
      '8 setting gcr.io/kaniko-project/executor:v1.23.2',
      '13 rewritten alpine:3.20',
    ]);
    const helm = rewrite('values.yaml', HELM_SETTINGS);
    expect(helm.findings.map(f => `${f.line} ${f.outcome} ${f.image}`)).toEqual([
      '2 setting ghcr.io/zalando/spilo-16:3.3-p1',
      '5 rewritten ghcr.io/zalando/postgres-operator:v1.13.0',
    ]);
  });

  test('check fails on an image in a setting, says how to accept it, and passes with --allow-settings once the rest is cached', () => {
    const { path } = rewrite('configmap.yaml', POSTGRES_OPERATOR_CONFIG);
    const strict = cli(['check', path, '--registry', REGISTRY]);
    expect(strict.code).toBe(EXIT_FINDINGS);
    expect(strict.out).toContain(`${path}:6: ghcr.io/zalando/spilo-16:3.3-p1: an image in a setting (data.docker_image): `);
    expect(strict.out).toMatch(/2 images in settings/);
    expect(strict.err).toMatch(/2 images in settings \(listed above\) may be pulled from outside the cache; point them at the cache, or pass --allow-settings/);

    const allowed = cli(['check', path, '--registry', REGISTRY, '--allow-settings']);
    expect(allowed.code).toBe(EXIT_OK);
    expect(allowed.out).toContain(`${path}:6: ghcr.io/zalando/spilo-16:3.3-p1: an image in a setting`);

    // a setting already on the cache is cached, not reported
    fs.writeFileSync(path, POSTGRES_OPERATOR_CONFIG.replace(/ghcr\.io\//g, `${REGISTRY}/ghcr/`));
    expect(cli(['check', path, '--registry', REGISTRY]).code).toBe(EXIT_OK);
  });
});
