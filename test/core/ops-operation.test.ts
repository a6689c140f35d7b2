/**
 * Management operations (src/core/ops/operation.ts, docs/protocol/operations.md § "Operation"): the
 * canonical encoding of every kind, strict decoding, signing and verifying, authorisation, and a fuzz of
 * the decoders (random bytes, mutated encodings, structurally wrong claim maps, mutated envelopes).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { toHex } from "../../src/core/crypto.ts";
import { decodeStrict, encodeDeterministic } from "../../src/core/envelope/cbor.ts";
import {
  CoseAlg,
  type KeyResolver,
  type Sign1Signer,
  signSign1,
} from "../../src/core/envelope/cose-sign1.ts";
import { NumericDate } from "../../src/core/envelope/cwt.ts";
import { LatchkeyError } from "../../src/core/errors.ts";
import { keyId, type PublicKey } from "../../src/core/keys/digital-key.ts";
import { hlc } from "../../src/core/ops/hlc.ts";
import {
  authorize,
  decodeOperation,
  encodeOperation,
  makeOperation,
  type Operation,
  type OperationBody,
  OpKind,
  operationId,
  signOperation,
  verifyOperation,
} from "../../src/core/ops/operation.ts";
import { Seconds } from "../../src/core/units.ts";
import { nodeCrypto as c, generateP256 } from "../../src/platform/node-crypto.ts";

const RUN = { seed: 4242 } as const;
const T0 = 1_767_225_600_000;
const NODE = "00000000000000a1";

const ownerSeed = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const ownerKey: PublicKey = { alg: CoseAlg.EdDSA, key: c.ed25519PublicKey(ownerSeed) };
const ownerKid = keyId(c, ownerKey);
const OWNER = toHex(ownerKid);
const ownerSigner: Sign1Signer = { alg: CoseAlg.EdDSA, kid: ownerKid, privateKey: ownerSeed };
const otherKey: PublicKey = {
  alg: CoseAlg.EdDSA,
  key: c.ed25519PublicKey(Uint8Array.from({ length: 32 }, (_, i) => 0x40 + i)),
};
const OTHER = toHex(keyId(c, otherKey));
const sealed = Uint8Array.from({ length: 60 }, (_, i) => (i * 37) & 0xff);

const base = { hlc: hlc(T0, 0, NODE), actor: OWNER, scope: { kind: "lock", id: "front-door" } } as const;

/** One body of every kind. */
const SAMPLES: readonly OperationBody[] = [
  {
    ...base,
    kind: "user.upsert",
    target: "usr_ana",
    payload: { name: "Ana", userType: "unrestricted", userStatus: "occupiedEnabled", expiringTimeout: null },
  },
  { ...base, kind: "user.upsert", target: "usr_ben", payload: { userStatus: "occupiedDisabled" } },
  { ...base, kind: "user.remove", target: "usr_ana", payload: {} },
  {
    ...base,
    kind: "credential.upsert",
    target: "crd_pin1",
    payload: { userId: "usr_ana", type: "pin", locks: "all", label: "Front PIN", sealed, duress: false },
  },
  {
    ...base,
    kind: "credential.upsert",
    target: "crd_card1",
    payload: {
      userId: "usr_ana",
      type: "rfid",
      locks: ["back-door", "front-door"],
      label: null,
      cardId: "uid:04a1b2c3d4e5f6",
    },
  },
  {
    ...base,
    kind: "credential.upsert",
    target: "crd_fp1",
    payload: { userId: "usr_ana", type: "fingerprint", locks: "all", label: null, slot: 3 },
  },
  {
    ...base,
    kind: "credential.upsert",
    target: "crd_totp1",
    payload: { userId: "usr_ana", type: "totp", locks: "all", label: null, sealed, requirePin: true },
  },
  { ...base, kind: "credential.remove", target: "crd_pin1", payload: {} },
  {
    ...base,
    kind: "schedule.set",
    target: "usr_ana",
    payload: {
      weekDay: [{ daysMask: 0b0111110, startHour: 8, startMinute: 0, endHour: 18, endMinute: 30 }],
      yearDay: [{ start: "2026-07-01T00:00", end: "2026-07-15T00:00" }],
    },
  },
  { ...base, kind: "mode.set", target: "front-door", payload: { mode: "vacation" } },
  { ...base, kind: "role.set", target: OTHER, payload: { role: "admin", key: otherKey } },
  { ...base, kind: "role.set", target: OTHER, payload: { role: null } },
  {
    ...base,
    kind: "key.issue",
    target: "0102030405060708",
    payload: { holder: OTHER, rights: 3, nbf: NumericDate(1_767_225_600), exp: NumericDate(1_798_761_600) },
  },
  { ...base, kind: "key.revoke", target: "0102030405060708", payload: {} },
  {
    ...base,
    kind: "guestcode.revoke",
    target: "00112233445566ff",
    payload: { issuerId: "ana-phone", epoch: 2, dropAfter: 29_450_000 },
  },
  { ...base, kind: "owner.add", target: OTHER, payload: { key: otherKey } },
  { ...base, kind: "owner.remove", target: OWNER, payload: {} },
];

