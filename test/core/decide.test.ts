import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type Attempt,
  type DecisionState,
  DenyReason,
  decide,
  type GuestCodeCheck,
  type PhoneKeyCheck,
} from "../../src/core/decide.ts";
import type { User } from "../../src/core/model.ts";
import { EpochMs } from "../../src/core/units.ts";
import { card, finger, pin, state, T0, totp, user } from "../support/builders.ts";

const D_ALICE = "a".repeat(64);
const D_BOB = "b".repeat(64);
const D_DURESS = "d".repeat(64);
const D_UNKNOWN = "e".repeat(64);

const alice = user({ id: "alice", role: "owner", userType: "programming" });
const bob = user({ id: "bob" });
const base = (usersOverride: User[] = [alice, bob], p: Partial<DecisionState> = {}) =>
  state(
    usersOverride,
    [
      pin("c-alice", "alice", D_ALICE),
      pin("c-alice-duress", "alice", D_DURESS, { duress: true }),
      pin("c-bob", "bob", D_BOB),
      card("c-card", "bob", "uid:04a1b2c3"),
      card("c-card-back", "bob", "uid:0badcafe", ["back-door"]),
      finger("c-finger", "bob", 7),
    ],
    p,
  );

const keypad = (pinDigest: string): Attempt => ({ source: "keypad", pinDigest });

// Dave has a PIN and a Dual authenticator credential; Erin a code that opens alone (last used at step 100).
const D_DAVE = "f".repeat(64);
const dave = user({ id: "dave" });
const erin = user({ id: "erin" });
const withTotp = (p: Partial<DecisionState> = {}) =>
  state(
    [alice, bob, dave, erin],
    [
      pin("c-bob", "bob", D_BOB),
      pin("c-dave", "dave", D_DAVE),
      totp("t-dave", "dave"),
      totp("t-erin", "erin", { requirePin: false, lastStep: 100 }),
    ],
    p,
  );
const dualCode = (outcome: "accepted" | "replayed" | "mismatch", step = 200): Attempt => ({
  source: "keypad",
  pinDigest: D_DAVE,
  totp:
    outcome === "accepted"
      ? { mode: "dual", outcome, credentialId: "t-dave", step }
      : { mode: "dual", outcome, credentialId: "t-dave" },
});
const aloneCode = (step: number): Attempt => ({
  source: "keypad",
  pinDigest: D_UNKNOWN,
  totp: { mode: "alone", outcome: "accepted", credentialId: "t-erin", step },
});
const at = (iso: string) => EpochMs(Date.parse(iso));

/** An authentic guest code as the runtime reports it (docs/protocol/guest-codes.md). */
const guest = (refusal: GuestCodeCheck["refusal"], record: GuestCodeCheck["record"] = null): Attempt => ({
  source: "keypad",
  pinDigest: "",
  guestCode: { issuerId: "iss_a", epoch: 0, codeId: "0123456789abcdef", kind: "oneTime", refusal, record },
});

/** A verified phone key as the gate reports it (docs/protocol/link.md § "At the lock"). */
const phone = (
  userId: string | null,
  p: { rights?: number; action?: "unlock" | "lock"; schedule?: PhoneKeyCheck["schedule"] } = {},
): Attempt => ({
  source: "phone",
  phone: {
    action: p.action ?? "unlock",
    rights: p.rights ?? 3,
    schedule: p.schedule ?? null,
    userId,
    serial: "01",
    holderKeyId: "ab".repeat(16),
  },
});
const NEVER = [{ daysMask: 0, startMinute: 0, endMinute: 1440 }];
const ALWAYS = [{ daysMask: 127, startMinute: 0, endMinute: 1440 }];

