/**
 * ecr-ptc never loses a byte: full disks, read-only and unwritable folders, symlinks, hard links, owners,
 * encodings, special files, concurrent runs and hostile file names, each run for real.
 *
 * Full-disk and read-only cases mount a small tmpfs (root only); permission cases run the CLI as `nobody`
 * (`setpriv`), because root bypasses mode bits. Where the platform cannot, the test is skipped and the reason
 * printed at load time.
 */
/* eslint-disable no-bitwise */ // open(2) flags and file mode bits are bit fields
import { execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import { createServer } from 'net';
import { hostname } from 'os';
import { dirname, join } from 'path';
import { runDir, testDir } from './util';
import { run, EXIT_FINDINGS, EXIT_OK } from '../src/cli/main';

const DEFAULTS_NOTICE = /^ecr-ptc: no --from-account or --from-cdk-out: assuming the default cache prefixes .*\n/;

const REGISTRY = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
const NOBODY = 65534;

interface Captured { code: number; out: string; err: string }

function cli(args: string[]): Captured {
  let out = '';
  let err = '';
  const code = run(args, { out: t => { out += t; }, err: t => { err += t; }, interactive: false });
  // the notice of the assumed default prefixes (test/cli-prefixes.test.ts checks it) is not what these tests are about
  return { code, out, err: err.replace(DEFAULTS_NOTICE, '') };
}

const rewrite = (...paths: string[]) => cli(['rewrite', ...paths, '--registry', REGISTRY]);

/**
 * What `nobody` runs, in a fresh folder of the test run that every user may enter: the CLI bundled into one file
 * (esbuild) where the package has it (lib/cli/main.js, beside a copy of package.json) and a copy of this Node.js
 * binary. Never the checkout or the
 * Node.js install in place: either may sit under a folder `nobody` cannot enter (a clone under a `mktemp -d` parent
 * is mode 0700; `scripts/with-node` runs Node.js from root's npm cache). Made once, on first use; the run's teardown
 * removes it with the run folder.
 */
let nobodyKit: { node: string; cli: string; dir: string } | undefined;
function kitForNobody(): { node: string; cli: string; dir: string } {
  if (nobodyKit) return nobodyKit;
  const dir = testDir('nobody-cli-');
  openToOthers(dir);
  const node = join(dir, 'node');
  fs.copyFileSync(process.execPath, node, fs.constants.COPYFILE_FICLONE);
  fs.chmodSync(node, 0o755);
  // laid out as the package is (lib/cli/main.js reads ../../package.json for --version)
  fs.copyFileSync(join(__dirname, '..', 'package.json'), join(dir, 'package.json'));
  const bundle = join(dir, 'lib', 'cli', 'main.js');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild: typeof import('esbuild') = require('esbuild');
  esbuild.buildSync({
    entryPoints: [join(__dirname, '..', 'src', 'cli', 'main.ts')], outfile: bundle, bundle: true, platform: 'node', target: 'node20', logLevel: 'error',
  });
  for (const d of [join(dir, 'lib'), join(dir, 'lib', 'cli')]) fs.chmodSync(d, 0o755);
  for (const f of [bundle, join(dir, 'package.json')]) fs.chmodSync(f, 0o644);
  nobodyKit = { node, cli: bundle, dir };
  return nobodyKit;
}

/**
 * Opens `dir` and the test run's folders above it to other users (r-x), then checks that every folder up to `/` lets
 * them through: the folders above the run (the temp folder's) are not ours to change, so a closed one fails here,
 * naming it, rather than as a puzzling EACCES of the CLI.
 */
function openToOthers(dir: string): void {
  const runFolder = runDir()!;
  for (let d = dir; d.startsWith(runFolder); d = dirname(d)) {
    fs.chmodSync(d, 0o755);
  }
  for (let d = dir; ; d = dirname(d)) {
    if ((fs.statSync(d).mode & 0o001) === 0) {
      throw new Error(`${d} (mode ${(fs.statSync(d).mode & 0o777).toString(8)}) cannot be entered by other users, so nobody cannot reach the test's files under it: `
        + 'set TMPDIR to a folder every user may enter, such as /tmp');
    }
    if (d === dirname(d)) break;
  }
}

/** The CLI in a process of its own (for FIFOs that would block, other users, kill -9). */
function spawnCli(args: string[], options: { asNobody?: boolean; timeout?: number } = {}) {
  let command: string;
  let rest: string[];
  let cwd = join(__dirname, '..');
  if (options.asNobody) {
    const kit = kitForNobody();
    [command, rest, cwd] = ['setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', kit.node, kit.cli, ...args], kit.dir];
  } else {
    [command, rest] = [process.execPath, ['-r', 'ts-node/register/transpile-only', join(__dirname, '..', 'src', 'cli', 'main.ts'), ...args]];
  }
  const result = spawnSync(command, rest, { encoding: 'utf-8', timeout: options.timeout ?? 60_000, cwd });
  return { ...result, stderr: result.stderr?.replace(DEFAULTS_NOTICE, '') };
}

