/**
 * Phone↔lock unlock round trip (issue 4 groundwork; docs/protocol/link.md), part of `npm run bench`:
 *
 *   link.unlock_roundtrip.memory  one whole unlock (challenge, answer with a 3-link Ed25519 chain, result)
 *                                 over the in-memory transport with 20-byte frames: from the phone asking
 *                                 to the phone holding the lock's verdict, both ends in this process
 *   link.unlock_roundtrip.tcp     the same over a loopback TCP connection (a new connection each time)
 *
 * No link cache at the lock: every unlock verifies the chain and the transcript signature (4 signature
 * verifications), so this is the cold cost. Every unlock must be accepted.
 */
import { CoseAlg } from "../src/core/envelope/cose-sign1.ts";
import { memoryTransportPair } from "../src/link/memory-transport.ts";
import { MessageLink } from "../src/link/message-link.ts";
import { connectTcpLink, listenTcpLink } from "../src/link/tcp-transport.ts";
import type { LinkTransport } from "../src/link/transport.ts";
import { phoneUnlock, serveUnlock } from "../src/link/unlock.ts";
import { answerOptions, c, lockFor, NOW, wallet } from "../test/support/link-fixtures.ts";
import { type Metric, percentiles } from "./stats.ts";

const N = Number(process.env.BENCH_LINK_N ?? 300);
const WARMUP = 30;

export async function benchLink(): Promise<Metric[]> {
  const w = wallet(3, CoseAlg.EdDSA);
  const lock = lockFor(w.owner);
  const once = async (lockEnd: LinkTransport, phoneEnd: LinkTransport): Promise<void> => {
    const served = serveUnlock(new MessageLink(lockEnd), lock, { wallNow: () => NOW });
    await phoneUnlock(c, new MessageLink(phoneEnd), answerOptions(w));
    if (!(await served).ok) throw new Error("an unlock was refused in the bench");
  };

  const memory: number[] = [];
  for (let k = 0; k < WARMUP + N; k++) {
    const [a, b] = memoryTransportPair({ frameSize: 20 });
    const t = process.hrtime.bigint();
    await once(a, b);
    const d = Number(process.hrtime.bigint() - t);
    a.close();
    if (k >= WARMUP) memory.push(d);
  }

  const tcp: number[] = [];
  let pending: ((t: LinkTransport) => void) | null = null;
  const server = await listenTcpLink((t) => pending?.(t), { frameSize: 244 });
  try {
    for (let k = 0; k < WARMUP + N; k++) {
      const t = process.hrtime.bigint();
      const lockEnd = new Promise<LinkTransport>((r) => {
        pending = r;
      });
      const phoneEnd = await connectTcpLink(server.port, { frameSize: 244 });
      await once(await lockEnd, phoneEnd);
      const d = Number(process.hrtime.bigint() - t);
      phoneEnd.close();
      if (k >= WARMUP) tcp.push(d);
    }
  } finally {
    await server.close();
  }
  return [
    { name: "link.unlock_roundtrip.memory", unit: "ms", ...percentiles(memory), n: memory.length },
    { name: "link.unlock_roundtrip.tcp", unit: "ms", ...percentiles(tcp), n: tcp.length },
  ];
}
