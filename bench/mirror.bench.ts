/**
 * The mirror's copy: throughput against crane (the anchor), against a plain streaming download of the same blobs,
 * and peak memory.
 *
 * Two CNCF Distribution registries on loopback (the test harness's). Generated images (random bytes, generated and
 * hashed a megabyte at a time while they stream into the source: never a whole image in memory) are copied from one
 * to the other by `ImageCopier`, the copy handler's code, bundled with esbuild like the handler and run in a fresh
 * `node` process per sample, and by crane (go-containerregistry's `crane copy`, built from the Go module proxy:
 * `GOFLAGS=-mod=mod go install github.com/google/go-containerregistry/cmd/crane@v0.22.1`; CRANE names another
 * binary). Both are timed the same way, from spawn to exit, in the same rounds, alternating which goes first so the
 * machine's noise hits both alike; the ratio of each round is copy throughput over crane throughput, and the
 * medians are reported with the machine's load before and after. Images: 200 MB single-arch (8 layers of 25 MB)
 * and a multi-arch index (2 platforms, 4 layers of 25 MB each).
 *
 * Baselines in the same kind of process, on the 200 MB image: a plain streaming download of its blobs, 3 at a time,
 * bytes thrown away (the most any copy could move, since a copy also uploads what it downloads), through Node's
 * default agent and through the copy's (agents.ts: one reused read buffer per socket; the ratio of their CPU times is
 * printed); and the bare pipe, each blob's GET body streamed straight into an upload (POST, PATCH, PUT) with
 * no check at all. Peak memory is the child process's maximum resident set size (crane's: GNU time's %M), for the
 * 200 MB and a 1 GB image.
 *
 *   npx projen bench:mirror            (ROUNDS=5 by default; VERBOSE=1 prints every sample; CPU_PROF=<dir> profiles the copies;
 *                                       COPY_BEFORE=<other checkout>/src/mirror adds that copy; SKIP_LARGE=1 skips the 1 GB image;
 *                                       COPY_OPTIONS='{"chunkBytes": 20971520}' tries other ImageCopier options)
 */
import { execFile, execFileSync } from 'child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'fs';
import { cpus, loadavg, tmpdir } from 'os';
import { join } from 'path';
import { promisify } from 'util';
import { OciRegistry, digestOf, pushManifest, pushRandomBlob, startRegistry } from '../test/support/oci-registry';
import { RUN_DIR_VARIABLE } from '../test/util';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const MB = 1024 * 1024;
const root = join(__dirname, '..');

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The child: `copy` runs ImageCopier; `download` streams the blobs and drops them. Prints {ms, bytes, maxRssMb}. */
/** The child, with the copy's code from `mirror` (src/mirror of this checkout, or of another one: COPY_BEFORE). */
const child = (mirror: string) => `
import * as http from 'http';
import { ImageCopier } from ${JSON.stringify(join(mirror, 'copy'))};
import { RegistryClient } from ${JSON.stringify(join(mirror, 'oci-client'))};
import { httpAgent } from ${JSON.stringify(join(root, 'src', 'mirror', 'agents'))};

async function main() {
  const [mode, source, destination, repository, target, tag, blobs] = process.argv.slice(2);
  const started = performance.now();
  let bytes = 0;
  if (mode === 'copy') {
    // COPY_OPTIONS: ImageCopier options as JSON ({"chunkBytes": 20971520}, {"concurrency": 4}), to try other settings
    const result = await new ImageCopier(new RegistryClient({ url: source }), new RegistryClient({ url: destination }), JSON.parse(process.env.COPY_OPTIONS ?? '{}'))
      .copy({ sourceRepository: repository, destinationRepository: target, tag });
    if (result.outcome !== 'COPIED') throw new Error('not copied: ' + result.outcome);
    bytes = result.bytesCopied;
  } else if (mode === 'pipe') {
    // the bare minimum of a copy: each blob's GET body piped into one upload (POST, PATCH, PUT), no checks
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const call = (method: string, url: string, body?: NodeJS.ReadableStream) => new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(url, { method, agent, headers: body ? { 'Transfer-Encoding': 'chunked' } : { 'Content-Length': '0' } }, resolve);
      req.on('error', reject);
      if (body) body.pipe(req); else req.end();
    });
    const queue: string[] = JSON.parse(blobs);
    const worker = async () => {
      for (let digest = queue.shift(); digest; digest = queue.shift()) {
        const start = await call('POST', destination + '/v2/' + target + '/blobs/uploads/');
        start.resume();
        const get = await call('GET', source + '/v2/' + repository + '/blobs/' + digest);
        let n = 0;
        get.on('data', (c: Buffer) => n += c.length);
        const patch = await call('PATCH', new URL(start.headers.location!, destination).toString(), get);
        patch.resume();
        const commit = new URL(patch.headers.location!, destination);
        commit.searchParams.set('digest', digest);
        const put = await call('PUT', commit.toString());
        put.resume();
        if (put.statusCode !== 201) throw new Error('commit ' + put.statusCode);
        bytes += n;
      }
    };
    await Promise.all([worker(), worker(), worker()]);
  } else {
    // download: Node's default agent (a new buffer per socket read); download-reused: the copy's agent (one buffer per socket)
    const agent = mode === 'download-reused' ? httpAgent({ keepAlive: true, maxSockets: 16 }) : new http.Agent({ keepAlive: true, maxSockets: 16 });
    const queue: string[] = JSON.parse(blobs);
    const worker = async () => {
      for (let digest = queue.shift(); digest; digest = queue.shift()) {
        const received = await new Promise<number>((resolve, reject) => {
          http.get(source + '/v2/' + repository + '/blobs/' + digest, { agent }, res => {
            let n = 0;
            res.on('data', (c: Buffer) => n += c.length);
            res.on('end', () => resolve(n));
            res.on('error', reject);
          }).on('error', reject);
        });
        bytes += received;
      }
    };
    await Promise.all([worker(), worker(), worker()]);
  }
  const ms = performance.now() - started;
  process.stdout.write(JSON.stringify({ ms, bytes, maxRssMb: process.resourceUsage().maxRSS / 1024 }));
  process.exit(0);
}
main().catch(e => { console.error(e); process.exit(1); });
`;