function codeOf(f: () => unknown): string {
  try {
    f();
    return "ok";
  } catch (e) {
    if (e instanceof LatchkeyError) return e.code;
    throw e;
  }
}

const resolveOwner: KeyResolver = (kid, alg) =>
  toHex(kid) === OWNER && alg === CoseAlg.EdDSA ? { alg, publicKey: ownerKey.key } : null;

describe("operation encoding", () => {
  it("every kind round-trips, and its id is the hash of its canonical bytes", () => {
    const kinds = new Set<string>();
    for (const body of SAMPLES) {
      const bytes = encodeOperation(c, body);
      const op = decodeOperation(c, bytes);
      kinds.add(op.kind);
      expect(op.id).toBe(operationId(c, bytes));
      expect(op.id).toMatch(/^[0-9a-f]{32}$/);
      expect(encodeOperation(c, op)).toEqual(bytes);
      const { id: _id, ...rest } = op;
      expect(rest).toEqual(body);
      expect(makeOperation(c, body)).toEqual(op);
    }
    expect([...kinds].sort()).toEqual(Object.values(OpKind).sort());
  });

  it("different operations get different ids; the same operation the same id", () => {
    const ids = SAMPLES.map((b) => makeOperation(c, b).id);
    expect(new Set(ids).size).toBe(SAMPLES.length);
    expect(makeOperation(c, SAMPLES[0]!).id).toBe(ids[0]);
    expect(makeOperation(c, { ...SAMPLES[0]!, hlc: hlc(T0, 1, NODE) }).id).not.toBe(ids[0]);
  });

  it("refuses malformed bodies with LK_OP_MALFORMED", () => {
    const pin = SAMPLES[3] as Extract<OperationBody, { kind: "credential.upsert" }>;
    const bad: [string, unknown][] = [
      ["unknown kind", { ...base, kind: "user.rename", target: "usr_ana", payload: {} }],
      ["a PIN in clear", { ...pin, payload: { ...pin.payload, pin: "123456" } }],
      [
        "sealed too short to be sealed",
        { ...pin, payload: { ...pin.payload, sealed: new Uint8Array([1, 2, 3, 4]) } },
      ],
      ["field of another credential type", { ...pin, payload: { ...pin.payload, slot: 1 } }],
      ["unsorted locks", { ...pin, payload: { ...pin.payload, locks: ["b", "a"] } }],
      ["empty user.upsert", { ...base, kind: "user.upsert", target: "usr_ana", payload: {} }],
      [
        "name with a line break",
        { ...base, kind: "user.upsert", target: "usr_ana", payload: { name: "A\nB" } },
      ],
      [
        "name with spaces around",
        { ...base, kind: "user.upsert", target: "usr_ana", payload: { name: " Ana" } },
      ],
      [
        "zero timeout",
        { ...base, kind: "user.upsert", target: "u", payload: { expiringTimeout: Seconds(0) } },
      ],
      ["bad target", { ...base, kind: "user.remove", target: "usr ana", payload: {} }],
      ["payload on a remove", { ...base, kind: "user.remove", target: "usr_ana", payload: { why: "x" } }],
      ["owner role", { ...base, kind: "role.set", target: OTHER, payload: { role: "owner" } }],
      [
        "upper-case key id",
        { ...base, kind: "role.set", target: OTHER.toUpperCase(), payload: { role: "admin" } },
      ],
      [
        "owner.add with another key's id",
        { ...base, kind: "owner.add", target: OWNER, payload: { key: otherKey } },
      ],
      [
        "mode of another lock",
        { ...base, kind: "mode.set", target: "back-door", payload: { mode: "normal" } },
      ],
      ["unknown mode", { ...base, kind: "mode.set", target: "front-door", payload: { mode: "party" } }],
      ["inverted key window", { ...SAMPLES[12]!, payload: { holder: OTHER, rights: 3, nbf: 10, exp: 10 } }],
      ["rights 16", { ...SAMPLES[12]!, payload: { holder: OTHER, rights: 16, nbf: 1, exp: 10 } }],
      ["odd serial", { ...base, kind: "key.revoke", target: "012", payload: {} }],
      ["epoch 65536", { ...SAMPLES[14]!, payload: { issuerId: "x", epoch: 65_536, dropAfter: 1 } }],
      ["actor not a key id", { ...SAMPLES[0]!, actor: "ana" }],
      ["bad scope", { ...SAMPLES[0]!, scope: { kind: "house", id: "x" } }],
      ["bad hlc", { ...SAMPLES[0]!, hlc: { wallMs: -1, counter: 0, nodeId: NODE } }],
      [
        "empty week-day window",
        {
          ...base,
          kind: "schedule.set",
          target: "usr_ana",
          payload: {
            weekDay: [{ daysMask: 1, startHour: 8, startMinute: 0, endHour: 8, endMinute: 0 }],
            yearDay: [],
          },
        },
      ],
      [
        "not a date",
        {
          ...base,
          kind: "schedule.set",
          target: "u",
          payload: { weekDay: [], yearDay: [{ start: "2026-02-30T00:00", end: "2027-01-01T00:00" }] },
        },
      ],
      [
        "bad card id",
        {
          ...SAMPLES[4]!,
          payload: { userId: "u", type: "rfid", locks: "all", label: null, cardId: "UID:04" },
        },
      ],
    ];
    for (const [what, body] of bad) {
      expect({ what, code: codeOf(() => encodeOperation(c, body as OperationBody)) }).toEqual({
        what,
        code: "LK_OP_MALFORMED",
      });
    }
  });

  it("refuses extra or missing claims, and a non-op envelope kind", () => {
    const claims = decodeStrict(encodeOperation(c, SAMPLES[0]!)) as Map<number, unknown>;
    const variants: [string, Map<number, unknown>][] = [
      ["exp claim", new Map([...claims, [4, 2_000_000_000]])],
      ["private claim", new Map([...claims, [-65599, 1]])],
      ["no hlc", new Map([...claims].filter(([k]) => k !== -65560))],
      ["no iss", new Map([...claims].filter(([k]) => k !== 1))],
      ["kind key", new Map([...claims, [-65537, "key"]])],
      ["hlc of 15 bytes", new Map([...claims, [-65560, new Uint8Array(15)]])],
    ];
    for (const [what, m] of variants) {
      expect({ what, code: codeOf(() => decodeOperation(c, encodeDeterministic(m))) }).toEqual({
        what,
        code: "LK_OP_MALFORMED",
      });
    }
  });
});

