/**
 * kustomize `images:` entries (src/private/kustomize-images.ts): moved by their newName, set or added, and
 * checked. The files are hand-made in the shapes of real ones, so CI tests each without the real-world fixtures.
 */
import * as fs from 'fs';
import { join } from 'path';
import { runCli } from './support/cli';
import { testDir } from './util';
import { EXIT_FINDINGS, EXIT_OK } from '../src/cli/main';

const REGISTRY = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';

const cli = runCli;

interface JsonFinding { line: number; image: string; outcome: string; uri?: string; note?: string }

function write(name: string, text: string): string {
  const path = join(testDir('kustomize-'), name);
  fs.writeFileSync(path, text);
  return path;
}

function rewrite(path: string): JsonFinding[] {
  const result = cli(['rewrite', path, '--registry', REGISTRY, '--json']);
  return (JSON.parse(result.out) as { files: Array<{ findings: JsonFinding[] }> }).files[0].findings;
}

// the shape of fluxcd/flux2 manifests/install/kustomization.yaml
const FLUX_INSTALL = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: flux-system
resources:
  - namespace.yaml
  - ../bases/source-controller
images:
  - name: fluxcd/source-controller
    newName: ghcr.io/fluxcd/source-controller
  - name: fluxcd/kustomize-controller
    newName: "ghcr.io/fluxcd/kustomize-controller" # pinned by the release
    newTag: v1.4.0
`;

// a user's overlay without apiVersion and kind: only tags and digests overridden
const OVERLAY = `resources:
  - ../base
images:
  - name: nginx
    newTag: 1.27.2
  - name: quay.io/prometheus/node-exporter
    digest: sha256:${'b'.repeat(64)}
  - name: registry.example.com/team/app
    newTag: v3
  - {name: redis, newTag: "7.4"}
`;

describe('kustomize images: entries', () => {
  test("Flux's install kustomization: each newName moves to the cache, name and newTag stay, a second run is a no-op", () => {
    const path = write('kustomization.yaml', FLUX_INSTALL);
    const findings = rewrite(path);
    expect(fs.readFileSync(path, 'utf-8')).toBe(FLUX_INSTALL
      .replace('newName: ghcr.io/fluxcd/source-controller', `newName: ${REGISTRY}/ghcr/fluxcd/source-controller`)
      .replace('newName: "ghcr.io/fluxcd/kustomize-controller"', `newName: "${REGISTRY}/ghcr/fluxcd/kustomize-controller"`));
    expect(findings.map(f => `${f.line} ${f.outcome} ${f.image} -> ${f.uri}`)).toEqual([
      `8 rewritten ghcr.io/fluxcd/source-controller -> ${REGISTRY}/ghcr/fluxcd/source-controller`,
      `10 rewritten ghcr.io/fluxcd/kustomize-controller:v1.4.0 -> ${REGISTRY}/ghcr/fluxcd/kustomize-controller:v1.4.0`,
    ]);
    expect(rewrite(path).map(f => f.outcome)).toEqual(['cached', 'cached']);
    expect(cli(['check', path, '--registry', REGISTRY]).code).toBe(EXIT_OK);
  });

  test('check reports an entry that still pulls from upstream, with where it is', () => {
    const path = write('kustomization.yaml', FLUX_INSTALL);
    const result = cli(['check', path, '--registry', REGISTRY]);
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(result.out).toContain(`${path}:8: ghcr.io/fluxcd/source-controller: not served from the cache`);
    expect(result.out).toContain(`${path}:10: ghcr.io/fluxcd/kustomize-controller:v1.4.0: not served from the cache`);
  });

  test('an overlay without kind: newName is added where only a tag or digest is overridden; a flow entry and an unserved host are reported', () => {
    const path = write('kustomization.yaml', OVERLAY);
    const findings = rewrite(path);
    expect(fs.readFileSync(path, 'utf-8')).toBe(`resources:
  - ../base
images:
  - name: nginx
    newTag: 1.27.2
    newName: ${REGISTRY}/docker-hub/library/nginx
  - name: quay.io/prometheus/node-exporter
    digest: sha256:${'b'.repeat(64)}
    newName: ${REGISTRY}/quay/prometheus/node-exporter
  - name: registry.example.com/team/app
    newTag: v3
  - {name: redis, newTag: "7.4"}
`);
    expect(findings.map(f => `${f.line} ${f.outcome} ${f.image}`)).toEqual([
      '4 rewritten nginx:1.27.2',
      `6 rewritten quay.io/prometheus/node-exporter@sha256:${'b'.repeat(64)}`,
      '8 unserved registry.example.com/team/app:v3',
      '10 left-alone redis:7.4',
    ]);
    expect(findings[3].note).toBe(`the kustomize image entry has no newName and one cannot be added (a flow map ({ })): add newName: ${REGISTRY}/docker-hub/library/redis`);

    // the second run: the added newNames are cached, nothing else changes
    const before = fs.readFileSync(path, 'utf-8');
    expect(rewrite(path).map(f => f.outcome)).toEqual(['cached', 'cached', 'unserved', 'left-alone']);
    expect(fs.readFileSync(path, 'utf-8')).toBe(before);
    expect(cli(['check', path, '--registry', REGISTRY]).code).toBe(EXIT_FINDINGS);
  });

  test('CRLF files get the added line in CRLF', () => {
    const path = write('kustomization.yaml', 'images:\r\n- name: nginx\r\n  newTag: "1.27"\r\nresources: [a.yaml]\r\n');
    rewrite(path);
    expect(fs.readFileSync(path, 'utf-8')).toBe(`images:\r\n- name: nginx\r\n  newTag: "1.27"\r\n  newName: ${REGISTRY}/docker-hub/library/nginx\r\nresources: [a.yaml]\r\n`);
  });

  test('a values file with an images list that is not kustomize is not read as a kustomization', () => {
    const path = write('values.yaml', 'images:\n  - name: nginx\n    newTag: "1.27"\nreplicaCount: 2\n');
    expect(rewrite(path)).toEqual([]);
  });
});