// Table: every deny reason (and the grants) with the smallest state that produces it.
const table: { name: string; st: DecisionState; attempt: Attempt; now?: EpochMs; expect: string }[] = [
  { name: "grant: PIN", st: base(), attempt: keypad(D_BOB), expect: "grant" },
  { name: "grant: card", st: base(), attempt: { source: "rfid", cardId: "uid:04a1b2c3" }, expect: "grant" },
  { name: "grant: fingerprint", st: base(), attempt: { source: "biometric", slot: 7 }, expect: "grant" },
  { name: "grant: remote", st: base(), attempt: { source: "remote", userId: "bob" }, expect: "grant" },
  { name: "unknown PIN", st: base(), attempt: keypad(D_UNKNOWN), expect: DenyReason.UnknownCredential },
  {
    name: "unknown card",
    st: base(),
    attempt: { source: "rfid", cardId: "uid:ffffffff" },
    expect: DenyReason.UnknownCredential,
  },
  {
    name: "unknown finger",
    st: base(),
    attempt: { source: "biometric", slot: -1 },
    expect: DenyReason.UnknownCredential,
  },
  {
    name: "unknown remote user",
    st: base(),
    attempt: { source: "remote", userId: "mallory" },
    expect: DenyReason.UnknownCredential,
  },
  {
    name: "remote member with no credential on this lock",
    st: base([alice, bob, user({ id: "carol" })]),
    attempt: { source: "remote", userId: "carol" },
    expect: DenyReason.WrongLock,
  },
  {
    name: "remote admin needs no credential",
    st: base([alice, bob, user({ id: "ada", role: "admin" })]),
    attempt: { source: "remote", userId: "ada" },
    expect: "grant",
  },
  {
    name: "card for another lock",
    st: base(),
    attempt: { source: "rfid", cardId: "uid:0badcafe" },
    expect: DenyReason.WrongLock,
  },
  {
    name: "disabled user",
    st: base([alice, user({ id: "bob", userStatus: "occupiedDisabled" })]),
    attempt: keypad(D_BOB),
    expect: DenyReason.UserDisabled,
  },
  {
    name: "non-access user",
    st: base([alice, user({ id: "bob", userType: "nonAccess" })]),
    attempt: keypad(D_BOB),
    expect: DenyReason.NonAccessUser,
  },
  {
    name: "outside week-day schedule",
    st: base([
      alice,
      user({
        id: "bob",
        userType: "weekDaySchedule",
        weekDaySchedules: [{ daysMask: 0b0111110, startHour: 18, startMinute: 0, endHour: 20, endMinute: 0 }],
      }),
    ]),
    attempt: keypad(D_BOB),
    expect: DenyReason.OutsideSchedule,
  },
  {
    name: "inside week-day schedule",
    st: base([
      alice,
      user({
        id: "bob",
        userType: "weekDaySchedule",
        weekDaySchedules: [{ daysMask: 0b0000010, startHour: 8, startMinute: 0, endHour: 10, endMinute: 0 }],
      }),
    ]),
    attempt: keypad(D_BOB),
    expect: "grant",
  },
  {
    name: "year-day schedule passed",
    st: base([
      alice,
      user({
        id: "bob",
        userType: "yearDaySchedule",
        yearDaySchedules: [{ start: "2025-12-24T00:00", end: "2026-01-01T00:00" }],
      }),
    ]),
    attempt: keypad(D_BOB),
    expect: DenyReason.OutsideSchedule,
  },
  {
    name: "disposable already used",
    st: base([alice, user({ id: "bob", userType: "disposable", firstUsedAt: T0 })]),
    attempt: keypad(D_BOB),
    expect: DenyReason.Expired,
  },
  {
    name: "expiring user past timeout",
    st: base([
      alice,
      user({
        id: "bob",
        userType: "expiringDisposable",
        expiringTimeout: 3600 as never,
        firstUsedAt: EpochMs(T0 - 3_600_000),
      }),
    ]),
    attempt: keypad(D_BOB),
    expect: DenyReason.Expired,
  },
  {
    name: "expiring user inside timeout",
    st: base([
      alice,
      user({
        id: "bob",
        userType: "expiringDisposable",
        expiringTimeout: 3600 as never,
        firstUsedAt: EpochMs(T0 - 3_599_000),
      }),
    ]),
    attempt: keypad(D_BOB),
    expect: "grant",
  },
  {
    name: "keypad locked out",
    st: base(undefined, {
      lockouts: {
        keypad: { failures: 0, strikes: 1, disabledUntil: EpochMs(T0 + 1) },
        reader: { failures: 0, strikes: 0, disabledUntil: null },
        fingerprint: { failures: 0, strikes: 0, disabledUntil: null },
      },
    }),
    attempt: keypad(D_ALICE),
    expect: DenyReason.Lockout,
  },
  {
    name: "keypad lockout does not block the owner's card reader",
    st: base(undefined, {
      lockouts: {
        keypad: { failures: 0, strikes: 1, disabledUntil: EpochMs(T0 + 1) },
        reader: { failures: 0, strikes: 0, disabledUntil: null },
        fingerprint: { failures: 0, strikes: 0, disabledUntil: null },
      },
    }),
    attempt: { source: "rfid", cardId: "uid:04a1b2c3" },
    expect: "grant",
  },
  {
    name: "privacy mode",
    st: base(undefined, { operatingMode: "privacy" }),
    attempt: keypad(D_ALICE),
    expect: DenyReason.ModeForbids,
  },
  {
    name: "vacation: member at keypad",
    st: base(undefined, { operatingMode: "vacation" }),
    attempt: keypad(D_BOB),
    expect: DenyReason.ModeForbids,
  },
  {
    name: "vacation: programming user at keypad",
    st: base(undefined, { operatingMode: "vacation" }),
    attempt: keypad(D_ALICE),
    expect: "grant",
  },
  {
    name: "vacation: remote allowed",
    st: base(undefined, { operatingMode: "vacation" }),
    attempt: { source: "remote", userId: "bob" },
    expect: "grant",
  },
  {
    name: "noRemoteLockUnlock: remote",
    st: base(undefined, { operatingMode: "noRemoteLockUnlock" }),
    attempt: { source: "remote", userId: "alice" },
    expect: DenyReason.ModeForbids,
  },
  {
    name: "noRemoteLockUnlock: keypad",
    st: base(undefined, { operatingMode: "noRemoteLockUnlock" }),
    attempt: keypad(D_BOB),
    expect: "grant",
  },
  { name: "grant: phone key of a user", st: base(), attempt: phone("bob"), expect: "grant" },
  { name: "grant: phone key naming no user", st: base(), attempt: phone(null), expect: "grant" },
  {
    name: "grant: phone key inside its windows",
    st: base(),
    attempt: phone("bob", { schedule: ALWAYS }),
    expect: "grant",
  },
  {
    name: "phone key without the unlock right",
    st: base(),
    attempt: phone("bob", { rights: 2 }),
    expect: DenyReason.KeyRightMissing,
  },
  {
    name: "phone key without the lock right",
    st: base(),
    attempt: phone(null, { rights: 1, action: "lock" }),
    expect: DenyReason.KeyRightMissing,
  },
  {
    name: "phone key of a removed user",
    st: base(),
    attempt: phone("mallory"),
    expect: DenyReason.UnknownCredential,
  },
  {
    name: "phone key of a disabled user",
    st: base([alice, user({ id: "bob", userStatus: "occupiedDisabled" })]),
    attempt: phone("bob"),
    expect: DenyReason.UserDisabled,
  },
  {
    name: "phone key outside its windows",
    st: base(),
    attempt: phone("bob", { schedule: NEVER }),
    expect: DenyReason.OutsideSchedule,
  },
  {
    name: "anonymous phone key outside its windows",
    st: base(),
    attempt: phone(null, { schedule: NEVER }),
    expect: DenyReason.OutsideSchedule,
  },
  {
    name: "phone key: untrusted clock",
    st: base(undefined, { clockTrusted: false }),
    attempt: phone("bob"),
    expect: DenyReason.ClockUntrusted,
  },
  {
    name: "anonymous phone key: untrusted clock",
    st: base(undefined, { clockTrusted: false }),
    attempt: phone(null),
    expect: DenyReason.ClockUntrusted,
  },
  {
    name: "phone key: privacy",
    st: base(undefined, { operatingMode: "privacy" }),
    attempt: phone("bob"),
    expect: DenyReason.ModeForbids,
  },
  {
    name: "anonymous phone key: vacation",
    st: base(undefined, { operatingMode: "vacation" }),
    attempt: phone(null),
    expect: DenyReason.ModeForbids,
  },
  {
    name: "phone key: noRemoteLockUnlock (it is local)",
    st: base(undefined, { operatingMode: "noRemoteLockUnlock" }),
    attempt: phone("bob"),
    expect: "grant",
  },
  {
    name: "jammed",
    st: base(undefined, { lockState: "jammed" }),
    attempt: keypad(D_BOB),
    expect: DenyReason.LockJammed,
  },
  {
    name: "battery reserve: member",
    st: base(undefined, { battery: "critical" }),
    attempt: keypad(D_BOB),
    expect: DenyReason.BatteryReserve,
  },
  {
    name: "battery reserve: owner",
    st: base(undefined, { battery: "critical" }),
    attempt: keypad(D_ALICE),
    expect: "grant",
  },
  {
    name: "clock untrusted: time-bound user",
    st: base(
      [
        alice,
        user({
          id: "bob",
          userType: "weekDaySchedule",
          weekDaySchedules: [{ daysMask: 127, startHour: 0, startMinute: 0, endHour: 24, endMinute: 0 }],
        }),
      ],
      { clockTrusted: false },
    ),
    attempt: keypad(D_BOB),
    expect: DenyReason.ClockUntrusted,
  },
  {
    name: "clock untrusted: unrestricted user still opens",
    st: base(undefined, { clockTrusted: false }),
    attempt: keypad(D_BOB),
    expect: "grant",
  },
  {
    name: "grant: PIN then authenticator code",
    st: withTotp(),
    attempt: dualCode("accepted"),
    expect: "grant",
  },
  { name: "grant: authenticator code alone", st: withTotp(), attempt: aloneCode(101), expect: "grant" },
  {
    name: "PIN alone of a Dual user",
    st: withTotp(),
    attempt: keypad(D_DAVE),
    expect: DenyReason.SecondCredentialRequired,
  },
  {
    name: "PIN then a wrong code",
    st: withTotp(),
    attempt: dualCode("mismatch"),
    expect: DenyReason.TotpInvalid,
  },
  {
    name: "PIN then a used code",
    st: withTotp(),
    attempt: dualCode("replayed"),
    expect: DenyReason.TotpReplayed,
  },
  {
    name: "code alone at or below the last accepted step",
    st: withTotp(),
    attempt: aloneCode(100),
    expect: DenyReason.TotpReplayed,
  },
  {
    name: "clock untrusted: authenticator code, even for an unrestricted user",
    st: withTotp({ clockTrusted: false }),
    attempt: dualCode("accepted"),
    expect: DenyReason.ClockUntrusted,
  },
  { name: "grant: guest code", st: base(), attempt: guest(null), expect: "grant" },
  { name: "guest code revoked", st: base(), attempt: guest("revoked"), expect: DenyReason.Revoked },
  { name: "guest code used up", st: base(), attempt: guest("used_up"), expect: DenyReason.UsedUp },
  { name: "guest code early", st: base(), attempt: guest("not_yet_valid"), expect: DenyReason.NotYetValid },
  { name: "guest code state full", st: base(), attempt: guest("state_full"), expect: DenyReason.StateFull },
  {
    name: "guest code, clock untrusted",
    st: base(undefined, { clockTrusted: false }),
    attempt: guest(null),
    expect: DenyReason.ClockUntrusted,
  },
  {
    name: "guest code in Vacation",
    st: base(undefined, { operatingMode: "vacation" }),
    attempt: guest(null),
    expect: DenyReason.ModeForbids,
  },
  {
    name: "guest code at battery reserve",
    st: base(undefined, { battery: "critical" }),
    attempt: guest(null),
    expect: DenyReason.BatteryReserve,
  },
];

