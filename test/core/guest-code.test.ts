/**
 * Offline guest codes, LK-GC1 (docs/protocol/guest-codes.md). The vectors in test/vectors/guest-codes.json
 * are recomputed here with an independent reference built on node:crypto (hkdfSync, createHmac), so
 * another implementation can trust them; round trips and edges are property-tested with fast-check.
 */
import { createHmac, hkdfSync } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  countValidPayloads,
  decodeGuestCode,
  deriveIssuerKey,
  dropAfterOf,
  evaluateGuestCode,
  formatLocalMinutes,
  GUEST_CODE_DAY_MASKS,
  type GuestCodeDecode,
  type GuestCodeRequest,
  hkdfSha256,
  issueGuestCode,
  PAYLOAD_COUNT,
  planGuestCode,
  revocationMac,
  tagModulus,
} from "../../src/core/credentials/guest-code.ts";
import { fromHex, toHex } from "../../src/core/crypto.ts";
import { isLatchkeyError } from "../../src/core/errors.ts";
import { parseLocalDateTime } from "../../src/core/schedule.ts";
import { EpochMs } from "../../src/core/units.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import vectors from "../vectors/guest-codes.json" with { type: "json" };

const c = nodeCrypto;
type Match = Extract<GuestCodeDecode, { status: "match" }>;

/** Independent reference: the issuer key via node:crypto's HKDF. */
function refKey(secret: Uint8Array, lockId: string, issuerId: string, epoch: number): Uint8Array {
  const info = Buffer.concat([
    Buffer.from("LK-GC1"),
    Buffer.of(0),
    Buffer.from(lockId),
    Buffer.of(0),
    Buffer.from(issuerId),
    Buffer.of(0),
    Buffer.of(epoch >> 8, epoch & 0xff),
  ]);
  return new Uint8Array(hkdfSync("sha256", secret, Buffer.from("latchkey/guest-code/v1"), info, 32));
}

/** Independent reference: the code for payload p at start unit s. */
function refCode(key: Uint8Array, digits: number, p: number, s: number): { code: string; codeId: string } {
  const msg = Buffer.alloc(6 + 1 + 8);
  msg.write("LK-GC1", 0, "ascii");
  msg.writeUInt8(digits, 6);
  msg.writeUInt32BE(p, 7);
  msg.writeUInt32BE(s, 11);
  const mac = createHmac("sha256", key).update(msg).digest();
  const t = Math.floor(10 ** digits / PAYLOAD_COUNT);
  const tau = Number(mac.readUIntBE(0, 6) % t);
  const idMsg = Buffer.concat([Buffer.from("LK-GC1-id"), msg.subarray(6)]);
  const codeId = createHmac("sha256", key).update(idMsg).digest().subarray(0, 8).toString("hex");
  return { code: String(p * t + tau).padStart(digits, "0"), codeId };
}

const secret = fromHex(vectors.codeSecretHex);
const keys = vectors.issuers.map((i) => ({
  issuerId: i.issuerId,
  epoch: i.epoch,
  key: deriveIssuerKey(c, secret, vectors.lockId, i.issuerId, i.epoch),
}));
const keyA = keys[0]!;

