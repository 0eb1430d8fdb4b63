/**
 * What the monitoring construct and its health handler agree on. Pure constants: both import this file,
 * and nothing else crosses between them.
 */

export const HealthEnv = {
  /** JSON array of the cache's repository prefixes. */
  PREFIXES: 'CACHE_PREFIXES',
  /** JSON object: prefix -> secret ARN, for every rule with credentials (validated by the canary). */
  CREDENTIALS: 'CREDENTIAL_SECRETS',
  /** JSON array of the prefixes whose secret the construct created (and so may still hold its placeholder). */
  CREATED_SECRETS: 'CREATED_SECRET_PREFIXES',
  CACHE_NAME: 'CACHE_NAME',
  METRIC_NAMESPACE: 'METRIC_NAMESPACE',
  /** Seconds between two pull counts: the window each count sums. */
  PULL_COUNT_PERIOD: 'PULL_COUNT_PERIOD',
} as const;

/** The task a scheduled invocation asks for (its constant input). */
export const HealthTask = {
  VALIDATE_CREDENTIALS: 'validate-credentials',
  COUNT_PULLS: 'count-pulls',
} as const;

export const HealthMetric = {
  /** Pulls of cached images, summed over the repositories under a prefix. */
  PULLS: 'Pulls',
  /** `ECR Pull Through Cache Action` events whose sync failed; dimension `FailureCode`. */
  SYNC_FAILURES: 'SyncFailures',
  /** Credential checks run (one per rule with credentials per run). */
  CREDENTIAL_CHECKS: 'CredentialChecks',
  /** Credential checks ECR answered "invalid" for a filled-in secret (expired or revoked token, wrong user). */
  CREDENTIAL_FAILURES: 'CredentialCheckFailures',
  /** Rules whose created secret still holds the placeholder: not broken, not filled in yet. */
  CREDENTIALS_NOT_FILLED_IN: 'CredentialsNotFilledIn',
  /** Credential checks that could not run (throttling, access denied, rule not found). */
  CREDENTIAL_CHECK_ERRORS: 'CredentialCheckErrors',
} as const;