describe("decide(): one row per outcome", () => {
  it.each(table)("$name", ({ st, attempt, now, expect: want }) => {
    const d = decide(st, attempt, now ?? T0);
    expect(d.outcome === "grant" ? "grant" : d.reason).toBe(want);
  });

  it("covers every DenyReason", () => {
    const covered = new Set(table.map((r) => r.expect));
    for (const r of Object.values(DenyReason)) expect(covered, r).toContain(r);
  });

  it("guest codes: refusals never count as wrong entries; a grant carries the record to persist", () => {
    for (const r of [
      "revoked",
      "used_up",
      "expired",
      "not_yet_valid",
      "outside_schedule",
      "state_full",
    ] as const) {
      expect(decide(base(), guest(r), T0)).toMatchObject({ outcome: "deny", countsAsWrongEntry: false });
    }
    const record = {
      issuerId: "iss_a",
      epoch: 0,
      codeId: "0123456789abcdef",
      revoked: false,
      uses: 1,
      firstUsedAt: T0,
      dropAfter: 1,
    };
    expect(decide(base(), guest(null, record), T0)).toEqual({
      outcome: "grant",
      userId: null,
      credentialId: null,
      duress: false,
      effects: [{ kind: "guestCodeUse", record }],
    });
  });

  it("a duress PIN grants and flags duress", () => {
    const d = decide(base(), keypad(D_DURESS), T0);
    expect(d).toMatchObject({ outcome: "grant", userId: "alice", duress: true });
  });

  it("authenticator codes: a grant carries the step to persist; wrong codes count, a PIN alone does not", () => {
    expect(decide(withTotp(), dualCode("accepted", 200), T0)).toMatchObject({
      outcome: "grant",
      userId: "dave",
      credentialId: "t-dave",
      effects: [{ kind: "acceptTotpStep", credentialId: "t-dave", step: 200 }],
    });
    expect(decide(withTotp(), keypad(D_DAVE), T0)).toMatchObject({
      userId: "dave",
      countsAsWrongEntry: false,
    });
    expect(decide(withTotp(), dualCode("mismatch"), T0)).toMatchObject({ countsAsWrongEntry: true });
    expect(decide(withTotp(), dualCode("replayed"), T0)).toMatchObject({ countsAsWrongEntry: true });
    expect(decide(withTotp({ clockTrusted: false }), dualCode("mismatch"), T0)).toMatchObject({
      reason: DenyReason.ClockUntrusted,
      countsAsWrongEntry: false,
    });
    // A code alone must name a credential that opens alone at this lock: Dave's Dual one does not.
    const daveAlone: Attempt = {
      source: "keypad",
      pinDigest: D_UNKNOWN,
      totp: { mode: "alone", outcome: "accepted", credentialId: "t-dave", step: 5 },
    };
    expect(decide(withTotp(), daveAlone, T0)).toMatchObject({
      reason: DenyReason.UnknownCredential,
      countsAsWrongEntry: true,
    });
    // Bob has no authenticator: his PIN then six digits is an unknown entry.
    const bobThenCode: Attempt = {
      source: "keypad",
      pinDigest: D_BOB,
      totp: { mode: "dual", outcome: "accepted", credentialId: "t-dave", step: 5 },
    };
    expect(decide(withTotp(), bobThenCode, T0)).toMatchObject({ reason: DenyReason.UnknownCredential });
    // Scoped elsewhere, Dave's authenticator does not hold back his PIN here.
    const scoped = state(
      [dave],
      [pin("c-dave", "dave", D_DAVE), totp("t-dave", "dave", { locks: ["back-door"] })],
    );
    expect(decide(scoped, keypad(D_DAVE), T0).outcome).toBe("grant");
  });

  it("an expiring user past its timeout is denied and disabled for good", () => {
    const st = base([
      alice,
      user({
        id: "bob",
        userType: "expiringDisposable",
        expiringTimeout: 60 as never,
        firstUsedAt: EpochMs(T0 - 61_000),
      }),
    ]);
    const d = decide(st, keypad(D_BOB), T0);
    expect(d).toMatchObject({
      outcome: "deny",
      reason: "expired",
      effects: [{ kind: "disableUser", userId: "bob" }],
    });
  });

  it("a disposable user's first grant disables the user", () => {
    const d = decide(base([alice, user({ id: "bob", userType: "disposable" })]), keypad(D_BOB), T0);
    expect(d.outcome).toBe("grant");
    expect(d.effects.map((e) => e.kind)).toEqual(["markFirstUse", "disableUser"]);
  });

  it("only unknown or wrong-lock credentials and wrong or used authenticator codes count towards WrongCodeEntryLimit", () => {
    const counted: string[] = ["unknown_credential", "wrong_lock", "totp_invalid", "totp_replayed"];
    for (const row of table) {
      const d = decide(row.st, row.attempt, T0);
      if (d.outcome === "deny") {
        expect(d.countsAsWrongEntry, row.name).toBe(counted.includes(d.reason));
      }
    }
  });
});

