/**
 * The one acceptance suite of the LinkTransport port (src/link/transport.ts). Every adapter runs it:
 *   runLinkTransportTests("in-memory", (frameSize) => memoryTransportPair({ frameSize }))
 * A lossy or delaying adapter setup must be lossless here; the suite checks order, integrity, limits and
 * closing.
 */
import { afterAll, describe, expect, it } from "vitest";
import { isLatchkeyError, type LatchkeyError } from "../../src/core/errors.ts";
import type { LinkTransport } from "../../src/link/transport.ts";

type Setup = (frameSize: number) => Promise<[LinkTransport, LinkTransport]> | [LinkTransport, LinkTransport];

function collect(t: LinkTransport): Uint8Array[] {
  const got: Uint8Array[] = [];
  t.onFrame((f) => got.push(f));
  return got;
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 1));
  }
}

export function runLinkTransportTests(name: string, setup: Setup, teardown?: () => Promise<void>): void {
  describe(`LinkTransport acceptance: ${name}`, () => {
    if (teardown) afterAll(teardown);
    it("carries frames both ways, in order and intact", async () => {
      const [a, b] = await setup(244);
      expect(a.frameSize).toBe(244);
      const atA = collect(a);
      const atB = collect(b);
      const sent: Uint8Array[] = [];
      for (let i = 0; i < 200; i++) {
        const f = new Uint8Array(1 + (i % 244)).map((_, j) => (i * 31 + j) & 0xff);
        sent.push(f);
        a.send(f);
        b.send(f);
      }
      await until(() => atA.length === 200 && atB.length === 200);
      expect(atB).toEqual(sent);
      expect(atA).toEqual(sent);
      a.close();
    });

    it("does not let the sender change a frame after sending it", async () => {
      const [a, b] = await setup(20);
      const atB = collect(b);
      const f = Uint8Array.of(1, 2, 3);
      a.send(f);
      f[0] = 9;
      await until(() => atB.length === 1);
      expect(atB[0]).toEqual(Uint8Array.of(1, 2, 3));
      a.close();
    });

    it("refuses empty and oversized frames with LK_LINK_LIMIT", async () => {
      const [a] = await setup(20);
      for (const n of [0, 21, 300]) {
        expect(() => a.send(new Uint8Array(n))).toThrow(expect.objectContaining({ code: "LK_LINK_LIMIT" }));
      }
      a.send(new Uint8Array(20));
      a.close();
    });

    it("closes both ends once, refuses sends after close, delivers nothing after it", async () => {
      const [a, b] = await setup(20);
      const atB = collect(b);
      const closes: (LatchkeyError | null)[] = [];
      a.onClose((r) => closes.push(r));
      b.onClose((r) => closes.push(r));
      a.send(Uint8Array.of(1));
      b.close();
      b.close();
      expect(b.closed).toBe(true);
      // A network transport learns of the peer's close a moment later; the in-memory pair at once.
      await until(() => a.closed);
      let err: unknown;
      try {
        a.send(Uint8Array.of(2));
      } catch (e) {
        err = e;
      }
      expect(isLatchkeyError(err, "LK_LINK_CLOSED")).toBe(true);
      await until(() => closes.length === 2);
      await new Promise((r) => setTimeout(r, 20));
      expect(closes).toEqual([null, null]);
      expect(atB.length).toBeLessThanOrEqual(1);
    });
  });
}
