/**
 * The hybrid logical clock of management operations (src/core/ops/hlc.ts, docs/protocol/operations.md
 * § "Clock"): the tick and receive rules, the drift bound, counter overflow, the total order and its two
 * encodings, and the strict decoders under random and mutated input.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isLatchkeyError, LatchkeyError } from "../../src/core/errors.ts";
import {
  compareHlc,
  DEFAULT_MAX_DRIFT_MS,
  type Hlc,
  HybridLogicalClock,
  hlc,
  hlcFromBytes,
  hlcFromText,
  hlcReceive,
  hlcTick,
  hlcToBytes,
  hlcToText,
  MAX_COUNTER,
  MAX_WALL_MS,
} from "../../src/core/ops/hlc.ts";
import { Milliseconds } from "../../src/core/units.ts";

const RUN = { seed: 4242 } as const;
const NODE_A = "00000000000000a1";
const NODE_B = "00000000000000b2";
const T0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

const arbNode = fc.constantFrom(NODE_A, NODE_B, "0000000000000000", "ffffffffffffffff", "7f00000000000001");
/** Stamps crowded around a few values, so ties in wall time and counter are common. */
const arbHlc: fc.Arbitrary<Hlc> = fc
  .record({
    wallMs: fc.oneof(
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: T0, max: T0 + 3 }),
      fc.integer({ min: 0, max: MAX_WALL_MS }),
      fc.constant(MAX_WALL_MS),
    ),
    counter: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: MAX_COUNTER })),
    nodeId: arbNode,
  })
  .map((r) => hlc(r.wallMs, r.counter, r.nodeId));

