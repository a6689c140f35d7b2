/**
 * Fuzzing the link's parsers with 100,000 decoder inputs, ~69,000 frames and 5,000 whole answers (docs/protocol/link.md § "Limits"): the frame reassembler, the message
 * decoders and the lock's whole answer path, with fast-check (seeded, so a failure reproduces). Every input
 * must be accepted or refused with a LatchkeyError of an allowed code; nothing else may escape, the
 * reassembler's buffer must stay within maxConcurrent × maxMessageBytes, and the slowest input is reported.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { concatBytes } from "../../src/core/crypto.ts";
import { encodeDeterministic } from "../../src/core/envelope/cbor.ts";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import { LatchkeyError } from "../../src/core/errors.ts";
import { FRAME_HEADER_BYTES, Reassembler, splitMessage } from "../../src/core/link/frames.ts";
import { answerChallenge, LockHandshake } from "../../src/core/link/handshake.ts";
import {
  decodeMessage,
  decodeProof,
  decodeResultBody,
  encodeAbort,
  encodeResultBody,
  encodeSelect,
} from "../../src/core/link/messages.ts";
import { Milliseconds, MonotonicMs } from "../../src/core/units.ts";
import { answerOptions, c, lockFor, mono, NOW, wallet } from "../support/link-fixtures.ts";

const SEED = 0x11c4;
const LINK_CODES = new Set([
  "LK_LINK_MALFORMED",
  "LK_LINK_LIMIT",
  "LK_LINK_TIMEOUT",
  "LK_LINK_VERSION",
  "LK_LINK_PROTOCOL",
  "LK_LINK_DECRYPT",
]);
let slowest = 0;

/** Run f; it must return or throw a LatchkeyError with an allowed code. Returns the code or "ok". */
function coded(f: () => unknown, allowed: ReadonlySet<string> = LINK_CODES): string {
  const t = performance.now();
  try {
    f();
    return "ok";
  } catch (e) {
    if (!(e instanceof LatchkeyError) || !allowed.has(e.code)) throw e;
    return e.code;
  } finally {
    slowest = Math.max(slowest, performance.now() - t);
  }
}

// Valid messages to mutate: a real handshake's bytes.
const w = wallet(2, CoseAlg.EdDSA);
const lock = lockFor(w.owner);
const challenge = lock.challenge(NOW, mono(0));
const answered = answerChallenge(c, challenge, answerOptions(w));
const outcome = lock.answer(answered.answer, NOW, mono(10));
const result = LockHandshake.reply(outcome);
const proofPlain = encodeDeterministic([w.chain, 1, [1, 500], new Uint8Array(64)]);
// A Proof carrying a list, a status ticket and a time ticket (each with a signer chain).
const proofCarry = encodeDeterministic([
  w.chain,
  1,
  [1, 500],
  new Uint8Array(64),
  [[[[w.chain[0]!], new Uint8Array(40).fill(7)]], [[], new Uint8Array(30).fill(8)], null],
]);
const VALID = [
  challenge,
  answered.answer,
  result,
  encodeAbort("LK_LINK_TOO_LATE"),
  proofPlain,
  encodeResultBody({ accepted: true }),
  encodeResultBody({ accepted: false, code: "LK_LINK_REVOKED" }),
  proofCarry,
  encodeResultBody({
    accepted: false,
    code: "LK_CLOCK_UNTRUSTED",
    timeChallenge: new Uint8Array(16).fill(3),
  }),
  encodeSelect("front-door"),
];

type Mutation =
  | { op: "flip"; at: number; mask: number }
  | { op: "truncate"; at: number }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "delete"; at: number; n: number }
  | { op: "splice"; at: number; from: number; src: number; n: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    op: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 9 }),
  }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 9 }) }),
  fc.record({
    op: fc.constant("splice" as const),
    at: fc.nat(),
    from: fc.nat(),
    src: fc.nat({ max: VALID.length - 1 }),
    n: fc.integer({ min: 1, max: 40 }),
  }),
);

