import { Arn, ArnFormat, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, IConstruct } from 'constructs';
import { acknowledgeFinding } from './private/acknowledge';
import { LogicalIdKind, followKey } from './private/logical-ids';

/** The name every pull through cache secret must start with (the ECR service role can read only these). */
const SECRET_NAME_PREFIX = 'ecr-pullthroughcache/';

/** What credentials resolve to when a rule is built. */
export interface UpstreamCredentialsConfig {
  /** The secret holding `{"username": "...", "accessToken": "..."}`; its full ARN goes into the rule. */
  readonly secret: secretsmanager.ISecret;
}

/** Options for `UpstreamCredentials.createSecret`. */
export interface CreateUpstreamSecretOptions {
  /**
   * The secret's name. Must start with `ecr-pullthroughcache/`.
   * @default - `ecr-pullthroughcache/<ecr repository prefix>`
   */
  readonly secretName?: string;

  /**
   * What happens to the secret when it leaves the stack (`cdk destroy`, or a deploy that stops using it). It holds a
   * token entered by hand, so it is kept, as `ecr.Repository` keeps its images: a later deploy that creates a secret
   * of the same name then fails until you delete the kept one or import it with `fromSecret`. `RemovalPolicy.DESTROY`
   * deletes it with the stack, at once: CloudFormation deletes a secret with no recovery window.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The credentials ECR uses to pull from an upstream that needs authentication.
 *
 * ECR reads them from a Secrets Manager secret in the same account and Region, named
 * `ecr-pullthroughcache/...`, encrypted with the default `aws/secretsmanager` key and holding
 * `{"username": "...", "accessToken": "..."}`.
 */
export abstract class UpstreamCredentials {
  /**
   * Use an existing secret.
   *
   * The secret must be referenced by its full ARN (`Secret.fromSecretCompleteArn`, or a secret defined in
   * this app), be named `ecr-pullthroughcache/...` and use the default `aws/secretsmanager` key.
   */
  public static fromSecret(secret: secretsmanager.ISecret): UpstreamCredentials {
    return new ExistingSecretCredentials(secret);
  }

  /**
   * Create an empty, correctly named secret for the upstream.
   *
   * No credential ever appears in the template: the secret is created with the right JSON keys and a
   * random placeholder token. Fill it after the first deploy:
   * `aws secretsmanager put-secret-value --secret-id ecr-pullthroughcache/<prefix> --secret-string '{"username":"...","accessToken":"..."}'`.
   */
  public static createSecret(options: CreateUpstreamSecretOptions = {}): UpstreamCredentials {
    return new CreatedSecretCredentials(options);
  }

  /**
   * Resolve the credentials for the rule with the given cache prefix.
   *
   * @param scope the construct to create resources under
   * @param ecrRepositoryPrefix the cache prefix of the rule these credentials are for
   */
  public abstract bind(scope: Construct, ecrRepositoryPrefix: string): UpstreamCredentialsConfig;
}

class ExistingSecretCredentials extends UpstreamCredentials {
  constructor(private readonly secret: secretsmanager.ISecret) {
    super();
  }

  public bind(scope: Construct, ecrRepositoryPrefix: string): UpstreamCredentialsConfig {
    const where = `the credentials of the '${ecrRepositoryPrefix}' pull through cache rule`;
    if (this.secret.secretFullArn === undefined) {
      throw new Error(`${where}: secret '${this.secret.secretName}' was imported by name, so its full ARN is unknown; `
        + 'ECR needs the full ARN (with its 6-character suffix). Import it with '
        + 'Secret.fromSecretCompleteArn(scope, id, arn) or Secret.fromSecretAttributes(scope, id, { secretCompleteArn }).');
    }
    if (this.secret.encryptionKey !== undefined) {
      throw new Error(`${where}: the secret is encrypted with a customer managed KMS key, which ECR cannot use. `
        + 'Create the secret with the default aws/secretsmanager key (omit encryptionKey).');
    }
    const name = secretNameOf(this.secret);
    if (name === null) {
      throw new Error(`${where}: the secret has a generated name, but ECR reads only secrets named '${SECRET_NAME_PREFIX}...'. `
        + `Give it a name: new Secret(this, 'Id', { secretName: '${SECRET_NAME_PREFIX}${ecrRepositoryPrefix}' }).`);
    }
    if (name !== undefined && !name.startsWith(SECRET_NAME_PREFIX)) {
      throw new Error(`${where}: the secret is named '${name}', but ECR reads only secrets named '${SECRET_NAME_PREFIX}...'. `
        + `Create or rename it to '${SECRET_NAME_PREFIX}${name.replace(/^\/+/, '')}'.`);
    }
    checkSameEnvironment(scope, this.secret, where);
    return { secret: this.secret };
  }
}

/** The secrets `createSecret` made, with their names: one name can exist once per account and Region. */
const createdSecrets = new WeakMap<IConstruct, string>();

/**
 * The name of the secret `construct` is, when `UpstreamCredentials.createSecret` created it (undefined for any other
 * construct). The app-level checks ask this to find two created secrets of one name.
 */
export function createdSecretName(construct: IConstruct): string | undefined {
  return createdSecrets.get(construct);
}

class CreatedSecretCredentials extends UpstreamCredentials {
  constructor(private readonly options: CreateUpstreamSecretOptions) {
    super();
  }