// ------------------------------------------------------------------ what this platform can do

const isRoot = process.getuid?.() === 0;

function probeMount(): string | undefined {
  if (!isRoot) {
    return 'not root, so no tmpfs can be mounted';
  }
  const dir = testDir('probe-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'pipe' });
    execFileSync('umount', [dir], { stdio: 'pipe' });
    return undefined;
  } catch (e) {
    return `mount -t tmpfs failed: ${(e as Error).message.split('\n')[0]}`;
  }
}

function probeNobody(): string | undefined {
  if (!isRoot) {
    return 'not root, so the CLI cannot be run as another user';
  }
  try {
    execFileSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'true'], { stdio: 'pipe' });
    return undefined;
  } catch (e) {
    return `setpriv cannot run as nobody: ${(e as Error).message.split('\n')[0]}`;
  }
}

const mountProblem = probeMount();
const nobodyProblem = probeNobody();
if (mountProblem) {
  // eslint-disable-next-line no-console
  console.warn(`SKIPPED full-disk and read-only file system tests: ${mountProblem}`);
}
if (nobodyProblem) {
  // eslint-disable-next-line no-console
  console.warn(`SKIPPED permission tests as another user: ${nobodyProblem}`);
}
const withTmpfs = mountProblem ? test.skip : test;
const asNobody = nobodyProblem ? test.skip : test;
const asRoot = isRoot ? test : test.skip;

/** Mounts a tmpfs on a fresh folder for the length of `body`. */
function onTmpfs(options: string, body: (dir: string) => void): void {
  const dir = testDir('tmpfs-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  try {
    body(dir);
  } finally {
    execFileSync('umount', [dir]);
  }
}

/** A YAML file of `n` Docker Hub images. */
function manyImages(n: number): string {
  return Array.from({ length: n }, (_, i) => `- image: nginx:1.${i}\n`).join('');
}

const tempFiles = (dir: string) => fs.readdirSync(dir).filter(n => n.includes('.ecr-ptc-'));

// ------------------------------------------------------------------ full disk, read-only, no permission

