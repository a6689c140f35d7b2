/**
 * Link framing and the in-memory transport (docs/protocol/link.md § "Framing", § "Transports"): split and
 * reassemble round-trip at every frame size; the reassembler's limits and errors; the transport port's
 * acceptance suite on the in-memory pair; messages over a lossy link fail closed.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isLatchkeyError } from "../../src/core/errors.ts";
import {
  FRAME_HEADER_BYTES,
  MAX_FRAME_SIZE,
  MIN_FRAME_SIZE,
  Reassembler,
  splitMessage,
} from "../../src/core/link/frames.ts";
import { Milliseconds, MonotonicMs } from "../../src/core/units.ts";
import { memoryTransportPair } from "../../src/link/memory-transport.ts";
import { MessageLink } from "../../src/link/message-link.ts";
import { runLinkTransportTests } from "../support/link-transport.acceptance.ts";

const t0 = MonotonicMs(0);

function codeOf(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (e) {
    return isLatchkeyError(e) ? e.code : `not coded: ${String(e)}`;
  }
}

describe("frames", () => {
  it("split then reassemble gives the message back, at every frame size", () => {
    let runs = 0;
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 4096 }),
        fc.integer({ min: MIN_FRAME_SIZE, max: MAX_FRAME_SIZE }),
        fc.integer({ min: 0, max: 127 }),
        (msg, size, id) => {
          runs++;
          const frames = splitMessage(msg, id, size);
          expect(frames.every((f) => f.length <= size && f.length > FRAME_HEADER_BYTES)).toBe(true);
          expect(frames.slice(0, -1).every((f) => f.length === size)).toBe(true);
          const r = new Reassembler({ frameSize: size });
          const out = frames.map((f) => r.push(f, t0));
          expect(out.slice(0, -1).every((m) => m === null)).toBe(true);
          expect(out[out.length - 1]).toEqual(msg);
          expect(r.pending).toBe(0);
        },
      ),
      { numRuns: 500 },
    );
    console.log(`frames: ${runs} split/reassemble round trips`);
  });

  it("interleaves up to maxConcurrent messages and refuses one more", () => {
    const r = new Reassembler({ frameSize: 20, maxConcurrent: 2 });
    const a = splitMessage(new Uint8Array(40).fill(1), 1, 20);
    const b = splitMessage(new Uint8Array(40).fill(2), 2, 20);
    const c = splitMessage(new Uint8Array(40).fill(3), 3, 20);
    expect(r.push(a[0]!, t0)).toBeNull();
    expect(r.push(b[0]!, t0)).toBeNull();
    expect(codeOf(() => r.push(c[0]!, t0))).toBe("LK_LINK_LIMIT");
    expect(r.push(a[1]!, t0)).toBeNull();
    expect(r.push(b[1]!, t0)).toBeNull();
    expect(r.push(a[2]!, t0)).toEqual(new Uint8Array(40).fill(1));
    expect(r.push(b[2]!, t0)).toEqual(new Uint8Array(40).fill(2));
  });

  it("refuses bad frames with distinct codes", () => {
    const r = () => new Reassembler({ frameSize: 20, maxMessageBytes: 100, maxFrames: 8 });
    expect(codeOf(() => r().push(Uint8Array.of(0x81, 0), t0))).toBe("LK_LINK_MALFORMED"); // no payload
    expect(codeOf(() => r().push(new Uint8Array(21), t0))).toBe("LK_LINK_MALFORMED"); // too long
    expect(codeOf(() => r().push(Uint8Array.of(0x81, 1, 9), t0))).toBe("LK_LINK_MALFORMED"); // no first frame
    const x = r();
    x.push(Uint8Array.of(5, 0, 9), t0);
    expect(codeOf(() => x.push(Uint8Array.of(5, 2, 9), t0))).toBe("LK_LINK_MALFORMED"); // gap
    expect(x.pending).toBe(0);
    const big = splitMessage(new Uint8Array(101), 1, 20);
    const y = r();
    expect(codeOf(() => big.forEach((f) => void y.push(f, t0)))).toBe("LK_LINK_LIMIT");
    const z = r();
    const nine = Array.from({ length: 9 }, (_, i) => Uint8Array.of(i === 8 ? 0x83 : 3, i, 1));
    expect(codeOf(() => nine.forEach((f) => void z.push(f, t0)))).toBe("LK_LINK_LIMIT"); // 9 frames > 8
    const w = new Reassembler({ frameSize: 20, timeout: Milliseconds(100) });
    w.push(Uint8Array.of(4, 0, 1), t0);
    expect(codeOf(() => w.push(Uint8Array.of(0x84, 1, 1), MonotonicMs(101)))).toBe("LK_LINK_TIMEOUT");
    w.push(Uint8Array.of(4, 0, 1), t0);
    expect(w.expire(MonotonicMs(500))).toBe(1);
    expect(codeOf(() => splitMessage(new Uint8Array(257 * 18), 0, 20))).toBe("LK_LINK_LIMIT");
    expect(codeOf(() => splitMessage(new Uint8Array(1), 128, 20))).toBe("LK_INVALID_INPUT");
    expect(codeOf(() => splitMessage(new Uint8Array(1), 0, 19))).toBe("LK_INVALID_INPUT");
    expect(codeOf(() => splitMessage(new Uint8Array(1), 0, 245))).toBe("LK_INVALID_INPUT");
  });
});

runLinkTransportTests("in-memory", (frameSize) => memoryTransportPair({ frameSize }));
runLinkTransportTests("in-memory, 2 ms delay", (frameSize) =>
  memoryTransportPair({ frameSize, delay: Milliseconds(2) }),
);

describe("messages over the in-memory transport", () => {
  it("delivers messages of every size with their arrival time", async () => {
    const [a, b] = memoryTransportPair({ frameSize: 20 });
    const la = new MessageLink(a);
    const lb = new MessageLink(b);
    const sizes = [1, 17, 18, 19, 100, 1000, 4096];
    for (const n of sizes) la.send(new Uint8Array(n).fill(n & 0xff));
    for (const n of sizes) {
      const got = await lb.next(Milliseconds(1000));
      expect(got.message).toEqual(new Uint8Array(n).fill(n & 0xff));
      expect(got.at).toBeGreaterThan(0);
    }
    la.close();
  });

  it("a lost frame never yields a wrong message: the link fails or times out", async () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let delivered = 0;
    let failed = 0;
    for (let i = 0; i < 50; i++) {
      const [a, b] = memoryTransportPair({ frameSize: 20, loss: 0.05, random });
      const la = new MessageLink(a);
      const lb = new MessageLink(b);
      const msg = new Uint8Array(200).map((_, j) => (i + j) & 0xff);
      la.send(msg);
      try {
        const got = await lb.next(Milliseconds(50));
        expect(got.message).toEqual(msg);
        delivered++;
      } catch (e) {
        expect(isLatchkeyError(e)).toBe(true);
        failed++;
      }
      la.close();
    }
    console.log(
      `lossy link (5% frames lost): ${delivered} messages intact, ${failed} failed closed, 0 wrong`,
    );
    expect(delivered + failed).toBe(50);
  });

  it("closes the link on a framing error and rejects waiting readers", async () => {
    const [a, b] = memoryTransportPair({ frameSize: 20 });
    const lb = new MessageLink(b);
    const waiting = lb.next(Milliseconds(1000));
    a.send(Uint8Array.of(0x81, 7, 1)); // index 7 without a first frame
    await expect(waiting).rejects.toMatchObject({ code: "LK_LINK_MALFORMED" });
    expect(a.closed).toBe(true);
  });
});
