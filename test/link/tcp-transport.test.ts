/**
 * The TCP link transport (src/link/tcp-transport.ts) runs the LinkTransport acceptance suite on
 * loopback, carries a whole unlock handshake, and refuses a peer that breaks the framing.
 */
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import type { LatchkeyError } from "../../src/core/errors.ts";
import type { AnswerOutcome } from "../../src/core/link/handshake.ts";
import { MessageLink } from "../../src/link/message-link.ts";
import { connectTcpLink, listenTcpLink, type TcpLinkServer } from "../../src/link/tcp-transport.ts";
import type { LinkTransport } from "../../src/link/transport.ts";
import { phoneUnlock, serveUnlock } from "../../src/link/unlock.ts";
import { answerOptions, c, lockFor, NOW, wallet } from "../support/link-fixtures.ts";
import { runLinkTransportTests } from "../support/link-transport.acceptance.ts";

const servers: TcpLinkServer[] = [];

/** A connected pair over loopback: [phone end, lock end]. */
async function tcpPair(frameSize: number): Promise<[LinkTransport, LinkTransport]> {
  let accepted: ((t: LinkTransport) => void) | null = null;
  const lockEnd = new Promise<LinkTransport>((r) => {
    accepted = r;
  });
  const server = await listenTcpLink((t) => accepted?.(t), { frameSize });
  servers.push(server);
  const phone = await connectTcpLink(server.port, { frameSize });
  return [phone, await lockEnd];
}

runLinkTransportTests("tcp (loopback)", tcpPair, async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe("tcp link transport", () => {
  it("closes with LK_LINK_LIMIT when the peer sends a frame longer than the frame size", async () => {
    let lockEnd: LinkTransport | null = null;
    const server = await listenTcpLink(
      (t) => {
        lockEnd = t;
      },
      { frameSize: 20 },
    );
    try {
      const raw = connect({ port: server.port, host: "127.0.0.1" });
      await new Promise((r) => raw.once("connect", r));
      const got: Uint8Array[] = [];
      const closed = new Promise<LatchkeyError | null>((resolve) => {
        const wait = (): void => {
          const end = lockEnd as LinkTransport | null;
          if (!end) {
            setTimeout(wait, 1);
            return;
          }
          end.onFrame((f) => got.push(f));
          end.onClose(resolve);
        };
        wait();
      });
      raw.write(Buffer.from([3, 1, 2, 3, 21, ...new Array(21).fill(0)]));
      const reason = await closed;
      expect(reason?.code).toBe("LK_LINK_LIMIT");
      expect(got).toEqual([Uint8Array.of(1, 2, 3)]);
      raw.destroy();
    } finally {
      await server.close();
    }
  });

  it("refuses to connect to a closed port with LK_LINK_CLOSED", async () => {
    const server = await listenTcpLink(() => {});
    const port = server.port;
    await server.close();
    await expect(connectTcpLink(port)).rejects.toMatchObject({ code: "LK_LINK_CLOSED" });
  });
});

describe("an unlock over TCP", () => {
  it("runs the whole handshake with a 3-link chain and 244-byte frames", async () => {
    const w = wallet(3, CoseAlg.EdDSA);
    const lock = lockFor(w.owner);
    let served: Promise<AnswerOutcome> | null = null;
    const server = await listenTcpLink(
      (t) => {
        served = serveUnlock(new MessageLink(t), lock, { wallNow: () => NOW });
      },
      { frameSize: 244 },
    );
    try {
      const phone = await connectTcpLink(server.port, { frameSize: 244 });
      const r = await phoneUnlock(c, new MessageLink(phone), answerOptions(w));
      const outcome = await (served as Promise<AnswerOutcome> | null)!;
      expect(outcome.ok).toBe(true);
      expect(r.result).toBeDefined();
      phone.close();
    } finally {
      await server.close();
    }
  });
});
