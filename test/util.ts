/**
 * What every test shares to leave nothing behind: each App writes its cloud assembly under the run's own temp
 * folder (made by test/jest-global-setup.ts, removed by test/jest-global-teardown.ts), and files a test makes go
 * there too. The teardown fails the run when anything else was left in the temp folder.
 */
import { mkdirSync, mkdtempSync } from 'fs';
import { join } from 'path';
import { App, AppProps } from 'aws-cdk-lib';

/** Names the run folder for the test workers. */
export const RUN_DIR_VARIABLE = 'CDK_ECR_PTC_TEST_RUN';

/** Keeps the TMPDIR the global setup found ('' when it was unset), for the teardown to put back. */
export const ORIGINAL_TMPDIR_VARIABLE = 'CDK_ECR_PTC_TEST_TMPDIR_BEFORE';

/** Put back the TMPDIR a global setup found, and forget the run; nothing to do when no setup is pending. */
export function restoreTmpdir(): void {
  const original = process.env[ORIGINAL_TMPDIR_VARIABLE];
  if (original === undefined) {
    return;
  }
  if (original === '') {
    delete process.env.TMPDIR;
  } else {
    process.env.TMPDIR = original;
  }
  delete process.env[ORIGINAL_TMPDIR_VARIABLE];
  delete process.env[RUN_DIR_VARIABLE];
}

/** This run's folder; outside jest (benchmarks), undefined. */
export function runDir(): string | undefined {
  return process.env[RUN_DIR_VARIABLE] || undefined;
}

function under(folder: string, prefix: string): string {
  const run = runDir();
  if (run === undefined) {
    throw new Error(`${RUN_DIR_VARIABLE} is not set: run the tests through jest (its globalSetup makes the run folder)`);
  }
  mkdirSync(join(run, folder), { recursive: true });
  return mkdtempSync(join(run, folder, prefix));
}

/** Context of every test app: the warm-up's refresh fixed (src/prewarm/cache-warm-up.ts), so a template is the same on every run. */
const TEST_CONTEXT = { 'cdk-ecr-pull-through-cache:warmUpRefresh': '2026-01-01T00:00:00Z' };

/** An App whose cloud assembly goes under the run folder, removed after the run (outside jest: a plain App). */
export function testApp(props: AppProps = {}): App {
  const withContext = { ...props, context: { ...TEST_CONTEXT, ...props.context } };
  if (runDir() === undefined) {
    return new App(withContext);
  }
  return new App({ ...withContext, outdir: props.outdir ?? under('apps', 'cdk.out-') });
}

/** A fresh folder for a test's files, removed after the run. */
export function testDir(prefix = 'work-'): string {
  return under('work', prefix);
}
