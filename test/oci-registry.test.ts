import * as http from 'http';
import { OciRegistry, digestOf, pushImage, startRegistry } from './support/oci-registry';

/** The loopback registry the copy mirror and node mirror tests run on: it stores, serves, logs and enforces auth. */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; challenge?: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, res => {
      const chunks: Buffer[] = [];
      res.on('data', c => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), challenge: res.headers['www-authenticate'] as string | undefined }));
    }).on('error', reject);
  });
}

describe('loopback OCI registry', () => {
  let registry: OciRegistry;
  afterEach(async () => registry?.stop());

  test('with basic auth: refuses anonymous requests, serves a pushed image by tag with its digest, and logs each request', async () => {
    registry = await startRegistry({ basicAuth: true });
    expect(registry.host).toMatch(/^127\.0\.0\.1:\d+$/);
    const anonymous = await get(`${registry.url}/v2/`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.challenge).toMatch(/^Basic realm="loopback"/);

    const pushed = await pushImage(registry, 'docker-hub/library/busybox', '1.36', [Buffer.from('layer one'), Buffer.from('layer two')]);
    const manifest = await get(`${registry.url}/v2/docker-hub/library/busybox/manifests/1.36`,
      { Authorization: registry.authorization!, Accept: 'application/vnd.oci.image.manifest.v1+json' });
    expect(manifest.status).toBe(200);
    expect(digestOf(manifest.body)).toBe(pushed.digest);
    expect(JSON.parse(String(manifest.body)).layers.map((l: { digest: string }) => l.digest)).toEqual(pushed.layers);
    // the access log line is written after the response: wait for it (at most 5 s)
    for (let i = 0; i < 50 && !registry.requests().includes('GET /v2/docker-hub/library/busybox/manifests/1.36'); i++) {
      await new Promise(r => setTimeout(r, 100));
    }
    expect(registry.requests()).toContain('GET /v2/docker-hub/library/busybox/manifests/1.36');
  });

  test('without auth: answers anonymous requests', async () => {
    registry = await startRegistry();
    expect((await get(`${registry.url}/v2/`)).status).toBe(200);
  });
});