describe('a write that cannot complete keeps the original byte-identical, and the run goes on', () => {
  withTmpfs('a full disk: ENOSPC while writing the temporary file (and a short write just before it)', () => {
    const other = testDir();
    fs.writeFileSync(join(other, 'ok.yaml'), 'image: nginx:1\n');
    onTmpfs('size=64k', dir => {
      const file = join(dir, 'big.yaml');
      // 40 kB of content that grows by ~50 bytes per image: the original and its replacement cannot both fit
      const original = Buffer.from(manyImages(2500).slice(0, 40_000).replace(/\n[^\n]*$/, '\n'));
      fs.writeFileSync(file, original);
      const result = cli(['rewrite', file, other, '--registry', REGISTRY, '--json']);
      expect(result.code).toBe(EXIT_FINDINGS);
      expect(fs.readFileSync(file).equals(original)).toBe(true);
      expect(tempFiles(dir)).toEqual([]);
      const report = JSON.parse(result.out);
      expect(report.files.find((f: { path: string }) => f.path === file).error.reason).toBe('not rewritten: no space left on device (ENOSPC)');
      expect(report.summary.failedFiles).toBe(1);
      expect(report.summary.filesChanged).toBe(1);
      expect(result.err).toBe('');
    });
    expect(fs.readFileSync(join(other, 'ok.yaml'), 'utf-8')).toBe(`image: ${REGISTRY}/docker-hub/library/nginx:1\n`);
  });

  withTmpfs('in text mode the error is one line, `file: reason`, and no stack trace', () => {
    onTmpfs('size=64k', dir => {
      const file = join(dir, 'big.yaml');
      fs.writeFileSync(file, manyImages(2500).slice(0, 40_000).replace(/\n[^\n]*$/, '\n'));
      const result = rewrite(file);
      expect(result.code).toBe(EXIT_FINDINGS);
      expect(result.err).toBe(`${file}: not rewritten: no space left on device (ENOSPC)\n`);
      expect(result.err + result.out).not.toMatch(/\n\s+at /);
      expect(result.out).toMatch(/ 0 references rewritten in 0 files, .* 1 file refused/);
    });
  });

  withTmpfs('a read-only file system (EROFS) is reported per file', () => {
    onTmpfs('size=64k', dir => {
      fs.writeFileSync(join(dir, 'a.yaml'), 'image: nginx:1\n');
      execFileSync('mount', ['-o', 'remount,ro', dir]);
      const result = rewrite(dir);
      expect(result.code).toBe(EXIT_FINDINGS);
      expect(result.err).toBe(`${join(dir, 'a.yaml')}: not rewritten: read-only file system (EROFS)\n`);
      expect(fs.readFileSync(join(dir, 'a.yaml'), 'utf-8')).toBe('image: nginx:1\n');
    });
  });

  asNobody('as another user: a folder it may not write to (EACCES) and one it may not list are reported, the rest is rewritten', () => {
    const root = testDir();
    openToOthers(root); // nobody must reach the test folder
    const locked = join(root, 'locked');
    const unlistable = join(root, 'unlistable');
    const open = join(root, 'open');
    for (const dir of [locked, unlistable, open]) {
      fs.mkdirSync(dir);
      fs.writeFileSync(join(dir, 'a.yaml'), 'image: nginx:1\n');
      fs.chownSync(join(dir, 'a.yaml'), NOBODY, NOBODY);
    }
    fs.chmodSync(unlistable, 0o700);
    fs.chownSync(open, NOBODY, NOBODY);
    const result = spawnCli(['rewrite', root, '--registry', REGISTRY, '--json'], { asNobody: true });
    expect(result.status).toBe(EXIT_FINDINGS);
    const report = JSON.parse(result.stdout);
    const reasons = Object.fromEntries(report.files.map((f: { path: string; error?: { reason: string } }) => [f.path, f.error?.reason]));
    expect(reasons).toEqual({
      [join(locked, 'a.yaml')]: 'not rewritten: permission denied (EACCES)',
      [unlistable]: 'cannot list folder: permission denied (EACCES)',
      [join(open, 'a.yaml')]: undefined,
    });
    expect(fs.readFileSync(join(locked, 'a.yaml'), 'utf-8')).toBe('image: nginx:1\n');
    expect(fs.readFileSync(join(open, 'a.yaml'), 'utf-8')).toBe(`image: ${REGISTRY}/docker-hub/library/nginx:1\n`);
    expect(result.stderr).toBe('');
  });

  asNobody('as another user: a file of someone else cannot keep its owner, so it is not rewritten', () => {
    const root = testDir();
    openToOthers(root);
    fs.chownSync(root, NOBODY, NOBODY);
    const file = join(root, 'a.yaml');
    fs.writeFileSync(file, 'image: nginx:1\n');
    fs.chmodSync(file, 0o666);
    const result = spawnCli(['rewrite', file, '--registry', REGISTRY], { asNobody: true });
    expect(result.status).toBe(EXIT_FINDINGS);
    expect(result.stderr).toBe(`${file}: not rewritten: cannot keep its owner and group 0:0 (operation not permitted (EPERM)), `
      + 'so it is not rewritten; run ecr-ptc as its owner, or as root\n');
    expect(fs.statSync(file).uid).toBe(0);
    expect(fs.readFileSync(file, 'utf-8')).toBe('image: nginx:1\n');
    expect(tempFiles(root)).toEqual([]);
  });

  test('a file name too long for the temporary name: written through a shortened temporary name', () => {
    const dir = testDir();
    const file = join(dir, `${'n'.repeat(245)}.yaml`);
    fs.writeFileSync(file, 'image: nginx:1\n');
    expect(rewrite(file).code).toBe(EXIT_OK);
    expect(fs.readFileSync(file, 'utf-8')).toBe(`image: ${REGISTRY}/docker-hub/library/nginx:1\n`);
  });

  test('a path too long to use is reported with its real reason', () => {
    const dir = testDir();
    const result = rewrite(join(dir, `${'n'.repeat(300)}.yaml`));
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(result.err).toMatch(/: file name too long \(ENAMETOOLONG\)\n$/);
  });
});