  public bind(scope: Construct, ecrRepositoryPrefix: string): UpstreamCredentialsConfig {
    const secretName = this.options.secretName ?? `${SECRET_NAME_PREFIX}${ecrRepositoryPrefix}`;
    if (!Token.isUnresolved(secretName) && !secretName.startsWith(SECRET_NAME_PREFIX)) {
      throw new Error(`the credentials of the '${ecrRepositoryPrefix}' pull through cache rule: secretName '${secretName}' `
        + `must start with '${SECRET_NAME_PREFIX}', the only secrets ECR can read. Use '${SECRET_NAME_PREFIX}${secretName.replace(/^\/+/, '')}'.`);
    }
    const secret = new secretsmanager.Secret(scope, 'Credentials', {
      secretName,
      description: `Upstream registry credentials for the ECR pull through cache rule '${ecrRepositoryPrefix}'. `
        + 'Set {"username": "...", "accessToken": "..."} with put-secret-value; the generated accessToken is a placeholder.',
      // The JSON keys ECR expects, with a generated placeholder: no credential is ever written to the template.
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ username: 'REPLACE_ME' }),
        generateStringKey: 'accessToken',
        excludePunctuation: true,
        passwordLength: 32,
      },
      removalPolicy: this.options.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    // the logical id follows the secret's name (unique in its environment), so renaming or moving the cache keeps it
    followKey(secret.node.defaultChild as secretsmanager.CfnSecret, LogicalIdKind.SECRET,
      Token.isUnresolved(secretName) ? `prefix ${ecrRepositoryPrefix}` : secretName);
    createdSecrets.set(secret, secretName); // app validation asks for these: one secret per name across the app
    acknowledgeFinding(secret, 'AwsSolutions-SMG4', 'Upstream registry tokens are issued by the upstream (Docker Hub, GitHub, ...) '
      + 'and cannot be rotated by a Lambda; rotate them there and put the new value into this secret.');
    return { secret };
  }
}

/**
 * The secret's name where it can be known at synth time: a string, `undefined` when it is a token, and
 * `null` when the secret is defined in this app without a name (CloudFormation will generate one).
 */
function secretNameOf(secret: secretsmanager.ISecret): string | undefined | null {
  const cfn = secret.node.defaultChild;
  if (cfn instanceof secretsmanager.CfnSecret) {
    // An unnamed Secret's name is a lazy token that resolves to undefined (unless used across environments).
    const name = Stack.of(secret).resolve(cfn.name);
    if (name === undefined) {
      return null;
    }
    return typeof name === 'string' ? name : undefined;
  }
  if (!Token.isUnresolved(secret.secretName)) {
    return secret.secretName;
  }
  const arn = secret.secretFullArn;
  if (arn !== undefined && !Token.isUnresolved(arn)) {
    // arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 characters>
    const resourceName = Arn.split(arn, ArnFormat.COLON_RESOURCE_NAME).resourceName;
    return resourceName?.replace(/-[A-Za-z0-9]{6}$/, '');
  }
  return undefined;
}

/**
 * ECR reads secrets only in the rule's own account and Region: the secret's ARN (when known) and the stack that
 * owns a secret defined in this app (whose ARN is a token, even across Regions) must both be in it.
 */
function checkSameEnvironment(scope: Construct, secret: secretsmanager.ISecret, where: string): void {
  const stack = Stack.of(scope);
  const secretArn = secret.secretFullArn!;
  const fromArn = Token.isUnresolved(secretArn) ? undefined : Arn.split(secretArn, ArnFormat.COLON_RESOURCE_NAME);
  const candidates: Array<[string, string | undefined, string]> = [
    ['account', fromArn?.account, stack.account], ['Region', fromArn?.region, stack.region],
    // the environment of the stack that defines the secret (or of its ARN, for an imported one)
    ['account', secret.env.account, stack.account], ['Region', secret.env.region, stack.region],
  ];
  for (const [what, theirs, ours] of candidates) {
    if (theirs && !Token.isUnresolved(theirs) && !Token.isUnresolved(ours) && theirs !== ours) {
      throw new Error(`${where}: the secret is in ${what} ${theirs}, but the rule is in ${what} ${ours}; `
        + `ECR reads pull through cache secrets only in the rule's own account and Region. Create the secret in ${what} ${ours}.`);
    }
  }
}
