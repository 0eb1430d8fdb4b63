/**
 * The image an ECR or Inspector event names, checked once for every scanning handler: a repository name and a
 * digest as ECR writes them (the API's `RepositoryName` and `ImageDigest` patterns). Pure: no SDK, no aws-cdk-lib.
 */
import { CloudEvent } from '../private/handlers/envelope';

const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const REPOSITORY = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

export interface EventImage {
  readonly repositoryName: string;
  readonly imageDigest: string;
}

/**
 * `repositoryName` and `imageDigest` of an event, or an error naming the event and the field (`fields` says where
 * the event keeps them: `detail.repository-name` for ECR, `awsEcrContainerImage.repositoryName` for Inspector).
 */
export function eventImage(event: CloudEvent, repositoryName: unknown, imageDigest: unknown,
  fields: { readonly repository: string; readonly digest: string } = { repository: 'detail.repository-name', digest: 'detail.image-digest' }): EventImage {
  if (typeof repositoryName !== 'string' || !REPOSITORY.test(repositoryName)) {
    throw new Error(`event ${event.id ?? ''} has no valid ${fields.repository}`);
  }
  if (typeof imageDigest !== 'string' || !DIGEST.test(imageDigest)) {
    throw new Error(`event ${event.id ?? ''} has no valid ${fields.digest}`);
  }
  return { repositoryName, imageDigest };
}