function sign(n: number): number {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function codeOf(f: () => unknown): string {
  try {
    f();
    return "ok";
  } catch (e) {
    if (e instanceof LatchkeyError) return e.code;
    throw e;
  }
}

describe("HLC tick and receive (Kulkarni et al. 2014, Algorithm 2)", () => {
  it("tick: the wall clock moving ahead resets the counter; standing still or going back counts up", () => {
    const c = new HybridLogicalClock(NODE_A);
    expect(c.tick(T0)).toEqual(hlc(T0, 0, NODE_A));
    expect(c.tick(T0)).toEqual(hlc(T0, 1, NODE_A));
    expect(c.tick(T0 - 5000)).toEqual(hlc(T0, 2, NODE_A)); // wall clock set back: l stays
    expect(c.tick(T0 + 1)).toEqual(hlc(T0 + 1, 0, NODE_A));
  });

  it("receive: each of the four cases of the paper", () => {
    const last = hlc(T0 + 10, 4, NODE_A);
    // l == last.l == m.l: max(c) + 1
    expect(hlcReceive(last, hlc(T0 + 10, 7, NODE_B), NODE_A, T0)).toEqual(hlc(T0 + 10, 8, NODE_A));
    // l == last.l only: last.c + 1
    expect(hlcReceive(last, hlc(T0 + 5, 9, NODE_B), NODE_A, T0)).toEqual(hlc(T0 + 10, 5, NODE_A));
    // l == m.l only: m.c + 1
    expect(hlcReceive(last, hlc(T0 + 20, 9, NODE_B), NODE_A, T0)).toEqual(hlc(T0 + 20, 10, NODE_A));
    // l == pt: 0
    expect(hlcReceive(last, hlc(T0 + 20, 9, NODE_B), NODE_A, T0 + 30)).toEqual(hlc(T0 + 30, 0, NODE_A));
  });

  it("refuses a stamp too far ahead of local time with LK_OP_CLOCK_DRIFT and leaves the clock as it was", () => {
    const c = new HybridLogicalClock(NODE_A, { maxDriftMs: Milliseconds(60_000) });
    const before = c.tick(T0);
    expect(c.receive(hlc(T0 + 60_000, 3, NODE_B), T0)).toEqual(hlc(T0 + 60_000, 4, NODE_A)); // at the bound
    const mid = c.last;
    let err: unknown;
    try {
      c.receive(hlc(T0 + 60_002, 0, NODE_B), T0);
    } catch (e) {
      err = e;
    }
    expect(isLatchkeyError(err, "LK_OP_CLOCK_DRIFT")).toBe(true);
    expect(c.last).toEqual(mid);
    expect(compareHlc(before, mid)).toBe(-1);
    expect(DEFAULT_MAX_DRIFT_MS).toBe(300_000);
    // A stamp from the past is always taken (an operation made long ago, delivered late).
    expect(codeOf(() => c.receive(hlc(0, 0, NODE_B), T0))).toBe("ok");
  });

  it("borrows a millisecond when the counter would overflow", () => {
    const full = hlc(T0, MAX_COUNTER, NODE_A);
    expect(hlcTick(full, NODE_A, T0)).toEqual(hlc(T0 + 1, 0, NODE_A));
    expect(hlcReceive(hlc(T0, 3, NODE_A), full, NODE_A, T0)).toEqual(hlc(T0 + 1, 0, NODE_A));
    expect(codeOf(() => hlcTick(hlc(MAX_WALL_MS, MAX_COUNTER, NODE_A), NODE_A, MAX_WALL_MS))).toBe(
      "LK_INVALID_INPUT",
    );
  });

  it("refuses malformed arguments with LK_INVALID_INPUT", () => {
    expect(codeOf(() => new HybridLogicalClock("A1"))).toBe("LK_INVALID_INPUT");
    expect(codeOf(() => new HybridLogicalClock(NODE_A).tick(1.5))).toBe("LK_INVALID_INPUT");
    expect(codeOf(() => new HybridLogicalClock(NODE_A).tick(-1))).toBe("LK_INVALID_INPUT");
    expect(codeOf(() => hlc(0, MAX_COUNTER + 1, NODE_A))).toBe("LK_INVALID_INPUT");
    expect(codeOf(() => hlc(MAX_WALL_MS + 1, 0, NODE_A))).toBe("LK_INVALID_INPUT");
    expect(codeOf(() => hlc(0, 0, "00000000000000A1"))).toBe("LK_INVALID_INPUT");
  });

  it("is monotonic: every stamp is after the previous one and after every stamp received (property)", () => {
    type Step =
      | { readonly kind: "tick"; readonly dt: number }
      | { readonly kind: "recv"; readonly dt: number; readonly skew: number; readonly counter: number };
    const arbStep: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ kind: fc.constant("tick" as const), dt: fc.integer({ min: -2000, max: 2000 }) }),
      fc.record({
        kind: fc.constant("recv" as const),
        dt: fc.integer({ min: -2000, max: 2000 }),
        skew: fc.integer({ min: -10_000, max: 400_000 }),
        counter: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(MAX_COUNTER)),
      }),
    );
    let steps = 0;
    let refused = 0;
    fc.assert(
      fc.property(fc.array(arbStep, { minLength: 1, maxLength: 60 }), (plan) => {
        const c = new HybridLogicalClock(NODE_A);
        let wall = T0;
        let maxWall = T0;
        let prev = c.last;
        for (const s of plan) {
          wall = Math.max(0, wall + s.dt);
          maxWall = Math.max(maxWall, wall);
          steps++;
          if (s.kind === "tick") {
            const h = c.tick(wall);
            expect(compareHlc(prev, h)).toBe(-1);
            expect(h.wallMs).toBeGreaterThanOrEqual(wall);
            prev = h;
          } else {
            const remote = hlc(Math.max(0, wall + s.skew), s.counter, NODE_B);
            if (remote.wallMs - wall > DEFAULT_MAX_DRIFT_MS) {
              expect(codeOf(() => c.receive(remote, wall))).toBe("LK_OP_CLOCK_DRIFT");
              expect(c.last).toEqual(prev);
              refused++;
              continue;
            }
            const h = c.receive(remote, wall);
            expect(compareHlc(prev, h)).toBe(-1);
            expect(compareHlc(remote, h)).toBe(-1);
            expect(h.wallMs).toBeGreaterThanOrEqual(wall);
            // Bounded: never further ahead of the latest local time than the drift bound plus one
            // borrowed millisecond (a clock set back keeps its l, so compare with the latest time seen).
            expect(h.wallMs - maxWall).toBeLessThanOrEqual(DEFAULT_MAX_DRIFT_MS + 1);
            prev = h;
          }
        }
      }),
      { ...RUN, numRuns: 1000 },
    );
    console.log(`hlc monotonic: ${steps} tick/receive steps, ${refused} refused for drift, 0 out of order`);
  });
});