describe("signing and verifying", () => {
  it("signs with the actor's key and verifies (EdDSA and ES256)", () => {
    for (const body of SAMPLES) {
      const env = signOperation(c, ownerSigner, body);
      expect(verifyOperation(c, env, resolveOwner)).toEqual(makeOperation(c, body));
    }
    const p = generateP256();
    const pk: PublicKey = { alg: CoseAlg.ES256, key: p.publicKeySec1 };
    const kid = keyId(c, pk);
    const body = { ...SAMPLES[0]!, actor: toHex(kid) } as OperationBody;
    const env = signOperation(c, { alg: CoseAlg.ES256, kid, privateKey: p.privateKeyPkcs8Der }, body);
    const op = verifyOperation(c, env, (k, alg) =>
      toHex(k) === toHex(kid) ? { alg, publicKey: pk.key } : null,
    );
    expect(op.actor).toBe(toHex(kid));
  });

  it("refuses a signer that is not the actor, an actor that is not the signer, and tampering", () => {
    expect(
      codeOf(() => signOperation(c, ownerSigner, { ...SAMPLES[0]!, actor: OTHER } as OperationBody)),
    ).toBe("LK_INVALID_INPUT");
    // Signed by the owner, but naming another actor: the payload is genuine, the claim is not.
    const lying = signSign1(
      c,
      ownerSigner,
      encodeOperation(c, { ...SAMPLES[0]!, actor: OTHER } as OperationBody),
    );
    expect(codeOf(() => verifyOperation(c, lying, resolveOwner))).toBe("LK_OP_MALFORMED");
    const env = signOperation(c, ownerSigner, SAMPLES[0]!);
    const flipped = env.slice();
    flipped[flipped.length - 70] = flipped[flipped.length - 70]! ^ 1;
    expect(codeOf(() => verifyOperation(c, flipped, resolveOwner))).toMatch(/^LK_(ENVELOPE|OP)_/);
    expect(codeOf(() => verifyOperation(c, env, () => null))).toBe("LK_ENVELOPE_SIGNATURE");
  });
});

