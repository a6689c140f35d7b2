/**
 * Phone↔lock unlock round trip (issue 4 groundwork; docs/protocol/link.md), part of `npm run bench`:
 *
 *   link.unlock_roundtrip.memory  one whole unlock (challenge, answer with a 3-link Ed25519 chain, result)
 *                                 over the in-memory transport with 20-byte frames: from the phone asking
 *                                 to the phone holding the lock's verdict, both ends in this process
 *   link.unlock_roundtrip.tcp     the same over a loopback TCP connection (a new connection each time)
 *
 *   link.unlock_hub.tcp           a whole unlock through a real hub (`startHub`: SQLite store, audit log
 *                                 with synchronous=FULL): the phone connects to the hub's link bridge,
 *                                 selects the lock and answers with a 2-link ES256 chain (owner → hub →
 *                                 phone) carrying the hub's revocation list; the lock's gate verifies
 *                                 (with its link cache), decides, commits the audit event durably and
 *                                 replies. The bolt is already open after the first, so the motor is out.
 *
 * The first two have no link cache at the lock: every unlock verifies the chain and the transcript
 * signature (4 signature verifications), so they are the cold cost. Every unlock must be accepted.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoseAlg } from "../src/core/envelope/cose-sign1.ts";
import { NumericDate } from "../src/core/envelope/cwt.ts";
import { ALL_KEY_RIGHTS, issueKey } from "../src/core/keys/digital-key.ts";
import { encodeSelect, IntentKind, LinkAction } from "../src/core/link/messages.ts";
import { Milliseconds } from "../src/core/units.ts";
import { startHub } from "../src/hub/server.ts";
import { memoryTransportPair } from "../src/link/memory-transport.ts";
import { MessageLink } from "../src/link/message-link.ts";
import { connectTcpLink, listenTcpLink } from "../src/link/tcp-transport.ts";
import type { LinkTransport } from "../src/link/transport.ts";
import { phoneUnlock, serveUnlock } from "../src/link/unlock.ts";
import { HUB_LISTS } from "../src/store/sqlite/phone-key-store.ts";
import { answerOptions, c, ed, lockFor, NOW, p256, wallet } from "../test/support/link-fixtures.ts";
import { type Metric, percentiles } from "./stats.ts";

const N = Number(process.env.BENCH_LINK_N ?? 300);
const WARMUP = 30;

/** A whole unlock through a running hub's bridge (see the module doc). */
async function benchHub(): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-bench-link-"));
  const running = await startHub({
    dataDir: dir,
    port: 0,
    host: "127.0.0.1",
    timeZone: "UTC",
    motorTime: Milliseconds(1),
    print: () => {},
  });
  try {
    const hub = running.hub;
    const { setupCode } = { setupCode: readFileSync(join(dir, "setup-code"), "utf8").trim() };
    const owner = ed();
    const nowS = Math.floor(Date.now() / 1000);
    const hubLink = issueKey(c, owner, {
      serial: c.randomBytes(16),
      holder: hub.keys.signerKey,
      scope: { kind: "site", id: hub.deviceId },
      nbf: NumericDate(nowS - 60),
      exp: NumericDate(nowS + 365 * 86_400),
      rights: ALL_KEY_RIGHTS,
      schedule: null,
      leaseSeconds: null,
    });
    const { user } = hub.claim(setupCode, "Bench Owner", { root: owner.pk, hubLink });
    const actor = { userId: user.id, role: user.role };
    const phone = p256();
    const key = hub.keys.issue(actor, {
      holder: phone.pk,
      name: "bench",
      rights: ["unlock", "lock"],
      until: Date.now() + 86_400_000,
    }).record;
    const other = hub.keys.issue(actor, {
      holder: phone.pk,
      name: "x",
      rights: ["unlock"],
      until: Date.now() + 86_400_000,
    }).record;
    hub.keys.revoke(actor, other.serial);
    const lists = hub.store.phoneKeys
      .revocationLists(HUB_LISTS)
      .map((l) => ({ signerChain: l.signerChain, object: l.list }));
    const port = Number(running.linkUrl!.split(":").at(-1));
    const out: number[] = [];
    for (let k = 0; k < WARMUP + N; k++) {
      const t = process.hrtime.bigint();
      const end = await connectTcpLink(port, { frameSize: 244 });
      const link = new MessageLink(end, { limits: { maxMessageBytes: 16_384 } });
      link.send(encodeSelect("front-door"));
      const r = await phoneUnlock(c, link, {
        chain: key.chain,
        holder: { alg: phone.alg, privateKey: phone.privateKey },
        action: LinkAction.Unlock,
        intent: { kind: IntentKind.UserAction, ageMs: Milliseconds(0) },
        expectLockId: "front-door",
        carry: { lists, status: null, time: null },
        maxMessageBytes: 16_384,
      });
      const d = Number(process.hrtime.bigint() - t);
      end.close();
      if (!r.result.accepted) throw new Error(`a hub unlock was refused in the bench: ${r.result.code}`);
      if (k >= WARMUP) out.push(d);
    }
    return out;
  } finally {
    await running.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

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
  const hub = await benchHub();
  return [
    { name: "link.unlock_roundtrip.memory", unit: "ms", ...percentiles(memory), n: memory.length },
    { name: "link.unlock_roundtrip.tcp", unit: "ms", ...percentiles(tcp), n: tcp.length },
    { name: "link.unlock_hub.tcp", unit: "ms", ...percentiles(hub), n: hub.length },
  ];
}
