/**
 * The mirror's copy: throughput against a plain streaming download of the same blobs, and peak memory.
 *
 * Two CNCF Distribution registries on loopback (the test harness's). A generated multi-layer image (random
 * bytes, generated and hashed a megabyte at a time while they stream into the source: never the whole image
 * in memory) is copied from one to the other by `ImageCopier`, the copy handler's code, bundled with esbuild
 * like the handler and run in a fresh `node` process per sample. The baseline, in the same kind of process and
 * in the same rounds (alternating), downloads the same blobs from the source with plain streaming HTTP GETs, as
 * many at a time as the copy streams (3), and throws the bytes away: the most any copy could move on this
 * machine, since a copy also uploads what it downloads. A second baseline, the bare pipe, streams each blob's GET
 * body straight into an upload (POST, PATCH, PUT) with no check at all: the least a copy must do, so the copy's
 * own cost shows apart from the destination registry's. Peak memory is the child process's maximum resident set
 * size, for a 200 MB and a 1 GB image.
 *
 *   npx projen bench:mirror            (ROUNDS=5 by default)
 */
import { execFile, execFileSync } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { promisify } from 'util';
import { OciRegistry, pushManifest, pushRandomBlob, startRegistry } from '../test/support/oci-registry';
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
const CHILD = `
import * as http from 'http';
import { ImageCopier } from ${JSON.stringify(join(root, 'src/mirror/copy'))};
import { RegistryClient } from ${JSON.stringify(join(root, 'src/mirror/oci-client'))};

async function main() {
  const [mode, source, destination, repository, target, tag, blobs] = process.argv.slice(2);
  const started = performance.now();
  let bytes = 0;
  if (mode === 'copy') {
    const result = await new ImageCopier(new RegistryClient({ url: source }), new RegistryClient({ url: destination }))
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
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
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

interface Sample { ms: number; bytes: number; maxRssMb: number }

/** A multi-layer image of `layers` random layers of `layerSize` bytes, pushed to the source. */
async function generate(registry: OciRegistry, repository: string, layers: number, layerSize: number) {
  const blobs: Array<{ digest: string; size: number }> = [];
  for (let i = 0; i < layers; i++) {
    blobs.push({ digest: await pushRandomBlob(registry, repository, layerSize), size: layerSize });
  }
  const image = await pushManifest(registry, repository, 'bench', blobs);
  const manifest = JSON.parse(String(image.manifest));
  return { digests: [manifest.config.digest, ...blobs.map(b => b.digest)], bytes: layers * layerSize };
}

async function main() {
  const run = mkdtempSync(join(tmpdir(), 'ptc-bench-mirror-'));
  process.env[RUN_DIR_VARIABLE] = run; // the registries keep their data under it; removed at the end
  const child = join(run, 'child.js');
  writeFileSync(join(run, 'child.ts'), CHILD);
  execFileSync('npx', ['esbuild', '--bundle', join(run, 'child.ts'), '--target=node22', '--platform=node', '--minify',
    '--main-fields=module,main', `--outfile=${child}`, '--log-level=error'], { cwd: root });
  const [source, destination] = await Promise.all([startRegistry(), startRegistry()]);
  let round = 0;
  // asynchronously: the registries' logs flow into this process, which must keep reading them
  const sample = async (mode: 'copy' | 'download' | 'pipe', repository: string, digests: string[]): Promise<Sample> =>
    JSON.parse((await promisify(execFile)(process.execPath, [child, mode, source.url, destination.url, repository, `copy-${round++}/${repository}`, 'bench',
      JSON.stringify(digests)], { encoding: 'utf-8', maxBuffer: 1024 * 1024 })).stdout);
  try {
    const small = await generate(source, 'bench/200mb', 8, 25 * MB);
    const large = await generate(source, 'bench/1gb', 8, 128 * MB);

    const copies: Sample[] = [];
    const downloads: Sample[] = [];
    const pipes: Sample[] = [];
    const ratios: number[] = [];
    const pipeRatios: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      // alternate which goes first, so the machine's noise hits both alike
      const pair = i % 2 === 0
        ? [await sample('download', 'bench/200mb', small.digests), await sample('copy', 'bench/200mb', small.digests)]
        : [await sample('copy', 'bench/200mb', small.digests), await sample('download', 'bench/200mb', small.digests)].reverse();
      downloads.push(pair[0]);
      copies.push(pair[1]);
      pipes.push(await sample('pipe', 'bench/200mb', small.digests));
      pipeRatios.push((pair[1].bytes / pair[1].ms) / (pipes[i].bytes / pipes[i].ms));
      // throughput ratio: copy MB/s over download MB/s, in the same round
      ratios.push((pair[1].bytes / pair[1].ms) / (pair[0].bytes / pair[0].ms));
      if (process.env.VERBOSE) {
        console.error(`round ${i}: download ${JSON.stringify(pair[0])}, copy ${JSON.stringify(pair[1])}`);
      }
    }
    const largeCopies: Sample[] = [];
    for (let i = 0; i < Math.max(1, Math.ceil(ROUNDS / 2)); i++) {
      largeCopies.push(await sample('copy', 'bench/1gb', large.digests));
    }
    const largeDownload = await sample('download', 'bench/1gb', large.digests);

    const rate = (s: Sample[]) => median(s.map(x => x.bytes / MB / (x.ms / 1000)));
    console.log(`Copy between two Distribution registries on loopback (node ${process.version}, ${ROUNDS} rounds, medians):\n`);
    console.log('| what | image | median MB/s | median peak RSS |\n|---|---|---|---|');
    console.log(`| plain streaming download (baseline) | 200 MB, 8 layers | ${rate(downloads).toFixed(1)} | ${median(downloads.map(d => d.maxRssMb)).toFixed(0)} MB |`);
    console.log(`| plain streaming pipe: GET piped into an upload, no checks | 200 MB, 8 layers | ${rate(pipes).toFixed(1)} | ${median(pipes.map(d => d.maxRssMb)).toFixed(0)} MB |`);
    console.log(`| ImageCopier.copy | 200 MB, 8 layers | ${rate(copies).toFixed(1)} | ${median(copies.map(d => d.maxRssMb)).toFixed(0)} MB |`);
    console.log(`| plain streaming download (baseline) | 1 GB, 8 layers | ${rate([largeDownload]).toFixed(1)} | ${largeDownload.maxRssMb.toFixed(0)} MB |`);
    console.log(`| ImageCopier.copy | 1 GB, 8 layers | ${rate(largeCopies).toFixed(1)} | ${median(largeCopies.map(d => d.maxRssMb)).toFixed(0)} MB |`);
    console.log(`\nCopy throughput / download throughput, median of ${ROUNDS} per-round ratios: ${median(ratios).toFixed(2)}x `
      + `(rounds: ${ratios.map(r => r.toFixed(2)).join(', ')})`);
    console.log(`Copy throughput / bare pipe throughput, median of ${ROUNDS} per-round ratios: ${median(pipeRatios).toFixed(2)}x `
      + `(rounds: ${pipeRatios.map(r => r.toFixed(2)).join(', ')})`);
  } finally {
    await Promise.all([source.stop(), destination.stop()]);
    rmSync(run, { recursive: true, force: true });
  }
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});
