import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson } from "../../src/core/audit/canonical.ts";
import {
  type AuditEvent,
  chainEvent,
  GENESIS_HASH,
  signAnchor,
  signCheckpoint,
  verifyChain,
} from "../../src/core/audit/chain.ts";
import { EpochMs } from "../../src/core/units.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";

const seed = new Uint8Array(32).fill(7);
const pub = nodeCrypto.ed25519PublicKey(seed);
const DEV = "hub_test";

function build(n: number): AuditEvent[] {
  const out: AuditEvent[] = [];
  let seq = 0;
  let hash = GENESIS_HASH;
  for (let i = 0; i < n; i++) {
    const e = chainEvent(nodeCrypto, seq, hash, {
      at: EpochMs(1_700_000_000_000 + i),
      lockId: "front-door",
      kind: "access.granted",
      data: { userId: `u${i % 3}`, source: "keypad" },
    });
    out.push(e);
    seq = e.seq;
    hash = e.hash;
  }
  return out;
}

describe("canonical JSON", () => {
  it("sorts keys and is independent of insertion order", () => {
    expect(canonicalJson({ b: 1, a: [true, null, "x"], c: { z: 1, y: 2 } })).toBe(
      '{"a":[true,null,"x"],"b":1,"c":{"y":2,"z":1}}',
    );
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.oneof(fc.integer(), fc.string(), fc.boolean())), (o) => {
        const reversed = Object.fromEntries(Object.entries(o).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(o));
        expect(JSON.parse(canonicalJson(o))).toEqual(o);
      }),
    );
  });
  it("refuses non-JSON values with a coded error", () => {
    expect(() => canonicalJson({ x: Number.NaN })).toThrow(/LK_INVALID_INPUT/);
    expect(() => canonicalJson({ x: () => 1 })).toThrow(/LK_INVALID_INPUT/);
  });
});

describe("hash chain and checkpoints", () => {
  it("verifies an intact chain with checkpoints", () => {
    const events = build(50);
    const cps = new Map(
      [20, 50].map((s) => [s, signCheckpoint(nodeCrypto, DEV, seed, events[s - 1]!, EpochMs(0))]),
    );
    const v = verifyChain(nodeCrypto, DEV, pub, null, events, cps);
    expect(v).toMatchObject({
      ok: true,
      eventsChecked: 50,
      checkpointsChecked: 2,
      unsignedTail: 0,
      lastSeq: 50,
    });
  });

  it("detects any single modified, removed or reordered event", () => {
    const events = build(30);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 29 }),
        fc.constantFrom("data", "at", "kind", "remove", "swap"),
        (i, how) => {
          const copy = [...events];
          const e = copy[i]!;
          if (how === "data") copy[i] = { ...e, data: { ...e.data, userId: "mallory" } };
          if (how === "at") copy[i] = { ...e, at: EpochMs(e.at + 1) };
          if (how === "kind") copy[i] = { ...e, kind: "access.denied" };
          if (how === "remove") copy.splice(i, 1);
          if (how === "swap") {
            const j = i === 29 ? 28 : i + 1;
            [copy[i], copy[j]] = [copy[j]!, copy[i]!];
          }
          const v = verifyChain(nodeCrypto, DEV, pub, null, copy, new Map());
          // Removing the last event leaves a shorter but valid chain: only a checkpoint can reveal that.
          if (how === "remove" && i === 29) expect(v.ok).toBe(true);
          else expect(v.ok).toBe(false);
        },
      ),
    );
  });

  it("a checkpoint reveals truncation of the tail", () => {
    const events = build(10);
    const cps = new Map([[10, signCheckpoint(nodeCrypto, DEV, seed, events[9]!, EpochMs(0))]]);
    const v = verifyChain(nodeCrypto, DEV, pub, null, events.slice(0, 9), cps);
    expect(v.ok).toBe(false);
    expect(v.problem?.what).toMatch(/missing/);
  });

  it("refuses a checkpoint signed by another key or over another hash", () => {
    const events = build(5);
    const other = new Uint8Array(32).fill(9);
    const forged = new Map([[5, signCheckpoint(nodeCrypto, DEV, other, events[4]!, EpochMs(0))]]);
    expect(verifyChain(nodeCrypto, DEV, pub, null, events, forged).problem?.what).toMatch(/signature/);
    const wrongHash = new Map([
      [5, { ...signCheckpoint(nodeCrypto, DEV, seed, events[4]!, EpochMs(0)), hash: "0".repeat(64) }],
    ]);
    expect(verifyChain(nodeCrypto, DEV, pub, null, events, wrongHash).ok).toBe(false);
  });

  it("verifies from a signed trim anchor, and refuses a forged one", () => {
    const events = build(20);
    const anchor = signAnchor(nodeCrypto, DEV, seed, events[9]!, EpochMs(0));
    expect(verifyChain(nodeCrypto, DEV, pub, anchor, events.slice(10), new Map()).ok).toBe(true);
    expect(
      verifyChain(nodeCrypto, DEV, pub, { ...anchor, throughSeq: 8 }, events.slice(10), new Map()).ok,
    ).toBe(false);
  });

  it("the event hash is fixed by the spec (test vector)", () => {
    const e = chainEvent(nodeCrypto, 0, GENESIS_HASH, {
      at: EpochMs(1_767_603_600_000),
      lockId: "front-door",
      kind: "access.granted",
      data: { source: "keypad", userId: "usr_alice" },
    });
    const body =
      '{"at":1767603600000,"data":{"source":"keypad","userId":"usr_alice"},"kind":"access.granted","lockId":"front-door","seq":1}';
    const expected = Buffer.from(
      nodeCrypto.sha256(new TextEncoder().encode(`LK-AUDIT-v1\n${GENESIS_HASH}\n${body}`)),
    ).toString("hex");
    expect(e.hash).toBe(expected);
  });
});