describe("decide(): properties", () => {
  const modes = fc.constantFrom("normal", "vacation", "privacy", "noRemoteLockUnlock", "passage" as const);
  const attempts: fc.Arbitrary<Attempt> = fc.oneof(
    fc.constantFrom(D_ALICE, D_BOB, D_DURESS, D_UNKNOWN).map(keypad),
    fc
      .constantFrom("uid:04a1b2c3", "uid:0badcafe", "uid:ffffffff")
      .map((cardId) => ({ source: "rfid" as const, cardId })),
    fc.integer({ min: -1, max: 9 }).map((slot) => ({ source: "biometric" as const, slot })),
    fc.constantFrom("alice", "bob", "mallory").map((userId) => ({ source: "remote" as const, userId })),
  );

  it("never grants an unknown credential, in any mode, battery or clock state", () => {
    fc.assert(
      fc.property(
        attempts,
        modes,
        fc.constantFrom("ok", "low", "critical" as const),
        fc.boolean(),
        (a, mode, battery, clockTrusted) => {
          const d = decide(base(undefined, { operatingMode: mode, battery, clockTrusted }), a, T0);
          const unknown =
            (a.source === "keypad" && a.pinDigest === D_UNKNOWN) ||
            (a.source === "rfid" && a.cardId !== "uid:04a1b2c3") ||
            (a.source === "biometric" && a.slot !== 7) ||
            (a.source === "remote" && a.userId === "mallory");
          if (unknown) expect(d.outcome).toBe("deny");
        },
      ),
    );
  });

  it("privacy mode grants nothing from outside", () => {
    fc.assert(
      fc.property(attempts, (a) => {
        expect(decide(base(undefined, { operatingMode: "privacy" }), a, T0).outcome).toBe("deny");
      }),
    );
  });

  it("a disabled user is never granted", () => {
    fc.assert(
      fc.property(attempts, modes, (a, mode) => {
        const users = [alice, bob].map((u) => ({ ...u, userStatus: "occupiedDisabled" as const }));
        expect(decide(base(users, { operatingMode: mode }), a, T0).outcome).toBe("deny");
      }),
    );
  });

  it("a time-bound user is never granted with an untrusted clock, at any instant", () => {
    const weekly = user({
      id: "bob",
      userType: "weekDaySchedule",
      weekDaySchedules: [{ daysMask: 127, startHour: 0, startMinute: 0, endHour: 24, endMinute: 0 }],
    });
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2099, 0, 1) }), (t) => {
        expect(
          decide(base([alice, weekly], { clockTrusted: false }), keypad(D_BOB), EpochMs(t)).outcome,
        ).toBe("deny");
      }),
    );
  });

  it("year-day schedule: granted exactly inside [start, end) in the lock's zone", () => {
    const guest = user({
      id: "bob",
      userType: "yearDaySchedule",
      yearDaySchedules: [{ start: "2026-03-28T12:00", end: "2026-03-30T12:00" }],
    });
    const st = base([alice, guest], { timeZone: "Europe/Berlin" });
    // Berlin switches to CEST on 2026-03-29 at 02:00 local (01:00 UTC).
    const start = at("2026-03-28T11:00:00Z"); // 12:00 CET
    const end = at("2026-03-30T10:00:00Z"); // 12:00 CEST
    fc.assert(
      fc.property(fc.integer({ min: start - 86_400_000, max: end + 86_400_000 }), (t) => {
        const d = decide(st, keypad(D_BOB), EpochMs(t));
        expect(d.outcome === "grant").toBe(t >= start && t < end);
      }),
    );
  });
});
