import { ChildProcess, execFileSync, spawn } from 'child_process';
import { existsSync, readFileSync, writeFileSync } from 'fs';
import { join } from 'path';
import { testDir } from '../util';

/**
 * A real containerd on a temporary root, state and socket (Debian package `containerd`, installed by
 * ./scripts/install-test-deps), driven with `ctr`. Only the content and image services are needed: the CRI
 * plugin is disabled, so nothing touches the machine's own containerd, network or cgroups.
 */
export interface Containerd {
  /** The gRPC socket, for `ctr --address`. */
  readonly address: string;
  /** Runs `ctr` against this containerd; returns stdout and stderr, throws with both on a non-zero exit. */
  ctr(args: string[]): string;
  /** Stops containerd and unmounts anything it left mounted under its folder. */
  stop(): Promise<void>;
}

/** Why this machine cannot run the containerd tests, or undefined when it can. */
export function whyNoContainerd(): string | undefined {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return 'containerd needs root (this user is not root)';
  }
  for (const tool of ['containerd', 'ctr']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed (./scripts/install-test-deps installs the Debian package containerd)`;
    }
  }
  return undefined;
}

/** The mount points under `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8').split('\n')
    .map(line => line.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}

export async function startContainerd(): Promise<Containerd> {
  const dir = testDir('containerd-');
  const address = join(dir, 'c.sock');
  // JSON strings are TOML basic strings: no quoting surprises in paths
  writeFileSync(join(dir, 'config.toml'), [
    'version = 2',
    `root = ${JSON.stringify(join(dir, 'root'))}`,
    `state = ${JSON.stringify(join(dir, 'state'))}`,
    // no CRI (kubelet's API), no /opt plugin directory, no snapshotters that want kernel modules
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",',
    '  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]',
    '[grpc]',
    `  address = ${JSON.stringify(address)}`,
    '[ttrpc]',
    `  address = ${JSON.stringify(`${address}.ttrpc`)}`,
    '',
  ].join('\n'));
  const child: ChildProcess = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  let spawnError: Error | undefined;
  child.on('error', e => spawnError = e);
  child.stdout?.on('data', c => log.push(String(c)));
  child.stderr?.on('data', c => log.push(String(c)));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>(resolve => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    }
    for (const mount of mountsUnder(dir)) {
      execFileSync('umount', ['-l', mount]);
    }
  };
  const ctr = (args: string[]) => {
    try {
      return execFileSync('ctr', ['--address', address, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; message: string };
      throw new Error(`ctr ${args.join(' ')} failed: ${err.stderr || err.message}\n${err.stdout ?? ''}`);
    }
  };

  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (spawnError || child.exitCode !== null) {
      await stop();
      throw new Error(`containerd did not start (${spawnError?.message ?? `exit ${child.exitCode}`}): ${log.join('').slice(-2000)}`);
    }
    if (existsSync(address)) {
      try {
        ctr(['version']);
        return { address, ctr, stop };
      } catch {
        // not serving yet
      }
    }
    await new Promise(r => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`containerd did not answer on ${address} within 30 s: ${log.join('').slice(-2000)}`);
}
