/**
 * Strimzi's Helm convention (helm-images.ts `readStrimziMap`): `defaultImageRegistry` + `defaultImageRepository`
 * in front of every map's `name`, unless the map has its own. Hand-made in the shape of
 * strimzi/strimzi-kafka-operator helm-charts/helm3/strimzi-kafka-operator/values.yaml.
 */
import { Judge } from '../src/cli/judge';
import { rewriteYaml } from '../src/cli/rewrite';
import { ImageMapping } from '../src/image-mapping';

const REGISTRY = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
const onCache = (image: string) => image.startsWith(`${REGISTRY}/`);
const rewriting: Judge = { mapping: new ImageMapping({ registryUri: REGISTRY }), cacheStatus: onCache };
const checking: Judge = { cacheStatus: onCache };

const VALUES = `defaultImageRegistry: quay.io
defaultImageRepository: strimzi
defaultImageTag: 0.45.0

image:
  registry: ""
  repository: ""
  name: operator
  tag: ""
kafka:
  image:
    registry: ""
    repository: ""
    name: kafka
    tagPrefix: ""
kafkaBridge:
  image:
    registry:
    repository:
    name: kafka-bridge
    tag: 0.31.1
`;

describe("Strimzi's Helm values", () => {
  test('every map moves by the two defaults; the names, tags and per-map fields stay; check then passes', () => {
    const result = rewriteYaml(VALUES, rewriting);
    expect(result.output).toBe(VALUES
      .replace('defaultImageRegistry: quay.io', `defaultImageRegistry: ${REGISTRY}`)
      .replace('defaultImageRepository: strimzi', 'defaultImageRepository: quay/strimzi'));
    expect(result.findings.map(f => `${f.line} ${f.outcome} ${f.image}`)).toEqual([
      '6 rewritten quay.io/strimzi/operator',
      '12 rewritten quay.io/strimzi/kafka',
      '18 rewritten quay.io/strimzi/kafka-bridge:0.31.1',
    ]);
    expect(rewriteYaml(result.output, checking).findings.map(f => f.outcome)).toEqual(['cached', 'cached', 'cached']);
    expect(rewriteYaml(VALUES, checking).findings.map(f => f.outcome)).toEqual(['unserved', 'unserved', 'unserved']);
  });

  test('a map with its own registry but the default repository holds the defaults: nothing moves, each map is reported', () => {
    const values = VALUES.replace('    registry: ""\n    repository: ""\n    name: kafka', '    registry: "registry.example.com"\n    repository: ""\n    name: kafka');
    const result = rewriteYaml(values, rewriting);
    expect(result.output).toBe(values);
    expect(result.findings.map(f => `${f.line} ${f.outcome}`)).toEqual(['6 left-alone', '12 left-alone', '18 left-alone']);
    expect(result.findings[1].note).toMatch(/'name: kafka' with a registry or repository of its own beside defaultImageRegistry and defaultImageRepository/);
    expect(result.findings[0].note).toMatch(/another image under defaultImageRepository cannot be rewritten/);
  });

  test('a chart without the defaults is not read by this convention', () => {
    const values = 'image:\n  registry: ""\n  repository: ""\n  name: operator\n';
    expect(rewriteYaml(values, rewriting).findings.map(f => f.note)).toEqual([
      expect.stringMatching(/'name: operator' without cert-manager's imageRegistry or imageNamespace/),
    ]);
  });
});