// ------------------------------------------------------------------ the temporary file

describe('the temporary file: exclusive, unpredictable, 0600, never through a symlink', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeFs: typeof fs = require('fs');

  test('opened with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600, under a random name in the target\'s folder', () => {
    const dir = testDir();
    const file = join(dir, 'pod.yaml');
    fs.writeFileSync(file, 'image: nginx:1\n');
    fs.chmodSync(file, 0o640);
    const calls: Array<{ path: string; flags: number; mode?: number }> = [];
    const realOpen = nodeFs.openSync;
    const open = jest.spyOn(nodeFs, 'openSync').mockImplementation(((path: string, flags: number, mode?: number) => {
      calls.push({ path, flags, mode });
      return realOpen(path, flags, mode);
    }) as typeof fs.openSync);
    try {
      rewrite(file);
      fs.writeFileSync(file, 'image: nginx:2\n');
      rewrite(file);
    } finally {
      open.mockRestore();
    }
    const temps = calls.filter(c => c.path.endsWith('.tmp'));
    expect(temps).toHaveLength(2);
    for (const t of temps) {
      expect(t.path).toMatch(new RegExp(`^${dir}/\\.pod\\.yaml\\.ecr-ptc-[0-9a-f]{16}\\.tmp$`));
      const wanted = fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW | fs.constants.O_WRONLY;
      expect(t.flags & wanted).toBe(wanted);
      expect(t.mode).toBe(0o600);
    }
    expect(temps[0].path).not.toBe(temps[1].path);
    expect((fs.statSync(file).mode & 0o777).toString(8)).toBe('640');
  });

  test('a symlink planted at the old, predictable temporary name is never written through', () => {
    const dir = testDir();
    const outside = join(testDir('outside-'), 'precious.txt');
    fs.writeFileSync(outside, 'keep me\n');
    const file = join(dir, 'pod.yaml');
    fs.writeFileSync(file, 'image: nginx:1\n');
    fs.symlinkSync(outside, join(dir, `.pod.yaml.ecr-ptc-${process.pid}.tmp`));
    const result = rewrite(file);
    expect(fs.readFileSync(outside, 'utf-8')).toBe('keep me\n');
    expect(fs.readFileSync(file, 'utf-8')).toBe(`image: ${REGISTRY}/docker-hub/library/nginx:1\n`);
    expect(result.code).toBe(EXIT_OK);
    // the planted link is not a temporary file of ours: left where it is
    expect(fs.lstatSync(join(dir, `.pod.yaml.ecr-ptc-${process.pid}.tmp`)).isSymbolicLink()).toBe(true);
  });

  test('a leftover temporary file of a killed run is reported by check and dry runs, and removed by the next rewrite', () => {
    const dir = testDir();
    fs.writeFileSync(join(dir, 'pod.yaml'), `image: ${REGISTRY}/docker-hub/library/nginx:1\n`);
    const leftover = join(dir, '.pod.yaml.ecr-ptc-0123456789abcdef.tmp');
    fs.writeFileSync(leftover, 'image: half a fi');
    const checked = cli(['check', dir, '--json']);
    expect(JSON.parse(checked.out).leftovers).toEqual([{ path: leftover, removed: false, reason: expect.stringMatching(/interrupted ecr-ptc run; the next rewrite removes it/) }]);
    expect(fs.existsSync(leftover)).toBe(true);
    const named = rewrite(join(dir, 'pod.yaml'));
    expect(named.err).toBe(`${leftover}: temporary file of an interrupted ecr-ptc run: removed\n`);
    expect(fs.readdirSync(dir)).toEqual(['pod.yaml']);
  });
});

// ------------------------------------------------------------------ links, owners, modes