describe("HLC order and encodings", () => {
  it("the order is total, and text and bytes sort exactly as it does (property)", () => {
    let pairs = 0;
    fc.assert(
      fc.property(arbHlc, arbHlc, arbHlc, (a, b, c) => {
        pairs++;
        const ab = compareHlc(a, b);
        expect(compareHlc(b, a)).toBe(-ab || 0);
        expect(ab === 0).toBe(a.wallMs === b.wallMs && a.counter === b.counter && a.nodeId === b.nodeId);
        const ta = hlcToText(a);
        const tb = hlcToText(b);
        expect(ta).toHaveLength(34);
        expect(sign(ta < tb ? -1 : ta > tb ? 1 : 0)).toBe(ab);
        expect(sign(compareBytes(hlcToBytes(a), hlcToBytes(b)))).toBe(ab);
        if (ab <= 0 && compareHlc(b, c) <= 0) expect(compareHlc(a, c)).toBeLessThanOrEqual(0);
        expect(hlcFromText(ta)).toEqual(a);
        expect(hlcFromBytes(hlcToBytes(a))).toEqual(a);
      }),
      { ...RUN, numRuns: 5000 },
    );
    console.log(`hlc order: ${pairs} triples, text and bytes order agree with compareHlc`);
  });

  it("encodes a known stamp", () => {
    const h = hlc(T0, 0x1234, NODE_A);
    expect(hlcToText(h)).toBe("019b76daa800-1234-00000000000000a1");
    expect(Buffer.from(hlcToBytes(h)).toString("hex")).toBe("019b76daa800123400000000000000a1");
  });

  it("the strict decoders refuse random and mutated input with LK_OP_MALFORMED (fuzz)", () => {
    const tally = new Map<string, number>();
    const count = (k: string) => tally.set(k, (tally.get(k) ?? 0) + 1);
    // Random byte strings of any length: exactly the 16-byte ones are stamps.
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ minLength: 0, maxLength: 40 }),
          fc.uint8Array({ minLength: 16, maxLength: 16 }),
        ),
        (b) => {
          const code = codeOf(() => hlcFromBytes(b));
          count(`bytes:${code}`);
          expect(code).toBe(b.length === 16 ? "ok" : "LK_OP_MALFORMED");
          if (code === "ok") expect(hlcToBytes(hlcFromBytes(b))).toEqual(b);
        },
      ),
      { ...RUN, numRuns: 6000 },
    );
    // Random text, and mutations of valid text (case, separators, digits, length).
    const arbText = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.stringMatching(/^[0-9a-fA-F-]{30,38}$/),
      fc
        .tuple(arbHlc, fc.nat({ max: 33 }), fc.constantFrom("A", "g", "-", "", "00", " ", "\u0660"))
        .map(([h, i, ch]) => {
          const t = hlcToText(h);
          return t.slice(0, i) + ch + t.slice(i + 1);
        }),
    );
    fc.assert(
      fc.property(arbText, (s) => {
        const code = codeOf(() => hlcFromText(s));
        count(`text:${code}`);
        const valid = /^[0-9a-f]{12}-[0-9a-f]{4}-[0-9a-f]{16}$/.test(s);
        expect(code).toBe(valid ? "ok" : "LK_OP_MALFORMED");
        if (valid) expect(hlcToText(hlcFromText(s))).toBe(s);
      }),
      { ...RUN, numRuns: 6000 },
    );
    const total = [...tally.values()].reduce((a, b) => a + b, 0);
    console.log(`hlc fuzz: ${total} inputs, ${JSON.stringify(Object.fromEntries(tally))}`);
    expect(total).toBe(12_000);
  });
});