describe("authorize", () => {
  it("owners may do everything, admins all but owners and roles, others nothing", () => {
    for (const kind of Object.values(OpKind)) {
      const ownerOnly = kind === "owner.add" || kind === "owner.remove" || kind === "role.set";
      expect(authorize({ kind }, "owner")).toEqual({ ok: true });
      expect(authorize({ kind }, "admin")).toEqual(
        ownerOnly ? { ok: false, reason: "owner_only" } : { ok: true },
      );
      for (const r of ["member", "guest", "service", null] as const) {
        expect(authorize({ kind }, r)).toEqual({ ok: false, reason: "no_role" });
      }
    }
  });
});

describe("strict decoding under fuzz", () => {
  const canon = SAMPLES.map((b) => encodeOperation(c, b));
  const envelopes = SAMPLES.map((b) => signOperation(c, ownerSigner, b));
  const DECODE_CODES = new Set(["LK_OP_MALFORMED", "LK_ENVELOPE_MALFORMED", "LK_ENVELOPE_TOO_LARGE"]);
  const VERIFY_CODES = new Set([...DECODE_CODES, "LK_ENVELOPE_SIGNATURE", "LK_ENVELOPE_ALG"]);

  const tally = new Map<string, number>();
  const count = (k: string) => tally.set(k, (tally.get(k) ?? 0) + 1);

  /** Decode; an accepted input must be canonical (re-encodes to itself); a refusal must be coded. */
  function decodeChecked(b: Uint8Array, group: string): void {
    let op: Operation;
    try {
      op = decodeOperation(c, b);
    } catch (e) {
      if (!(e instanceof LatchkeyError) || !DECODE_CODES.has(e.code)) throw e;
      count(`${group}:${e.code}`);
      return;
    }
    count(`${group}:ok`);
    expect(toHex(encodeOperation(c, op))).toBe(toHex(b));
  }

  /** A mutation of `b`: flip, set, delete, insert, truncate, extend or splice from another sample. */
  const arbMutation = fc.tuple(
    fc.nat({ max: canon.length - 1 }),
    fc.constantFrom("flip", "set", "delete", "insert", "truncate", "extend", "splice"),
    fc.nat(),
    fc.nat({ max: 255 }),
    fc.nat({ max: canon.length - 1 }),
  );
  function mutate(src: Uint8Array, how: string, pos: number, byte: number, other: Uint8Array): Uint8Array {
    const i = pos % src.length;
    const b = src.slice();
    switch (how) {
      case "flip":
        b[i] = b[i]! ^ (1 << (byte % 8));
        return b;
      case "set":
        b[i] = byte;
        return b;
      case "delete":
        return Uint8Array.from([...b.subarray(0, i), ...b.subarray(i + 1 + (byte % 4))]);
      case "insert":
        return Uint8Array.from([...b.subarray(0, i), byte, ...b.subarray(i)]);
      case "truncate":
        return b.subarray(0, i);
      case "extend":
        return Uint8Array.from([...b, byte]);
      default: {
        const j = pos % other.length;
        return Uint8Array.from([
          ...b.subarray(0, i),
          ...other.subarray(j, j + 1 + (byte % 16)),
          ...b.subarray(i + 1),
        ]);
      }
    }
  }

  it("decodeOperation: random bytes, mutated encodings and wrong claim maps", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (b) => decodeChecked(b, "random")),
      { ...RUN, numRuns: 6000 },
    );
    fc.assert(
      fc.property(arbMutation, ([s, how, pos, byte, o]) =>
        decodeChecked(mutate(canon[s]!, how, pos, byte, canon[o]!), "mutated"),
      ),
      { ...RUN, numRuns: 10_000 },
    );
    // Structurally valid CBOR: one claim or payload field replaced by (or added as) a random value.
    const arbValue = fc.oneof(
      fc.integer({ min: -70_000, max: 70_000 }),
      fc.string({ maxLength: 40 }),
      fc.uint8Array({ maxLength: 70 }),
      fc.constantFrom(null, true, false, "all", "admin", "user.upsert", "lock:front-door", OTHER),
      fc.array(fc.oneof(fc.nat({ max: 30 }), fc.string({ maxLength: 8 })), { maxLength: 6 }),
    );
    const arbLabel = fc.constantFrom(
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
      9,
      10,
      -65537,
      -65560,
      -65561,
      -65562,
      -65563,
      -65564,
    );
    fc.assert(
      fc.property(
        fc.nat({ max: canon.length - 1 }),
        fc.boolean(),
        arbLabel,
        arbValue,
        (s, inPayload, label, value) => {
          const claims = decodeStrict(canon[s]!) as Map<number, unknown>;
          if (inPayload) {
            const p = new Map(claims.get(-65563) as Map<number, unknown>);
            p.set(label > 0 ? label : 1, value);
            claims.set(-65563, p);
          } else {
            claims.set(label, value);
          }
          decodeChecked(encodeDeterministic(claims), "structured");
        },
      ),
      { ...RUN, numRuns: 6000 },
    );
  });

  it("verifyOperation: mutated envelopes verify only untouched", () => {
    fc.assert(
      fc.property(arbMutation, ([s, how, pos, byte, o]) => {
        const b = mutate(envelopes[s]!, how, pos, byte, envelopes[o]!);
        try {
          verifyOperation(c, b, resolveOwner);
          count("envelope:ok");
          expect(toHex(b)).toBe(toHex(envelopes[s]!));
        } catch (e) {
          if (!(e instanceof LatchkeyError) || !VERIFY_CODES.has(e.code)) throw e;
          count(`envelope:${e.code}`);
        }
      }),
      { ...RUN, numRuns: 3000 },
    );
    const total = [...tally.values()].reduce((a, b) => a + b, 0);
    console.log(`operation fuzz: ${total} inputs, ${JSON.stringify(Object.fromEntries([...tally].sort()))}`);
    expect(total).toBe(25_000);
  });
});