describe('links, owners and read-only files', () => {
  test('a symlink named on the command line rewrites its target and stays a symlink', () => {
    const dir = testDir();
    const target = join(dir, 'real.yaml');
    fs.writeFileSync(target, 'image: nginx:1\n');
    fs.symlinkSync('real.yaml', join(dir, 'link.yaml'));
    expect(rewrite(join(dir, 'link.yaml')).code).toBe(EXIT_OK);
    expect(fs.lstatSync(join(dir, 'link.yaml')).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(target, 'utf-8')).toBe(`image: ${REGISTRY}/docker-hub/library/nginx:1\n`);
  });

  asRoot('owner and group are kept (as root: always)', () => {
    const dir = testDir();
    const file = join(dir, 'pod.yaml');
    fs.writeFileSync(file, 'image: nginx:1\n');
    fs.chownSync(file, 1234, 5678);
    fs.chmodSync(file, 0o2664);
    expect(rewrite(file).code).toBe(EXIT_OK);
    const stat = fs.statSync(file);
    expect([stat.uid, stat.gid, (stat.mode & 0o7777).toString(8)]).toEqual([1234, 5678, '2664']);
  });

  test('a hard-linked file is reported, never split', () => {
    const dir = testDir();
    const file = join(dir, 'pod.yaml');
    fs.writeFileSync(file, 'image: nginx:1\n');
    fs.linkSync(file, join(dir, 'other-name.txt'));
    const result = rewrite(file);
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(result.err).toBe(`${file}: not rewritten: has 2 hard links; replacing it would split them, so it is left alone `
      + '(rewrite a copy, or remove the other links)\n');
    expect(fs.statSync(file).ino).toBe(fs.statSync(join(dir, 'other-name.txt')).ino);
    expect(fs.readFileSync(file, 'utf-8')).toBe('image: nginx:1\n');
  });

  test('a read-only file is reported, not rewritten behind the user\'s back (even by root)', () => {
    const dir = testDir();
    const file = join(dir, 'pod.yaml');
    fs.writeFileSync(file, 'image: nginx:1\n');
    fs.chmodSync(file, 0o444);
    const result = rewrite(file);
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(result.err).toBe(`${file}: not rewritten: read-only (mode 0444), not rewritten; make it writable to rewrite it\n`);
    expect(fs.readFileSync(file, 'utf-8')).toBe('image: nginx:1\n');
  });

  test('a file changed by someone else while ecr-ptc runs is left as it is now, and reported', () => {
    const dir = testDir();
    const file = join(dir, 'pod.yaml');
    fs.writeFileSync(file, 'image: nginx:1\n');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeFs: typeof fs = require('fs');
    const realWrite = nodeFs.writeSync as (...args: unknown[]) => number;
    const write = jest.spyOn(nodeFs, 'writeSync').mockImplementation(((fd: number, ...rest: unknown[]) => {
      if (Buffer.isBuffer(rest[0]) && rest[0].includes('dkr.ecr')) {
        // the new content is being written: a colleague saves the file right now
        write.mockRestore();
        fs.appendFileSync(file, '# edited by a colleague\n');
      }
      return realWrite(fd, ...rest);
    }) as typeof fs.writeSync);
    const result = rewrite(file);
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(result.err).toBe(`${file}: not rewritten: changed by another program while ecr-ptc ran; left as it is now\n`);
    expect(fs.readFileSync(file, 'utf-8')).toBe('image: nginx:1\n# edited by a colleague\n');
    expect(tempFiles(dir)).toEqual([]);
  });
});

// ------------------------------------------------------------------ bytes and encodings

describe('bytes are preserved exactly; other encodings are refused, never re-encoded', () => {
  test.each([
    ['Latin-1', Buffer.concat([Buffer.from('# caf'), Buffer.from([0xe9]), Buffer.from('\nimage: nginx:1\n')]), /not valid UTF-8, refused/],
    ['UTF-16 with a byte order mark', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('image: nginx:1\n', 'utf16le')]), /UTF-16 \(or UTF-32\) text, refused/],
    ['UTF-16 without a byte order mark', Buffer.from('image: nginx:1\n', 'utf16le'), /has NUL bytes .*refused/],
  ])('%s', (_, bytes, reason) => {
    const dir = testDir();
    const file = join(dir, 'pod.yaml');
    fs.writeFileSync(file, bytes);
    const result = rewrite(file);
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(result.err).toMatch(reason);
    expect(fs.readFileSync(file).equals(bytes)).toBe(true);
  });

  test('a UTF-8 byte order mark and every other byte are kept', () => {
    const dir = testDir();
    const file = join(dir, 'pod.yaml');
    fs.writeFileSync(file, Buffer.from('\ufeff# café ✓\r\nimage: nginx:1   # “quoted”\r\n', 'utf-8'));
    expect(rewrite(file).code).toBe(EXIT_OK);
    expect(fs.readFileSync(file).equals(Buffer.from(`\ufeff# café ✓\r\nimage: ${REGISTRY}/docker-hub/library/nginx:1   # “quoted”\r\n`))).toBe(true);
  });
});

