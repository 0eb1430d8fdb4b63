/**
 * What the copy reads in a manifest: its schema, its descriptors (each with a sha256 digest and a size) and which of
 * its blobs are to be copied.
 *
 * Pure Node.js: no AWS SDK, no aws-cdk-lib.
 */
import { CopyError, FailureReason } from './copy-outcome';
import { Manifest } from './oci-client';

export interface Descriptor {
  readonly mediaType?: string;
  readonly digest: string;
  readonly size: number;
  readonly urls?: string[];
}

/**
 * Layers that are not distributable (Windows base layers): their bytes stay with their URLs. Only the media type
 * says so (`application/vnd.docker.image.rootfs.foreign.diff.tar.gzip`, the OCI `...nondistributable...` types):
 * `urls` on a distributable layer are only alternative places to fetch it (OCI image-spec descriptor.md), and a
 * registry such as ECR refuses a manifest whose distributable layer it does not hold (MANIFEST_BLOB_UNKNOWN).
 */
function isForeign(d: Descriptor): boolean {
  return /foreign|nondistributable/.test(d.mediaType ?? '');
}

export function parseManifest(manifest: Manifest, what: string): any {
  const json = JSON.parse(manifest.body.toString('utf-8'));
  if (json.schemaVersion !== 2) {
    throw new CopyError(`${what}: schema version ${json.schemaVersion} (Docker schema 1 images cannot be copied with their digest)`,
      FailureReason.UNSUPPORTED_MANIFEST, false);
  }
  return json;
}

/** The config and the distributable layers of an image manifest. */
export function blobsOf(manifest: Manifest, from: string): Descriptor[] {
  const json = parseManifest(manifest, `${from}@${manifest.digest}`);
  return [json.config, ...(json.layers ?? [])].map(d => checkDescriptor(d, `${from}@${manifest.digest}`)).filter(d => !isForeign(d));
}

export function checkDescriptor(d: any, what: string): Descriptor {
  if (typeof d?.digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(d.digest) || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new CopyError(`${what}: a descriptor has no valid sha256 digest and size`, FailureReason.UNSUPPORTED_MANIFEST, false);
  }
  return d;
}