describe("HKDF-SHA-256 (RFC 5869)", () => {
  it("matches RFC 5869 Appendix A.1", () => {
    const okm = hkdfSha256(
      c,
      fromHex("0b".repeat(22)),
      fromHex("000102030405060708090a0b0c"),
      fromHex("f0f1f2f3f4f5f6f7f8f9"),
      42,
    );
    expect(toHex(okm)).toBe(
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    );
  });

  it("agrees with node:crypto hkdfSync on random inputs", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 80 }),
        fc.uint8Array({ minLength: 1, maxLength: 40 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.integer({ min: 1, max: 200 }),
        (ikm, salt, info, len) => {
          const ours = hkdfSha256(c, ikm, salt, info, len);
          expect(toHex(ours)).toBe(Buffer.from(hkdfSync("sha256", ikm, salt, info, len)).toString("hex"));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("LK-GC1 vectors (test/vectors/guest-codes.json)", () => {
  it("has the format's constants", () => {
    expect(vectors.payloadCount).toBe(PAYLOAD_COUNT);
    expect(vectors.tagModulus["12"]).toBe(tagModulus(12));
    expect(vectors.tagModulus["10"]).toBe(tagModulus(10));
  });

  it("derives the issuer keys as node:crypto's HKDF does", () => {
    for (const i of vectors.issuers) {
      const ref = refKey(secret, vectors.lockId, i.issuerId, i.epoch);
      expect(toHex(ref)).toBe(i.keyHex);
      expect(toHex(deriveIssuerKey(c, secret, vectors.lockId, i.issuerId, i.epoch))).toBe(i.keyHex);
    }
  });

  it.each(vectors.issued.map((v) => [`${v.digits} digits, ${v.request.kind} ${v.validFrom}`, v] as const))(
    "%s: the reference and the issuer give the vector's code",
    (_, v) => {
      const key = fromHex(vectors.issuers.find((i) => i.issuerId === v.issuerId)!.keyHex);
      expect(refCode(key, v.digits, v.payloadIndex, v.startUnit)).toEqual({ code: v.code, codeId: v.codeId });
      const issued = issueGuestCode(c, key, v.request as GuestCodeRequest, { digits: v.digits });
      expect(issued.code).toBe(v.code);
      expect(issued.codeId).toBe(v.codeId);
      expect(formatLocalMinutes(issued.plan.params.from)).toBe(v.validFrom);
      expect(formatLocalMinutes(issued.plan.params.to)).toBe(v.validTo);
      expect(issued.plan.exact).toBe(v.exact);
      expect(v.code).toHaveLength(v.digits);
    },
  );

  it.each(vectors.decode.cases.map((v) => [v.note, v] as const))("decode: %s", (_, v) => {
    const d = decodeGuestCode(c, keys, v.code, parseLocalDateTime(v.now), {
      digits: vectors.decode.digits,
      driftMinutes: vectors.decode.driftMinutes,
    });
    if (d.status !== "match") expect(d).toEqual(v.expect);
    else
      expect({
        status: d.status,
        issuerId: d.issuerId,
        kind: d.params.kind,
        phase: d.phase,
        codeId: d.codeId,
      }).toEqual(v.expect);
  });
});

/** Random window requests the format can express (starts from 2026 to 2030, lengths up to 53 weeks). */
const arbWindowRequest = fc
  .record({
    kind: fc.constantFrom("window", "oneTime", "uses", "firstUse"),
    start: fc.integer({
      min: parseLocalDateTime("2026-01-01T00:00"),
      max: parseLocalDateTime("2030-12-31T00:00"),
    }),
    len: fc.oneof(fc.integer({ min: 1, max: 180 }), fc.integer({ min: 1, max: 60 * 24 * 30 })),
    uses: fc.constantFrom(2, 3, 5, 10),
    durationMinutes: fc.constantFrom(60, 240, 1440, 10_080),
  })
  .map(({ kind, start, len, uses, durationMinutes }): Exclude<GuestCodeRequest, { kind: "recurring" }> => {
    const from = formatLocalMinutes(start);
    const to = formatLocalMinutes(start + len);
    if (kind === "uses") return { kind, from, to, uses };
    if (kind === "firstUse") return { kind, from, to, durationMinutes };
    return { kind: kind as "window" | "oneTime", from, to };
  });

function tryPlan(req: GuestCodeRequest): boolean {
  try {
    planGuestCode(req);
    return true;
  } catch (e) {
    if (isLatchkeyError(e, "LK_GUESTCODE_INVALID")) return false;
    throw e;
  }
}

describe("issue → decode", () => {
  it("a code is valid exactly on [from − δ, to + δ) and covers the request", () => {
    fc.assert(
      fc.property(
        arbWindowRequest,
        fc.integer({ min: 0, max: 15 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (req, drift, x) => {
          fc.pre(tryPlan(req));
          const issued = issueGuestCode(c, keyA.key, req);
          const { from, to } = issued.plan.params;
          expect(from).toBeLessThanOrEqual(parseLocalDateTime(req.from));
          expect(to).toBeGreaterThanOrEqual(parseLocalDateTime(req.to));
          const span = to - from + 2 * drift;
          const inside = from - drift + Math.min(span - 1, Math.floor(x * span));
          const at = (t: number) => decodeGuestCode(c, keys, issued.code, t, { driftMinutes: drift });
          const mid = at(inside) as Match;
          expect(mid.status).toBe("match");
          expect(mid.phase).toBe("valid");
          expect(mid.codeId).toBe(issued.codeId);
          expect(mid.issuerId).toBe("issuer-a");
          expect(mid.params).toEqual(issued.plan.params);
          expect((at(from - drift) as Match).phase).toBe("valid");
          expect((at(to + drift - 1) as Match).phase).toBe("valid");
          const before = at(from - drift - 1);
          expect(before.status === "match" ? before.phase : "none").toBe("before");
          const after = at(to + drift);
          expect(after.status === "match" ? after.phase : "none").toBe("after");
        },
      ),
      { numRuns: 300 },
    );
  });

  it("recurring codes open on the chosen days and hours only, inside the month range", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...GUEST_CODE_DAY_MASKS),
        fc.integer({ min: 0, max: 23 }),
        fc.constantFrom(1, 2, 3, 4, 6, 8, 10, 12),
        fc.integer({ min: 0, max: 59 }),
        fc.constantFrom(1, 2, 3, 6, 12),
        fc.integer({ min: 0, max: 400 * 1440 }),
        (mask, hour, len, monthOffset, months, probe) => {
          const y = 2026 + Math.floor(monthOffset / 12);
          const m = (monthOffset % 12) + 1;
          const fromDate = `${y}-${String(m).padStart(2, "0")}-01`;
          const endMonth = monthOffset + months - 1;
          const lastDay = new Date(Date.UTC(2026 + Math.floor(endMonth / 12), (endMonth % 12) + 1, 0));
          const toDate = lastDay.toISOString().slice(0, 10);
          const req: GuestCodeRequest = {
            kind: "recurring",
            daysMask: mask,
            startHour: hour,
            lengthHours: len,
            fromDate,
            toDate,
          };
          const issued = issueGuestCode(c, keyA.key, req);
          expect(issued.plan.exact).toBe(true);
          const { from, to } = issued.plan.params;
          const now = from - 1440 + probe;
          const d = decodeGuestCode(c, keys, issued.code, now, { driftMinutes: 0 });
          // Reference: is `now` inside an occurrence that starts on an allowed day of the range?
          let expected = false;
          for (let day = Math.floor(now / 1440) - 1; day <= Math.floor(now / 1440); day++) {
            const start = day * 1440 + hour * 60;
            const dow = (((day + 4) % 7) + 7) % 7;
            if (
              day * 1440 >= from &&
              day * 1440 < to &&
              mask & (1 << dow) &&
              now >= start &&
              now < start + len * 60
            )
              expected = true;
          }
          const valid = d.status === "match" && d.phase === "valid";
          expect(valid).toBe(expected);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("decoding never throws and never matches a mangled code", () => {
    const issued = issueGuestCode(c, keyA.key, {
      kind: "window",
      from: "2026-12-01T09:00",
      to: "2026-12-01T12:00",
    });
    const now = parseLocalDateTime("2026-12-01T10:00");
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), (s) => {
        decodeGuestCode(c, keys, s, now);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 11 }), fc.integer({ min: 1, max: 9 }), (pos, delta) => {
        const digits = issued.code.split("");
        digits[pos] = String((Number(digits[pos]) + delta) % 10);
        const d = decodeGuestCode(c, keys, digits.join(""), now);
        // A one-digit change either breaks the payload or the tag: at worst it decodes as another code
        // only if its 21-bit tag also matches, which these runs would show as a failure.
        expect(d.status === "match" && d.codeId === issued.codeId).toBe(false);
      }),
    );
  });

  it("another issuer, another epoch or another lock does not accept the code", () => {
    const req: GuestCodeRequest = { kind: "window", from: "2026-12-01T09:00", to: "2026-12-01T12:00" };
    const issued = issueGuestCode(c, keyA.key, req);
    const now = parseLocalDateTime("2026-12-01T10:00");
    const others = [
      { issuerId: "issuer-a", epoch: 1, key: deriveIssuerKey(c, secret, vectors.lockId, "issuer-a", 1) },
      { issuerId: "issuer-a", epoch: 0, key: deriveIssuerKey(c, secret, "other-lock", "issuer-a", 0) },
      keys[1]!,
    ];
    expect(decodeGuestCode(c, others, issued.code, now).status).toBe("noMatch");
    expect((decodeGuestCode(c, [keyA], issued.code, now) as Match).phase).toBe("valid");
  });

  it("issues different codes for the same request when told to avoid the first", () => {
    const req: GuestCodeRequest = { kind: "window", from: "2026-12-01T09:00", to: "2026-12-01T12:00" };
    const a = issueGuestCode(c, keyA.key, req);
    const b = issueGuestCode(c, keyA.key, req, { avoid: new Set([a.codeId]) });
    expect(b.code).not.toBe(a.code);
    expect(b.plan.params.from).toBe(a.plan.params.from);
    expect(b.plan.params.to).toBe(a.plan.params.to);
    // 09:00–12:00 has two exact encodings (quarter-hour and hour grids); a wider window is never used.
    let err: unknown;
    try {
      issueGuestCode(c, keyA.key, req, { avoid: new Set([a.codeId, b.codeId]) });
    } catch (e) {
      err = e;
    }
    expect(isLatchkeyError(err, "LK_CONFLICT")).toBe(true);
  });
});

describe("requests the format refuses", () => {
  const bad: [string, GuestCodeRequest][] = [
    ["an empty window", { kind: "window", from: "2026-12-01T09:00", to: "2026-12-01T09:00" }],
    ["an inverted window", { kind: "window", from: "2026-12-02T09:00", to: "2026-12-01T09:00" }],
    ["a window over 53 weeks", { kind: "window", from: "2026-01-01T00:00", to: "2027-06-01T00:00" }],
    ["a one-time window over 31 days", { kind: "oneTime", from: "2026-01-01T00:00", to: "2026-03-01T00:00" }],
    ["4 uses", { kind: "uses", from: "2026-01-01T00:00", to: "2026-01-03T00:00", uses: 4 }],
    [
      "a 2 h first-use code",
      { kind: "firstUse", from: "2026-01-01T00:00", to: "2026-01-03T00:00", durationMinutes: 120 },
    ],
    ["a bad date", { kind: "window", from: "2026-02-30T00:00", to: "2026-03-03T00:00" }],
    [
      "an unsupported day set",
      {
        kind: "recurring",
        daysMask: 0x03,
        startHour: 9,
        lengthHours: 3,
        fromDate: "2026-01-01",
        toDate: "2026-02-01",
      },
    ],
    [
      "a 5 h occurrence",
      {
        kind: "recurring",
        daysMask: 0x02,
        startHour: 9,
        lengthHours: 5,
        fromDate: "2026-01-01",
        toDate: "2026-02-01",
      },
    ],
    [
      "a range over 12 months",
      {
        kind: "recurring",
        daysMask: 0x02,
        startHour: 9,
        lengthHours: 3,
        fromDate: "2026-01-01",
        toDate: "2027-01-01",
      },
    ],
  ];
  it.each(bad)("refuses %s with LK_GUESTCODE_INVALID", (_, req) => {
    let err: unknown;
    try {
      issueGuestCode(c, keyA.key, req);
    } catch (e) {
      err = e;
    }
    expect(isLatchkeyError(err, "LK_GUESTCODE_INVALID")).toBe(true);
  });

  it("refuses bad lengths, drifts and too many keys, but never a typed string", () => {
    expect(() => tagModulus(9)).toThrow(/LK_GUESTCODE_INVALID/);
    expect(() => tagModulus(16)).toThrow(/LK_GUESTCODE_INVALID/);
    expect(() => decodeGuestCode(c, keys, "1", 0, { driftMinutes: 16 })).toThrow(/LK_GUESTCODE_INVALID/);
    expect(() => decodeGuestCode(c, Array(9).fill(keyA), "1", 0)).toThrow(/LK_GUESTCODE_INVALID/);
    expect(() => deriveIssuerKey(c, new Uint8Array(16), "l", "i", 0)).toThrow(/LK_GUESTCODE_INVALID/);
    expect(() => deriveIssuerKey(c, secret, "l", "i", 70_000)).toThrow(/LK_GUESTCODE_INVALID/);
  });
});

describe("the lock's state (evaluateGuestCode)", () => {
  const now = parseLocalDateTime("2026-12-02T10:00");
  const nowMs = EpochMs(Date.UTC(2026, 11, 2, 10, 0));
  const decode = (req: GuestCodeRequest, at = now): Match =>
    decodeGuestCode(c, keys, issueGuestCode(c, keyA.key, req).code, at) as Match;

  it("one-time: opens once, then used_up", () => {
    const m = decode({ kind: "oneTime", from: "2026-12-02T09:00", to: "2026-12-02T17:00" });
    const first = evaluateGuestCode(m, undefined, nowMs, now, 2, 0);
    expect(first.ok).toBe(true);
    if (!first.ok || !first.record) throw new Error("expected a record");
    expect(first.record.uses).toBe(1);
    expect(first.record.dropAfter).toBe(parseLocalDateTime("2026-12-02T17:02"));
    expect(evaluateGuestCode(m, first.record, nowMs, now, 2, 0)).toEqual({ ok: false, reason: "used_up" });
  });

  it("use-limited: N grants then used_up", () => {
    const m = decode({ kind: "uses", from: "2026-12-01T00:00", to: "2026-12-05T00:00", uses: 3 });
    let rec: ReturnType<typeof evaluateGuestCode> | undefined;
    let usage: Parameters<typeof evaluateGuestCode>[1];
    for (let i = 0; i < 3; i++) {
      rec = evaluateGuestCode(m, usage, nowMs, now, 2, 0);
      expect(rec.ok).toBe(true);
      usage = rec.ok && rec.record ? rec.record : usage;
    }
    expect(usage?.uses).toBe(3);
    expect(evaluateGuestCode(m, usage, nowMs, now, 2, 0)).toEqual({ ok: false, reason: "used_up" });
  });

  it("first use starts the clock: valid D minutes after the first grant, even past the activation window", () => {
    const m = decode({
      kind: "firstUse",
      from: "2026-12-02T00:00",
      to: "2026-12-03T00:00",
      durationMinutes: 1440,
    });
    const first = evaluateGuestCode(m, undefined, nowMs, now, 2, 0);
    if (!first.ok || !first.record) throw new Error("expected a record");
    expect(first.record.firstUsedAt).toBe(nowMs);
    expect(first.record.dropAfter).toBeGreaterThanOrEqual(now + 1440);
    const later = EpochMs(nowMs + (1440 + 1) * 60_000);
    const m2 = decodeGuestCode(
      c,
      keys,
      issueGuestCode(c, keyA.key, {
        kind: "firstUse",
        from: "2026-12-02T00:00",
        to: "2026-12-03T00:00",
        durationMinutes: 1440,
      }).code,
      now + 1441,
    ) as Match;
    expect(m2.phase).toBe("after");
    expect(evaluateGuestCode(m2, first.record, later, now + 1441, 2, 0).ok).toBe(true);
    const tooLate = EpochMs(nowMs + (1440 + 2) * 60_000);
    expect(evaluateGuestCode(m2, first.record, tooLate, now + 1442, 2, 0)).toEqual({
      ok: false,
      reason: "expired",
    });
    // Never used and the activation window is over: expired.
    expect(evaluateGuestCode(m2, undefined, later, now + 1441, 2, 0)).toEqual({
      ok: false,
      reason: "expired",
    });
  });

  it("revoked wins over everything; pruned codes stay refused", () => {
    const m = decode({ kind: "window", from: "2026-12-02T09:00", to: "2026-12-02T17:00" });
    const revoked = {
      issuerId: m.issuerId,
      epoch: m.epoch,
      codeId: m.codeId,
      revoked: true,
      uses: 0,
      firstUsedAt: null,
      dropAfter: dropAfterOf(m.params, 2),
    };
    expect(evaluateGuestCode(m, revoked, nowMs, now, 2, 0)).toEqual({ ok: false, reason: "revoked" });
    expect(evaluateGuestCode(m, undefined, nowMs, now, 2, 0)).toEqual({ ok: true, record: null });
    expect(evaluateGuestCode(m, undefined, nowMs, now, 2, dropAfterOf(m.params, 2))).toEqual({
      ok: false,
      reason: "expired",
    });
  });
});

describe("the false-accept bound", () => {
  it("counts the payloads valid at an instant (W_now) as the spec states", () => {
    // docs/protocol/guest-codes.md § 6: W_now ≈ 45,000 at δ = 2 min (it varies a little with the instant).
    for (const at of ["2026-12-01T10:00", "2026-12-06T03:17", "2027-06-15T23:59"]) {
      const w = countValidPayloads(parseLocalDateTime(at), 2);
      expect(w).toBeGreaterThan(40_000);
      expect(w).toBeLessThan(52_000);
    }
  });
});

describe("issuer-authenticated revocation", () => {
  it("matches a node:crypto reference and refuses malformed fields", () => {
    const r = { issuerId: "issuer-a", epoch: 0, codeId: "0123456789abcdef", dropAfter: 29_000_000 };
    const msg = Buffer.concat([
      Buffer.from("LK-GC1-revoke"),
      Buffer.of(8),
      Buffer.from("issuer-a"),
      Buffer.of(0, 0),
      Buffer.from("0123456789abcdef", "hex"),
      Buffer.of(0x01, 0xba, 0x81, 0x40),
    ]);
    expect(revocationMac(c, keyA.key, r)).toBe(createHmac("sha256", keyA.key).update(msg).digest("hex"));
    expect(() => revocationMac(c, keyA.key, { ...r, codeId: "XYZ" })).toThrow(/LK_GUESTCODE_INVALID/);
    expect(() => revocationMac(c, keyA.key, { ...r, epoch: -1 })).toThrow(/LK_GUESTCODE_INVALID/);
    expect(() => revocationMac(c, keyA.key, { ...r, dropAfter: 2 ** 32 })).toThrow(/LK_GUESTCODE_INVALID/);
  });
});