// ------------------------------------------------------------------ special files, walking

describe('only regular files are read; what a walk passes over is listed', () => {
  test('a FIFO named on the command line is refused at once, never waited on', () => {
    const dir = testDir();
    const fifo = join(dir, 'pipe.yaml');
    execFileSync('mkfifo', [fifo]);
    fs.mkdirSync(join(dir, 'tree'));
    execFileSync('mkfifo', [join(dir, 'tree', 'inner.yaml')]);
    const started = Date.now();
    const result = spawnCli(['check', fifo, join(dir, 'tree'), '--json'], { timeout: 30_000 });
    expect(result.signal).toBeNull(); // not killed by the timeout: it never blocked
    expect(Date.now() - started).toBeLessThan(30_000);
    const report = JSON.parse(result.stdout);
    expect(report.files.map((f: { path: string; error: { reason: string } }) => [f.path, f.error.reason])).toEqual([
      [fifo, 'a FIFO, not a regular file: refused'],
      [join(dir, 'tree', 'inner.yaml'), 'not a regular file (a FIFO, socket or device): refused'],
    ]);
    expect(result.status).toBe(EXIT_FINDINGS);
  });

  test('a device named on the command line is refused', () => {
    const result = cli(['check', '/dev/null']);
    expect(result.err).toBe('/dev/null: a device, not a regular file: refused\n');
    expect(result.code).toBe(EXIT_FINDINGS);
  });

  test('a socket named on the command line is refused', async () => {
    const dir = testDir();
    const path = join(dir, 's.yaml');
    const server = createServer();
    await new Promise<void>(resolve => server.listen(path, resolve));
    try {
      const result = cli(['check', path]);
      expect(result.err).toBe(`${path}: a socket, not a regular file: refused\n`);
      expect(result.code).toBe(EXIT_FINDINGS);
    } finally {
      await new Promise<void>(resolve => server.close(() => resolve()));
    }
  });

  test('symlinks inside a tree are listed and not followed, so nothing outside the tree is written; --follow-symlinks follows them', () => {
    const outsideDir = testDir('outside-');
    const outside = join(outsideDir, 'secret.yaml');
    fs.writeFileSync(outside, 'image: nginx:1\n');
    const dir = testDir();
    fs.writeFileSync(join(dir, 'a.yaml'), 'image: nginx:1\n');
    fs.symlinkSync(outside, join(dir, 'link.yaml'));
    fs.mkdirSync(join(dir, 'node_modules'));
    fs.writeFileSync(join(dir, 'node_modules', 'b.yaml'), 'image: nginx:1\n');
    fs.mkdirSync(join(dir, '.git'));

    const result = cli(['rewrite', dir, '--registry', REGISTRY, '--json']);
    expect(JSON.parse(result.out).skipped).toEqual([
      { path: join(dir, '.git'), reason: expect.stringMatching(/^folder not searched/) },
      { path: join(dir, 'link.yaml'), reason: 'symbolic link, not followed (pass --follow-symlinks to follow links inside folders)' },
      { path: join(dir, 'node_modules'), reason: expect.stringMatching(/^folder not searched/) },
    ]);
    expect(fs.readFileSync(outside, 'utf-8')).toBe('image: nginx:1\n');
    expect(fs.readFileSync(join(dir, 'node_modules', 'b.yaml'), 'utf-8')).toBe('image: nginx:1\n');
    expect(cli(['rewrite', dir, '--registry', REGISTRY]).err).toContain(`${join(dir, 'link.yaml')}: skipped: symbolic link, not followed`);

    expect(cli(['rewrite', dir, '--registry', REGISTRY, '--follow-symlinks']).code).toBe(EXIT_OK);
    expect(fs.readFileSync(outside, 'utf-8')).toBe(`image: ${REGISTRY}/docker-hub/library/nginx:1\n`);
    expect(fs.lstatSync(join(dir, 'link.yaml')).isSymbolicLink()).toBe(true);
  });

  test('--follow-symlinks survives a symlink loop', () => {
    const dir = testDir();
    fs.mkdirSync(join(dir, 'sub'));
    fs.writeFileSync(join(dir, 'sub', 'a.yaml'), 'image: nginx:1\n');
    fs.symlinkSync('..', join(dir, 'sub', 'up'));
    const result = cli(['check', dir, '--follow-symlinks', '--json']);
    expect(JSON.parse(result.out).summary.filesScanned).toBe(1);
  });
});