function mutate(b: Uint8Array, ms: readonly Mutation[]): Uint8Array {
  let x: Uint8Array = b.slice();
  for (const m of ms) {
    const at = x.length === 0 ? 0 : m.at % (x.length + 1);
    if (m.op === "flip" && x.length > 0) x[at % x.length]! ^= m.mask;
    else if (m.op === "truncate") x = x.slice(0, at);
    else if (m.op === "insert") x = concatBytes(x.subarray(0, at), m.bytes, x.subarray(at));
    else if (m.op === "delete") x = concatBytes(x.subarray(0, at), x.subarray(at + m.n));
    else if (m.op === "splice") {
      const src = VALID[m.src]!;
      const from = m.from % src.length;
      x = concatBytes(x.subarray(0, at), src.subarray(from, from + m.n), x.subarray(at));
    }
  }
  return x;
}

/** CBOR values near the messages' shapes: small and big integers, text, bytes of telling lengths, nesting. */
const leaf = fc.oneof(
  fc.integer({ min: -3, max: 6 }),
  fc.integer(),
  fc.constantFrom(2 ** 32, 2 ** 53 - 1, -(2 ** 53 - 1)),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom("", "front-door", "home", "LK_LINK_REVOKED", "LK_NOPE", "x".repeat(70)),
  fc.string({ maxLength: 10 }),
  fc.integer({ min: 0, max: 70 }).map((n) => new Uint8Array(n).fill(7)),
);
const { value: cborValue } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaf,
    fc.array(tie("value"), { maxLength: 8 }),
    fc
      .array(fc.tuple(fc.oneof(fc.integer({ min: -5, max: 5 }), fc.string({ maxLength: 3 })), tie("value")), {
        maxLength: 4,
      })
      .map((kv) => new Map(kv)),
  ),
}));
const structured = fc
  .tuple(fc.integer({ min: -1, max: 7 }), fc.array(cborValue, { maxLength: 8 }))
  .map(([type, rest]) => encodeDeterministic([type, ...rest]));

const DECODERS = [decodeMessage, decodeProof, decodeResultBody, decodeMessage] as const;
let decoderInputs = 0;
/** Each input goes to one decoder in turn (every decoder sees every kind of input). */
function decodeOne(b: Uint8Array): void {
  const decode = DECODERS[decoderInputs++ % DECODERS.length]!;
  coded(() => decode(b));
}

