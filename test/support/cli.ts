/** Runs `ecr-ptc` in the test's process and captures what it prints (no defaults notice stripped). */
import { run } from '../../src/cli/main';

export interface CliRun {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

export function runCli(args: string[]): CliRun {
  let out = '';
  let err = '';
  const code = run(args, { out: t => { out += t; }, err: t => { err += t; }, interactive: false });
  return { code, out, err };
}
