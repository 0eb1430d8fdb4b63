import { ECRClient } from '@aws-sdk/client-ecr';
import { pullThroughCacheEvent, imagePushEvent } from './events';
import { putImage } from './images';
import { handler, resetClient } from '../../src/scanning/scan-trigger.lambda';
import { FaultProxy, seededRandom, startFaultProxy } from '../support/fault-proxy';
import { captureLog, MotoServer, startMoto, useEndpoint } from '../support/moto';

/**
 * 1,000 events against moto behind a proxy that throttles, fails and loses responses, driven the way Lambda
 * drives an asynchronous function: each event is tried up to 3 times (the first try and Lambda's two retries),
 * then goes to the dead-letter queue. Every event must end scanned exactly once or in the dead-letter
 * payload: none lost, none scanned twice.
 */
const EVENTS = 1000;
const DUPLICATES = 150; // events delivered twice (EventBridge delivers at least once) or pushed and pulled
const POISONED = 25; // images whose scan always fails with a server error
const WORKERS = 8;
const LAMBDA_ATTEMPTS = 3;

test(`${EVENTS} events with injected throttling and failures: each is scanned once or kept in the dead-letter queue`, async () => {
  let moto: MotoServer | undefined;
  let proxy: FaultProxy | undefined;
  const ecr = new ECRClient({ region: 'us-east-1' });
  try {
    moto = await startMoto();
    useEndpoint(moto.endpoint); // dummy credentials; the handler is pointed at the proxy below
    const seed = new ECRClient({ endpoint: moto.endpoint, region: 'us-east-1' });
    const unique = EVENTS - DUPLICATES;
    const images: Array<{ repositoryName: string; digest: string }> = [];
    for (let i = 0; i < unique; i++) {
      const repositoryName = `docker-hub/library/app${i % 40}`;
      images.push({ repositoryName, digest: await putImage(seed, repositoryName, `v${i}`) });
    }
    seed.destroy();
    const poisoned = new Set(images.slice(0, POISONED).map(i => i.digest));

    const random = seededRandom(20261128);
    const scansStarted = new Map<string, number>(); // digest -> StartImageScan calls that took effect in moto
    proxy = await startFaultProxy(moto.endpoint, (operation, body) => {
      if (operation !== 'StartImageScan') {
        return 'pass';
      }
      if (poisoned.has(body.imageId?.imageDigest)) {
        return 'server-error';
      }
      const r = random();
      return r < 0.2 ? 'throttle' : r < 0.25 ? 'server-error' : r < 0.3 ? 'lose-response' : 'pass';
    }, (operation, body, status) => {
      if (operation === 'StartImageScan' && status === 200) {
        const digest = body.imageId.imageDigest;
        scansStarted.set(digest, (scansStarted.get(digest) ?? 0) + 1);
      }
    });

    useEndpoint(proxy.endpoint);
    Object.assign(process.env, {
      CACHE_PREFIXES: JSON.stringify(['docker-hub']), CACHE_NAME: 'Burst', METRIC_NAMESPACE: 'Test', AWS_SDK_MAX_ATTEMPTS: '4',
    });
    resetClient();

    // the events: every image once, a share of them twice (the second time as a push event)
    const events = images.map(i => pullThroughCacheEvent(i.repositoryName, i.digest, 'docker-hub'));
    for (let i = 0; i < DUPLICATES; i++) {
      const image = images[(i * 7) % unique];
      events.push(imagePushEvent(image.repositoryName, image.digest));
    }

    type Outcome = 'started' | 'skipped' | 'dead-letter' | 'scanned-or-skipped';
    const outcome = new Map<number, Outcome>();
    const deadLetters: any[] = [];
    let invocations = 0;
    const queue = events.map((event, index) => ({ event, index, attempt: 1 }));
    // one capture for the whole run (the log writer is global); lines are told apart by their event id
    const { lines } = await captureLog(async () => {
      await Promise.all(Array.from({ length: WORKERS }, async () => {
        for (let job = queue.shift(); job; job = queue.shift()) {
          invocations++;
          try {
            await handler(job.event);
            outcome.set(job.index, 'scanned-or-skipped' as Outcome);
          } catch {
            if (job.attempt < LAMBDA_ATTEMPTS) {
              queue.push({ ...job, attempt: job.attempt + 1 });
            } else {
              outcome.set(job.index, 'dead-letter');
              deadLetters.push(job.event);
            }
          }
        }
      }));
    });
    const startedIds = new Set(lines.filter(l => l.ScansStarted === 1).map(l => l.eventId));
    events.forEach((event, index) => {
      if (outcome.get(index) !== 'dead-letter') {
        outcome.set(index, startedIds.has(event.id) ? 'started' : 'skipped');
      }
    });

    const counts: Record<string, number> = { 'started': 0, 'skipped': 0, 'dead-letter': 0 };
    for (const o of outcome.values()) {
      counts[o]++;
    }
    const twice = [...scansStarted.values()].filter(n => n > 1).length;
    const scannedDigests = new Set([...scansStarted.keys()]);
    // eslint-disable-next-line no-console
    console.log(`burst: ${EVENTS} events, ${invocations} invocations; started ${counts.started}, skipped (already scanned) ${counts.skipped}, `
      + `dead-letter ${counts['dead-letter']}; images scanned ${scannedDigests.size} of ${unique}, scanned twice ${twice}`);

    expect(outcome.size).toBe(EVENTS); // none lost
    expect(twice).toBe(0); // none scanned twice
    events.forEach((event, index) => {
      const digest = event.detail['image-digest'];
      if (outcome.get(index) === 'dead-letter') {
        expect(deadLetters).toContain(event); // kept whole, the original event
      } else {
        expect(scansStarted.get(digest)).toBe(1); // started now, or earlier by a duplicate, exactly once
      }
    });
    for (const digest of poisoned) {
      expect(scansStarted.has(digest)).toBe(false);
    }
    events.forEach((event, index) => {
      if (poisoned.has(event.detail['image-digest'])) {
        expect(outcome.get(index)).toBe('dead-letter'); // every poisoned event, and its duplicates
      }
    });
    // The faults are transient for every other image, so nearly all of them must get through. A few may not:
    // at a 30% fault rate the SDK's retry quota (a token bucket per client) runs dry and calls fail fast, and
    // Lambda's own retries, a minute or two apart in AWS, come at once here. Those events are kept, not lost.
    expect(counts['dead-letter'] - deadLetters.filter(e => poisoned.has(e.detail['image-digest'])).length).toBeLessThanOrEqual(EVENTS * 0.03);
    // a scan whose answer was lost is found "already scanned" on the retry: started never exceeds scanned images
    expect(counts.started).toBeLessThanOrEqual(scannedDigests.size);
    // every failure is visible: an ERROR line with the reason for each failed invocation
    expect(lines.filter(l => l.level === 'ERROR' && l.errorCode).length).toBe(invocations - outcome.size + counts['dead-letter']);
  } finally {
    ecr.destroy();
    await proxy?.stop();
    await moto?.stop();
  }
}, 300_000);