// ------------------------------------------------------------------ concurrent runs

describe('two runs at once: the second one writes nothing and says why', () => {
  test('a lock held by a live run stops the run before anything is written', () => {
    const dir = testDir();
    fs.writeFileSync(join(dir, 'a.yaml'), 'image: nginx:1\n');
    const lock = join(dir, '.ecr-ptc.lock');
    fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), started: '2026-01-01T00:00:00Z' }));
    const result = cli(['rewrite', dir, '--registry', REGISTRY, '--json']);
    expect(result.code).toBe(EXIT_FINDINGS);
    const report = JSON.parse(result.out);
    expect(report.errors).toEqual([expect.stringMatching(new RegExp(`^another ecr-ptc run \\(pid ${process.pid} on .*\\) is writing to ${dir}: nothing was written`))]);
    expect(report.summary.filesChanged).toBe(0);
    expect(fs.readFileSync(join(dir, 'a.yaml'), 'utf-8')).toBe('image: nginx:1\n');
    expect(fs.existsSync(lock)).toBe(true);
  });

  test('the lock of a run that no longer runs (kill -9) is taken over and reported; a run leaves no lock behind', () => {
    const dir = testDir();
    fs.writeFileSync(join(dir, 'a.yaml'), 'image: nginx:1\n');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf-8' }).stdout;
    const lock = join(dir, '.ecr-ptc.lock');
    fs.writeFileSync(lock, JSON.stringify({ pid: Number(dead), host: hostname(), started: '2026-01-01T00:00:00Z' }));
    const result = rewrite(dir);
    expect(result.code).toBe(EXIT_OK);
    expect(result.err).toBe(`${lock}: removed the lock of an ecr-ptc run that no longer runs\n`);
    expect(fs.readdirSync(dir)).toEqual(['a.yaml']);
  });

  test('an empty lock (a run killed between creating and writing it) is taken over once it is a minute old', () => {
    const dir = testDir();
    fs.writeFileSync(join(dir, 'a.yaml'), 'image: nginx:1\n');
    const lock = join(dir, '.ecr-ptc.lock');
    fs.writeFileSync(lock, '');
    expect(rewrite(dir).code).toBe(EXIT_FINDINGS); // fresh: maybe a run just starting
    expect(fs.readFileSync(join(dir, 'a.yaml'), 'utf-8')).toBe('image: nginx:1\n');
    const old = new Date(Date.now() - 120_000);
    fs.utimesSync(lock, old, old);
    expect(rewrite(dir).code).toBe(EXIT_OK);
    expect(fs.readdirSync(dir)).toEqual(['a.yaml']);
  });

  test('two real runs at once with different registries: the tree ends in one state or the other, never mixed', async () => {
    const dir = testDir();
    for (let i = 0; i < 400; i++) {
      fs.writeFileSync(join(dir, `f${String(i).padStart(3, '0')}.yaml`), 'image: nginx:1\n');
    }
    const other = '444455556666.dkr.ecr.us-east-1.amazonaws.com';
    const start = (registry: string) => new Promise<{ code: number | null; err: string }>(resolve => {
      const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', join(__dirname, '..', 'src', 'cli', 'main.ts'), 'rewrite', dir, '--registry', registry],
        { cwd: join(__dirname, '..'), stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', d => { err += d; });
      child.on('exit', code => resolve({ code, err }));
    });
    const results = await Promise.all([start(REGISTRY), start(other)]);
    const contents = new Set(fs.readdirSync(dir).map(n => fs.readFileSync(join(dir, n), 'utf-8')));
    expect(contents.size).toBe(1);
    expect([`image: ${REGISTRY}/docker-hub/library/nginx:1\n`, `image: ${other}/docker-hub/library/nginx:1\n`]).toContain([...contents][0]);
    // one run did the work; the other said why it wrote nothing
    expect(results.map(r => r.code).sort()).toEqual([0, 1]);
    const loser = results.find(r => r.code === 1)!;
    expect(loser.err).toMatch(/another ecr-ptc run .* nothing was written|no cache prefix for|not served|under no known cache prefix/);
  }, 120_000);

  test('killed with SIGKILL mid-run: every file is whole (old or new), and the next run finishes the job and cleans up', () => {
    const dir = testDir();
    const before = 'kind: Pod\nspec:\n  containers:\n    - image: nginx:1\n    - image: quay.io/org/app:2\n';
    const after = before.replace('nginx:1', `${REGISTRY}/docker-hub/library/nginx:1`).replace('quay.io/org/app:2', `${REGISTRY}/quay/org/app:2`);
    for (let i = 0; i < 3000; i++) {
      fs.writeFileSync(join(dir, `f${String(i).padStart(4, '0')}.yaml`), before);
    }
    const node = [process.execPath, '-r', 'ts-node/register/transpile-only', join(__dirname, '..', 'src', 'cli', 'main.ts'), 'rewrite', dir, '--registry', REGISTRY];
    // kill it as soon as the first file has been replaced
    const script = `
      const { spawn } = require('child_process'); const fs = require('fs');
      const child = spawn(${JSON.stringify(node[0])}, ${JSON.stringify(node.slice(1))}, { stdio: 'ignore', cwd: ${JSON.stringify(join(__dirname, '..'))} });
      const first = ${JSON.stringify(join(dir, 'f0000.yaml'))};
      const timer = setInterval(() => { if (fs.readFileSync(first, 'utf-8').includes('dkr.ecr')) { child.kill('SIGKILL'); clearInterval(timer); } }, 2);
      child.on('exit', (code, signal) => { clearInterval(timer); process.stdout.write(String(signal)); });`;
    const killed = spawnSync(process.execPath, ['-e', script], { encoding: 'utf-8', timeout: 120_000 });
    const contents = fs.readdirSync(dir).filter(n => n.endsWith('.yaml')).map(n => fs.readFileSync(join(dir, n), 'utf-8'));
    expect(contents).toHaveLength(3000);
    expect(contents.filter(c => c !== before && c !== after)).toEqual([]);
    if (killed.stdout !== 'SIGKILL') {
      // eslint-disable-next-line no-console
      console.warn(`the rewrite finished before it could be killed (${killed.stdout}); only the final state was checked`);
    }
    const again = rewrite(dir);
    expect(again.code).toBe(EXIT_OK);
    expect(fs.readdirSync(dir).filter(n => !n.endsWith('.yaml'))).toEqual([]);
    expect(fs.readdirSync(dir).map(n => fs.readFileSync(join(dir, n), 'utf-8')).every(c => c === after)).toBe(true);
  });
});

