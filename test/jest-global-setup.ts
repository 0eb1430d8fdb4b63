/**
 * Makes one temp folder per jest run, `<tmp>/cdk-ecr-ptc-jest-<pid>-XXXXXX`, and points the workers' TMPDIR into
 * it (`<run>/tmp`), so whatever a test puts in the temp folder is found by the teardown. Run folders of jest
 * processes that no longer run (killed runs) are removed first.
 *
 * The TMPDIR it found is kept (`ORIGINAL_TMPDIR_VARIABLE`) and put back by the teardown, so several runs in one
 * process (watch mode, mutation test runners) each start from the real temp folder, not from the last run's
 * removed one.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { ORIGINAL_TMPDIR_VARIABLE, restoreTmpdir, RUN_DIR_VARIABLE } from './util';
import { alive } from '../src/cli/locks';

const RUN_PREFIX = 'cdk-ecr-ptc-jest-';

export default function globalSetup(): void {
  restoreTmpdir(); // a run of this process that ended without its teardown
  process.env[ORIGINAL_TMPDIR_VARIABLE] = process.env.TMPDIR ?? '';
  const base = tmpdir();
  for (const name of readdirSync(base)) {
    const pid = new RegExp(`^${RUN_PREFIX}(\\d+)-`).exec(name)?.[1];
    if (pid !== undefined && !alive(Number(pid))) {
      rmSync(join(base, name), { recursive: true, force: true });
    }
  }
  const run = mkdtempSync(join(base, `${RUN_PREFIX}${process.pid}-`));
  mkdirSync(join(run, 'tmp'));
  process.env[RUN_DIR_VARIABLE] = run;
  process.env.TMPDIR = join(run, 'tmp');
}
