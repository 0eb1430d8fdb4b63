import { createHash } from 'crypto';
import { CreateRepositoryCommand, ECRClient, PutImageCommand, RepositoryAlreadyExistsException } from '@aws-sdk/client-ecr';

const sha = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

/** Put an image (a manifest with one unique layer) into a repository of the ECR API at `endpoint`; returns its digest. */
export async function putImage(client: ECRClient, repositoryName: string, tag: string): Promise<string> {
  try {
    await client.send(new CreateRepositoryCommand({ repositoryName }));
  } catch (error) {
    if (!(error instanceof RepositoryAlreadyExistsException)) {
      throw error;
    }
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: 1469, digest: sha(`config ${repositoryName}:${tag}`) },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: 3370628, digest: sha(`layer ${repositoryName}:${tag}`) }],
  });
  const response = await client.send(new PutImageCommand({ repositoryName, imageTag: tag, imageManifest: manifest }));
  return response.image!.imageId!.imageDigest!;
}