// ------------------------------------------------------------------ hostile names and contents

describe('text output escapes control characters from file names and contents', () => {
  test('an escape sequence in a file name and an image value cannot reach the terminal', () => {
    const dir = testDir();
    const name = 'evil\u001b[2J\u001b[1;1H\r.yaml';
    fs.writeFileSync(join(dir, name), 'image: "nginx\\e[31m\\u202e:1"\n');
    const result = cli(['check', dir]);
    const all = result.out + result.err;
    expect(all).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
    expect(result.out).toContain(`${join(dir, 'evil\\x1b[2J\\x1b[1;1H\\x0d.yaml')}:1: nginx\\x1b[31m\\u202e:1: `);
  });
});

describe('odd command lines', () => {
  test('a file named both directly and through its folder is processed once', () => {
    const dir = testDir();
    fs.writeFileSync(join(dir, 'a.yaml'), 'image: nginx:1\n');
    const report = JSON.parse(cli(['check', dir, join(dir, 'a.yaml'), join(dir, '.', 'a.yaml'), '--json']).out);
    expect(report.files).toHaveLength(1);
  });

  test('output into a closed pipe (`| head`) ends quietly, without a stack trace', () => {
    const dir = testDir();
    for (let i = 0; i < 300; i++) {
      fs.writeFileSync(join(dir, `f${i}.yaml`), 'image: nginx:1\n');
    }
    const main = join(__dirname, '..', 'src', 'cli', 'main.ts');
    const result = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" -r ts-node/register/transpile-only "${main}" check "${dir}" --json | head -c 10 >/dev/null`],
      { encoding: 'utf-8', cwd: join(__dirname, '..'), timeout: 60_000 });
    expect(result.stderr.replace(DEFAULTS_NOTICE, '')).toBe('');
  });
});
