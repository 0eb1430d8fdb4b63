/**
 * Removes the run folder, and fails the run when a test left anything in the temp folder (an App without
 * `testApp()`, a temp file not removed): each such leftover filled this machine's disk run after run.
 */
import { existsSync, readdirSync, rmSync } from 'fs';
import { join } from 'path';
import { restoreTmpdir, RUN_DIR_VARIABLE } from './util';

/** Caches tools keep in the temp folder on purpose (removed with the run folder), not leftovers of a test. */
// v8-compile-cache (older tools on Node 20), and Node's own module compile cache, which npm and npx turn on under
// Node 22 and later (module.enableCompileCache(): <tmpdir>/node-compile-cache)
const TOOL_CACHES = [/^v8-compile-cache-\d+$/, /^node-compile-cache$/];

/** Removes `run`; throws, naming them, when `<run>/tmp` was not empty. */
export function removeRunDir(run: string): void {
  const tmp = join(run, 'tmp');
  const left = (existsSync(tmp) ? readdirSync(tmp) : []).filter(name => !TOOL_CACHES.some(cache => cache.test(name)));
  rmSync(run, { recursive: true, force: true });
  if (left.length > 0) {
    throw new Error(`the test run left ${left.length} entries in its temp folder (${left.slice(0, 10).join(', ')}${left.length > 10 ? ', ...' : ''}): `
      + 'make Apps with testApp() and folders with testDir() from test/util.ts, or remove what the test made');
  }
}

export default function globalTeardown(): void {
  const run = process.env[RUN_DIR_VARIABLE];
  restoreTmpdir(); // first: the next run in this process starts clean even when this one failed
  if (run) {
    removeRunDir(run);
  }
}