describe("link fuzz", () => {
  it("message decoders: random, structured and mutated inputs", () => {
    const started = performance.now();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), decodeOne), { seed: SEED, numRuns: 50_000 });
    fc.assert(fc.property(structured, decodeOne), { seed: SEED + 1, numRuns: 10_000 });
    fc.assert(
      fc.property(
        fc.nat({ max: VALID.length - 1 }),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        (i, ms) => decodeOne(mutate(VALID[i]!, ms)),
      ),
      { seed: SEED + 2, numRuns: 40_000 },
    );
    // A message over the size limit is LK_LINK_LIMIT before any parsing.
    expect(coded(() => decodeMessage(new Uint8Array(4097)))).toBe("LK_LINK_LIMIT");
    console.log(
      `fuzz decoders: ${decoderInputs} inputs (50,000 random, 10,000 structured, 40,000 mutated) over 3 decoders, all coded; slowest ${slowest.toFixed(2)} ms; ${(performance.now() - started).toFixed(0)} ms`,
    );
    expect(decoderInputs).toBe(100_000);
  });

  it("frame reassembler: random and mutated frame streams stay bounded and coded", () => {
    const limits = { frameSize: 40, maxMessageBytes: 600, maxConcurrent: 3, timeout: Milliseconds(1000) };
    const bound = limits.maxConcurrent * limits.maxMessageBytes;
    const frame = fc.oneof(
      fc.uint8Array({ maxLength: 45 }),
      // a well-formed frame with chosen id, flag and index
      fc
        .tuple(
          fc.integer({ min: 0, max: 5 }),
          fc.boolean(),
          fc.integer({ min: 0, max: 20 }),
          fc.uint8Array({ minLength: 1, maxLength: 38 }),
        )
        .map(([id, last, idx, p]) => new Uint8Array([id | (last ? 0x80 : 0), idx, ...p])),
    );
    // Valid streams of a few messages, then mutated: frames dropped, duplicated, swapped, flipped.
    const stream = fc
      .tuple(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 127 }), fc.integer({ min: 1, max: 900 })), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 255 })), {
          maxLength: 5,
        }),
      )
      .map(([msgs, edits]) => {
        const frames = msgs.flatMap(([id, n]) =>
          splitMessage(new Uint8Array(n).fill(id), id, limits.frameSize),
        );
        for (const [at, kind, mask] of edits) {
          if (frames.length === 0) break;
          const i = at % frames.length;
          if (kind === 0) frames.splice(i, 1);
          else if (kind === 1) frames.splice(i, 0, frames[i]!);
          else if (kind === 2) [frames[i], frames[0]] = [frames[0]!, frames[i]!];
          else frames[i] = frames[i]!.map((b, j) => (j === mask % frames[i]!.length ? b ^ mask : b));
        }
        return frames;
      });
    const input = fc.tuple(
      fc.oneof(fc.array(frame, { maxLength: 40 }), stream),
      fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 5 }),
    );
    let frames = 0;
    let messages = 0;
    const codes = new Map<string, number>();
    const started = performance.now();
    fc.assert(
      fc.property(input, ([fs, steps]) => {
        const r = new Reassembler(limits);
        let now = 0;
        fs.forEach((f, i) => {
          now += steps[i % steps.length]!;
          frames++;
          const code = coded(() => {
            const m = r.push(f, MonotonicMs(now));
            if (m !== null) {
              messages++;
              if (m.length > limits.maxMessageBytes) throw new Error("message over the limit");
            }
          });
          codes.set(code, (codes.get(code) ?? 0) + 1);
          if (r.bufferedBytes > bound || r.pending > limits.maxConcurrent)
            throw new Error("reassembler grew");
        });
      }),
      { seed: SEED + 3, numRuns: 4_000 },
    );
    console.log(
      `fuzz reassembler: ${frames} frames in 4000 streams, ${messages} messages completed; ` +
        `${[...codes].map(([k, n]) => `${k} ${n}`).join(", ")}; buffer ≤ ${bound} B; ${(performance.now() - started).toFixed(0)} ms`,
    );
    expect(frames).toBeGreaterThan(40_000);
    expect(FRAME_HEADER_BYTES).toBe(2);
  });

  it("the lock's answer path: mutated answers are refused with a code, never thrown", () => {
    const fuzzLock = lockFor(w.owner, {}, { ...c, randomBytes: (n) => new Uint8Array(n).fill(5) });
    const ch = fuzzLock.challenge(NOW, mono(0));
    const a = answerChallenge(c, ch, answerOptions(w));
    let accepted = 0;
    let runs = 0;
    const started = performance.now();
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
        fuzzLock.challenge(NOW, mono(0));
        const bytes = mutate(a.answer, ms);
        const o = fuzzLock.answer(bytes, NOW, mono(10));
        runs++;
        if (o.ok) {
          // Only a mutation that left the bytes as they were may pass.
          expect(bytes).toEqual(a.answer);
          accepted++;
        } else {
          expect(o.refusal.code.startsWith("LK_LINK_")).toBe(true);
        }
      }),
      { seed: SEED + 4, numRuns: 5_000 },
    );
    console.log(
      `fuzz lock.answer: ${runs} mutated answers, ${accepted} unchanged and accepted, the rest coded; ${(performance.now() - started).toFixed(0)} ms`,
    );
  });
});
