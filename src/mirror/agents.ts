/**
 * The registry client's keep-alive agents, whose sockets each read into one buffer of 256 KiB, reused for every read.
 *
 * A socket's stream reads at most 64 KiB at a time, each time into a new buffer; for a copy, which reads each byte of
 * a layer once, those allocations (and the garbage they leave) and the per-read work after them are most of the cost
 * of receiving the bytes. Node.js's `onread` socket option (`new net.Socket`, and `tls.connect` since Node.js 15.1:
 * https://nodejs.org/api/net.html#new-netsocketoptions) reads into a buffer of ours and passes each read to a callback
 * instead of the stream; the callback hands the bytes on to the HTTP client as the stream would, as a `'data'` event.
 * Measured side by side on loopback (docs/BENCHMARKS.md, `npx projen bench:agents`), the CPU of a 200 MB download
 * through these agents is 0.41-0.54x that through Node.js's default one over plain HTTP, but only 0.86-0.93x over
 * TLS (ECR's registry speaks HTTPS): there a read holds at most one TLS record's plaintext (16 KiB) whatever the
 * buffer's size, so what is saved is the allocation per read, not the number of reads, and decryption dominates.
 *
 * Why a view of a reused buffer is safe to hand on: the HTTP client's only `'data'` listener is its parser, which
 * parses every byte of the event before returning, copies each piece of body it emits (Node.js src/node_http_parser.cc,
 * `on_body`: `Buffer::Copy`) and saves the header strings it has not finished before `execute` returns. `pause()` and
 * `resume()` stop and start the reads as for the stream (the HTTP client's backpressure). Were a later Node.js to keep
 * a view past the event, a blob's bytes could change after they were read: the receiving registry's digest check at
 * the commit refuses such a blob (it is never stored corrupt), and the copy's tests compare every digest they copy.
 *
 * Pure Node.js: no AWS SDK, no aws-cdk-lib.
 */
import * as http from 'http';
import * as https from 'https';
import type { Duplex } from 'stream';

/**
 * Bytes a read may take: 256 KiB, four times a stream's 64 KiB (fewer, larger reads and body pieces; tried side by
 * side on loopback over plain HTTP: 64 KiB, 256 KiB and 1 MiB cost about 340, 210 and 200 ms of CPU per 200 MB
 * downloaded; over TLS a read never exceeds 16 KiB). A buffer per open socket: `maxSockets` (16, oci-http.ts) bounds
 * the sockets per host, so a copy holds a few MiB at most (the source, the destination, a CDN; 4 blobs at a time).
 */
export const READ_BUFFER_BYTES = 256 * 1024;

type Connect = (options: any, callback?: (error: Error | null, socket: Duplex) => void) => Duplex | null | undefined;

/** `options` with an `onread` that reads into one buffer and emits each read as the stream's `'data'` would. */
function connectWithReusedBuffer(connect: Connect, options: any, callback?: (error: Error | null, socket: Duplex) => void): Duplex {
  const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  const socket = connect({
    ...options,
    onread: {
      buffer,
      callback: (bytes: number) => {
        socket!.emit('data', buffer.subarray(0, bytes));
        return true; // false would pause the socket: the HTTP client pauses it itself when it must
      },
    },
  }, callback);
  if (!socket) {
    // Node.js's agents return the socket at once (net.createConnection, tls.connect); the reads start after this
    throw new Error('the agent opened no socket to read into');
  }
  return socket;
}

class ReusedBufferHttpAgent extends http.Agent {
  public createConnection(options: any, callback?: (error: Error | null, socket: Duplex) => void): Duplex {
    return connectWithReusedBuffer((o, c) => super.createConnection(o, c), options, callback);
  }
}

class ReusedBufferHttpsAgent extends https.Agent {
  public createConnection(options: any, callback?: (error: Error | null, socket: Duplex) => void): Duplex {
    return connectWithReusedBuffer((o, c) => super.createConnection(o, c), options, callback);
  }
}

/** A keep-alive agent for `http:` whose sockets read into one reused buffer each. */
export function httpAgent(options: http.AgentOptions): http.Agent {
  return new ReusedBufferHttpAgent(options);
}

/** A keep-alive agent for `https:` whose sockets read into one reused buffer each (`options.ca` for a private CA). */
export function httpsAgent(options: https.AgentOptions): https.Agent {
  return new ReusedBufferHttpsAgent(options);
}