interface Sample { ms: number; bytes: number; maxRssMb: number; cpuMs?: number; registryCpuMs?: number }

/**
 * The pids of this run's two registries (docker-registry processes whose config lies under the run's folder), to
 * read their CPU time (/proc/<pid>/stat utime + stime) around each sample: the servers' share of a copy's cost.
 */
function registryPids(run: string): number[] {
  return readdirSync('/proc').filter(d => /^\d+$/.test(d)).map(Number).filter(pid => {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf-8');
      return cmdline.startsWith('docker-registry') && cmdline.includes(run);
    } catch {
      return false;
    }
  });
}

/** CPU time used so far by these processes, in ms (clock ticks of 10 ms). */
function cpuOf(pids: number[]): number {
  return pids.reduce((sum, pid) => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf-8').split(') ')[1].split(' ');
    return sum + (Number(fields[11]) + Number(fields[12])) * 10; // utime, stime (fields 14 and 15 of stat)
  }, 0);
}

/** A multi-layer image of `layers` random layers of `layerSize` bytes, pushed to the source. */
async function generate(registry: OciRegistry, repository: string, layers: number, layerSize: number,
  platform?: { os: string; architecture: string }, tag: string | undefined = 'bench') {
  const blobs: Array<{ digest: string; size: number }> = [];
  for (let i = 0; i < layers; i++) {
    blobs.push({ digest: await pushRandomBlob(registry, repository, layerSize), size: layerSize });
  }
  const image = await pushManifest(registry, repository, tag, blobs, platform);
  const manifest = JSON.parse(String(image.manifest));
  return { digests: [manifest.config.digest, ...blobs.map(b => b.digest)], bytes: layers * layerSize, image };
}

/** A multi-arch image: one image per platform (by digest), then an OCI index of them tagged `bench`. */
async function generateIndex(registry: OciRegistry, repository: string, layers: number, layerSize: number) {
  const platforms = [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }];
  const images = [];
  for (const platform of platforms) {
    images.push({ platform, ...await generate(registry, repository, layers, layerSize, platform, undefined) });
  }
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: images.map(i => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: i.image.digest, size: i.image.manifest.length, platform: i.platform })),
  }));
  const put = await fetch(`${registry.url}/v2/${repository}/manifests/bench`, {
    method: 'PUT', body: index, headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' },
  });
  if (put.status !== 201) throw new Error(`index not stored: ${put.status} ${await put.text()}`);
  return { digest: digestOf(index), bytes: images.reduce((n, i) => n + i.bytes, 0) };
}

