// SPDX-License-Identifier: Apache-2.0
/**
 * A TCP relay on 127.0.0.1 in front of a real server (docker-registry, s3rver) that stalls
 * chosen answers: when a request line matches, the relay passes the answer's headers and then
 * `afterBodyBytes` bytes of its body (or nothing at all, headers included, with
 * `'before-headers'`) and then forwards nothing more on that connection, keeping it open: a
 * server that goes silent mid-answer. Plain HTTP/1.1 only (it reads request lines).
 */
import { startLoopbackRelay } from './loopback-relay.js';

/** What to stall. */
export interface StallRule {
  /** Requests whose request line (`GET /path HTTP/1.1`) matches are stalled. */
  readonly request: RegExp;
  /** Body bytes passed before the stall, or `'before-headers'`: not even the status line. */
  readonly afterBodyBytes: number | 'before-headers';
  /** How many matching answers stall (default: every one). */
  readonly times?: number;
  /**
   * A connection that opens with a TLS hello gets no answer at all (a plain-HTTP server that
   * waits for a request line), and counts as a stall.
   */
  readonly silentToTls?: boolean;
}

/** A running relay. */
export interface StallingRelay {
  /** `127.0.0.1:PORT`. */
  readonly host: string;
  /** Answers stalled so far. */
  readonly stalls: () => number;
  /** Request lines seen, in order. */
  readonly requests: readonly string[];
  close(): Promise<void>;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** Starts a relay to 127.0.0.1:`targetPort` applying `rule`. */
export async function startStallingRelay(
  targetPort: number,
  rule: StallRule,
): Promise<StallingRelay> {
  let stalls = 0;
  const requests: string[] = [];
  const relay = await startLoopbackRelay(targetPort, (client, upstream) => {
    // State of the answer now flowing back: whether it stalls, and how far it got.
    let stalling = false;
    let stalled = false;
    let inBody = false;
    let headerTail = Buffer.alloc(0);
    let body = 0;
    let first = true;
    client.on('data', (chunk: Buffer) => {
      if (first && rule.silentToTls === true && chunk[0] === 0x16) {
        stalls += 1;
        stalled = true;
      }
      first = false;
      if (stalled && !stalling) return; // a silenced TLS hello: nothing reaches the server
      const line = /^[A-Z]+ \S+ HTTP\/1\.[01]/.exec(chunk.toString('latin1', 0, 2048))?.[0];
      if (line !== undefined) {
        requests.push(line);
        stalling = rule.request.test(line) && stalls < (rule.times ?? Infinity);
        if (stalling) stalls += 1;
        inBody = false;
        headerTail = Buffer.alloc(0);
        body = 0;
        if (stalling && rule.afterBodyBytes === 'before-headers') stalled = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (stalled) return; // silent from here on; the connection stays open
      if (!stalling) {
        client.write(chunk);
        return;
      }
      let pass = chunk;
      if (!inBody) {
        const seen = Buffer.concat([headerTail, chunk]);
        const end = seen.indexOf(HEADER_END);
        if (end < 0) {
          headerTail = seen.subarray(-3);
          client.write(chunk);
          return;
        }
        inBody = true;
        const bodyStart = end + 4 - headerTail.length;
        client.write(chunk.subarray(0, bodyStart));
        pass = chunk.subarray(bodyStart);
      }
      const limit = rule.afterBodyBytes === 'before-headers' ? 0 : rule.afterBodyBytes;
      const n = Math.min(pass.length, Math.max(0, limit - body));
      if (n > 0) client.write(pass.subarray(0, n));
      body += n;
      if (body >= limit) stalled = true;
    });
  });
  return {
    host: `127.0.0.1:${relay.port}`,
    stalls: () => stalls,
    requests,
    close: () => relay.close(),
  };
}