/** crane: CRANE, else $(go env GOPATH)/bin/crane; absent, the bench stops and says how to build it. */
function findCrane(): string {
  const crane = process.env.CRANE ?? join(execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf-8' }).trim(), 'bin', 'crane');
  if (!existsSync(crane)) {
    throw new Error(`crane not found at ${crane}: build it with \`GOFLAGS=-mod=mod go install github.com/google/go-containerregistry/cmd/crane@v0.22.1\`, or set CRANE to its path`);
  }
  return crane;
}

const load = () => loadavg().map(l => l.toFixed(2)).join(' ');

/**
 * The Node.js the copy runs on: the handler's runtime (HANDLER_NODE_MAJOR, set by the projen task from the Lambda
 * runtime in .projenrc.ts; the npm package node@<major>), else this process's own.
 */
function copyNode(): string {
  const major = process.env.HANDLER_NODE_MAJOR;
  if (!major) return process.execPath;
  return execFileSync('npx', ['-y', '-p', `node@${major}`, 'node', '-p', 'process.execPath'], { encoding: 'utf-8' }).trim();
}

async function main() {
  const crane = findCrane();
  const node = copyNode();
  const nodeVersion = execFileSync(node, ['--version'], { encoding: 'utf-8' }).trim();
  const craneVersion = execFileSync(crane, ['version'], { encoding: 'utf-8' }).trim();
  const run = mkdtempSync(join(tmpdir(), 'ptc-bench-mirror-'));
  process.env[RUN_DIR_VARIABLE] = run; // the registries keep their data under it; removed at the end
  // COPY_BEFORE=<another checkout's src/mirror>: its copy runs too, in the same rounds (e.g. a git worktree of main)
  const bundle = (name: string, mirror: string) => {
    writeFileSync(join(run, `${name}.ts`), child(mirror));
    execFileSync('npx', ['esbuild', '--bundle', join(run, `${name}.ts`), '--target=node22', '--platform=node', '--minify',
      '--main-fields=module,main', `--outfile=${join(run, `${name}.js`)}`, '--log-level=error'], { cwd: root });
    return join(run, `${name}.js`);
  };
  const current = bundle('child', join(root, 'src', 'mirror'));
  const before = process.env.COPY_BEFORE ? bundle('before', process.env.COPY_BEFORE) : undefined;
  const [source, destination] = await Promise.all([startRegistry(), startRegistry()]);
  const hostOf = (url: string) => new URL(url).host;
  let round = 0;
  // asynchronously: the registries' logs flow into this process, which must keep reading them. Every sample is timed
  // from spawn to exit by this process, under GNU time for the peak RSS, so the copy and crane are measured alike.
  let servers: number[] = [];
  const timed = async (command: string[], bytes: number): Promise<Sample> => {
    const serverCpu = cpuOf(servers);
    const started = performance.now();
    const { stdout, stderr } = await promisify(execFile)('/usr/bin/time', ['-f', 'maxrss-kb=%M cpu-s=%U+%S', ...command],
      { encoding: 'utf-8', maxBuffer: 16 * 1024 * 1024 });
    const ms = performance.now() - started;
    const usage = /maxrss-kb=(\d+) cpu-s=([\d.]+)\+([\d.]+)/.exec(stderr);
    if (!usage) throw new Error(`no peak RSS and CPU time from GNU time: ${stderr}`);
    const reported = stdout.trim().startsWith('{') ? JSON.parse(stdout) as Sample : undefined;
    // CPU time (user + system) is the process's own work, whatever else the machine runs: the steadiest figure here
    return {
      ms,
      bytes: reported?.bytes ?? bytes,
      maxRssMb: Number(usage[1]) / 1024,
      cpuMs: (Number(usage[2]) + Number(usage[3])) * 1000,
      registryCpuMs: cpuOf(servers) - serverCpu,
    };
  };
  // CPU_PROF=<folder>: every copy sample writes a V8 CPU profile there (node --cpu-prof), to open in Chrome's DevTools
  const profile = (mode: string) => (process.env.CPU_PROF && mode === 'copy' ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CPU_PROF}`] : []);
  const sample = (mode: 'copy' | 'download' | 'download-reused' | 'pipe', repository: string, digests: string[], bytes: number, script = current) =>
    timed([node, ...profile(mode), script, mode, source.url, destination.url, repository, `copy-${round++}/${repository}`, 'bench', JSON.stringify(digests)], bytes);
  const craneCopy = (repository: string, bytes: number) =>
    timed([crane, 'copy', '--insecure', `${hostOf(source.url)}/${repository}:bench`, `${hostOf(destination.url)}/crane-${round++}/${repository}:bench`], bytes);
  try {
    servers = registryPids(run);
    if (servers.length !== 2) throw new Error(`found ${servers.length} registry processes of this run, not 2`);
    const loadBefore = load();
    const small = await generate(source, 'bench/200mb', 8, 25 * MB);
    const multi = await generateIndex(source, 'bench/multiarch', 4, 25 * MB);
    // SKIP_LARGE=1 leaves the 1 GB image out (the 200 MB one stands in for it): quicker runs when only the ratios matter
    const [largeRepository, large] = process.env.SKIP_LARGE ? ['bench/200mb', small] : ['bench/1gb', await generate(source, 'bench/1gb', 8, 128 * MB)];

    const anchored: Record<'200mb' | 'multiarch', { copies: Sample[]; cranes: Sample[]; ratios: number[]; befores: Sample[]; beforeRatios: number[] }> = {
      '200mb': { copies: [], cranes: [], ratios: [], befores: [], beforeRatios: [] },
      'multiarch': { copies: [], cranes: [], ratios: [], befores: [], beforeRatios: [] },
    };
    const downloads: Sample[] = [];
    const reusedDownloads: Sample[] = [];
    const reusedCpuRatios: number[] = [];
    const pipes: Sample[] = [];
    const downloadRatios: number[] = [];
    const pipeRatios: number[] = [];
    const loadDuring: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      loadDuring.push(load());
      for (const [name, repository, bytes] of [['200mb', 'bench/200mb', small.bytes], ['multiarch', 'bench/multiarch', multi.bytes]] as const) {
        // alternate which goes first, so the machine's noise hits both alike
        const copy = () => sample('copy', repository, [], bytes);
        const viaCrane = () => craneCopy(repository, bytes);
        const [c, k] = i % 2 === 0 ? [await copy(), await viaCrane()] : [await viaCrane(), await copy()].reverse();
        anchored[name].copies.push(c);
        anchored[name].cranes.push(k);
        anchored[name].ratios.push((c.bytes / c.ms) / (k.bytes / k.ms));
        if (before) {
          const b = await sample('copy', repository, [], bytes, before);
          anchored[name].befores.push(b);
          anchored[name].beforeRatios.push((b.bytes / b.ms) / (k.bytes / k.ms));
        }
        if (process.env.VERBOSE) console.error(`round ${i} ${name}: copy ${JSON.stringify(c)}, crane ${JSON.stringify(k)}`);
      }
      const download = await sample('download', 'bench/200mb', small.digests, small.bytes);
      const reused = await sample('download-reused', 'bench/200mb', small.digests, small.bytes);
      const pipe = await sample('pipe', 'bench/200mb', small.digests, small.bytes);
      downloads.push(download);
      reusedDownloads.push(reused);
      reusedCpuRatios.push((reused.cpuMs ?? 0) / (download.cpuMs ?? 1));
      pipes.push(pipe);
      const copied = anchored['200mb'].copies[i];
      downloadRatios.push((copied.bytes / copied.ms) / (download.bytes / download.ms));
      pipeRatios.push((copied.bytes / copied.ms) / (pipe.bytes / pipe.ms));
    }
    const largeCopies: Sample[] = [];
    for (let i = 0; i < Math.max(1, Math.ceil(ROUNDS / 2)); i++) {
      largeCopies.push(await sample('copy', largeRepository, [], large.bytes));
    }
    const largeCrane = await craneCopy(largeRepository, large.bytes);
    const loadAfter = load();

    const rate = (s: Sample[]) => median(s.map(x => x.bytes / MB / (x.ms / 1000)));
    const rss = (s: Sample[]) => `${median(s.map(d => d.maxRssMb)).toFixed(0)} MB`;
    console.log(`Copy between two Distribution registries on loopback (the copy on node ${nodeVersion}, ${craneVersion.startsWith('v') ? `crane ${craneVersion}` : craneVersion}, `
      + `${ROUNDS} rounds, medians, each sample timed from spawn to exit; ${cpus().length} CPUs, load average ${loadBefore} before, ${loadAfter} after):\n`);
    // the copier's own CPU, then (after the slash) the two registries' CPU during the same sample
    const cpu = (s: Sample[]) => `${median(s.map(d => d.cpuMs ?? 0)).toFixed(0)} ms / ${median(s.map(d => d.registryCpuMs ?? 0)).toFixed(0)} ms`;
    console.log('| what | image | median MB/s | median peak RSS | median CPU (user + system): the copier / the two registries |\n|---|---|---|---|---|');
    console.log(`| crane copy (anchor) | 200 MB, 8 layers | ${rate(anchored['200mb'].cranes).toFixed(1)} | ${rss(anchored['200mb'].cranes)} | ${cpu(anchored['200mb'].cranes)} |`);
    console.log(`| ImageCopier.copy | 200 MB, 8 layers | ${rate(anchored['200mb'].copies).toFixed(1)} | ${rss(anchored['200mb'].copies)} | ${cpu(anchored['200mb'].copies)} |`);
    console.log(`| crane copy (anchor) | multi-arch, 2 x 4 layers, 200 MB | ${rate(anchored.multiarch.cranes).toFixed(1)} | ${rss(anchored.multiarch.cranes)} | ${cpu(anchored.multiarch.cranes)} |`);
    console.log(`| ImageCopier.copy | multi-arch, 2 x 4 layers, 200 MB | ${rate(anchored.multiarch.copies).toFixed(1)} | ${rss(anchored.multiarch.copies)} | ${cpu(anchored.multiarch.copies)} |`);
    if (before) {
      console.log(`| ImageCopier.copy of COPY_BEFORE | 200 MB, 8 layers | ${rate(anchored['200mb'].befores).toFixed(1)} | ${rss(anchored['200mb'].befores)} | ${cpu(anchored['200mb'].befores)} |`);
      console.log(`| ImageCopier.copy of COPY_BEFORE | multi-arch, 2 x 4 layers, 200 MB | ${rate(anchored.multiarch.befores).toFixed(1)} | ${rss(anchored.multiarch.befores)} | ${cpu(anchored.multiarch.befores)} |`);
    }
    console.log(`| plain streaming download (baseline) | 200 MB, 8 layers | ${rate(downloads).toFixed(1)} | ${rss(downloads)} | ${cpu(downloads)} |`);
    console.log(`| plain streaming download, the copy's agent (one reused read buffer per socket) | 200 MB, 8 layers | ${rate(reusedDownloads).toFixed(1)} | ${rss(reusedDownloads)} | ${cpu(reusedDownloads)} |`);
    console.log(`| plain streaming pipe: GET piped into an upload, no checks | 200 MB, 8 layers | ${rate(pipes).toFixed(1)} | ${rss(pipes)} | ${cpu(pipes)} |`);
    console.log(`| crane copy | 1 GB, 8 layers | ${rate([largeCrane]).toFixed(1)} | ${rss([largeCrane])} | ${cpu([largeCrane])} |`);
    console.log(`| ImageCopier.copy | 1 GB, 8 layers | ${rate(largeCopies).toFixed(1)} | ${rss(largeCopies)} | ${cpu(largeCopies)} |`);
    const line = (what: string, ratios: number[]) => console.log(`${what}, median of ${ROUNDS} per-round ratios: ${median(ratios).toFixed(2)}x `
      + `(rounds: ${ratios.map(r => r.toFixed(2)).join(', ')})`);
    console.log('');
    line('Copy / crane throughput, 200 MB single-arch', anchored['200mb'].ratios);
    line('Copy / crane throughput, multi-arch', anchored.multiarch.ratios);
    if (before) {
      line('COPY_BEFORE copy / crane throughput, 200 MB single-arch', anchored['200mb'].beforeRatios);
      line('COPY_BEFORE copy / crane throughput, multi-arch', anchored.multiarch.beforeRatios);
    }
    line('Copy / plain download throughput, 200 MB', downloadRatios);
    line('Copy / bare pipe throughput, 200 MB', pipeRatios);
    line('Plain download CPU, the copy\'s agent / Node\'s default agent, 200 MB', reusedCpuRatios);
    console.log(`Load average (1, 5, 15 min) at the start of each round: ${loadDuring.join(' | ')}`);
  } finally {
    await Promise.all([source.stop(), destination.stop()]);
    rmSync(run, { recursive: true, force: true });
  }
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});
