import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { encodeWiegand } from "../../src/core/credentials/wiegand.ts";
import { EpochMs } from "../../src/core/units.ts";
import { type Harness, makeHub, settle } from "../support/hub-harness.ts";

let h: Harness;
beforeEach(() => {
  h = makeHub();
});
afterEach(() => h.cleanup());

const sim = () => h.hub.simulator("front-door");
const kinds = () => h.hub.store.query({ limit: 1000 }).map((e) => e.kind);
const lastDenyReason = () =>
  h.hub.store.query({ limit: 1, descending: true, kinds: ["access.denied"] })[0]?.data.reason;

function addBob(pin = "480613") {
  const bob = h.hub.addUser(h.owner, { name: "Bob" });
  h.hub.setPin(h.owner, bob.id, pin);
  return bob;
}

describe("the front door, simulated", () => {
  it("opens for the right PIN, records the grant before the bolt moves, and relocks after AutoRelockTime", async () => {
    addBob();
    const p = sim().enterPin("480613");
    await Promise.resolve();
    // The motor is still running: the grant must already be durable in the log.
    expect(h.hub.status("front-door").lockState).toBe("unlocking");
    expect(h.hub.store.query({ limit: 10, kinds: ["access.granted"] })).toHaveLength(1);
    expect(await settle(h, p)).toBe("granted");
    expect(h.hub.status("front-door").lockState).toBe("unlocked");
    await h.clock.advance(30_000);
    expect(h.hub.status("front-door").lockState).toBe("locked");
    const states = h.hub.store
      .query({ limit: 10, kinds: ["lock.state"] })
      .map((e) => `${e.data.to}/${e.data.source}`);
    expect(states).toEqual(["unlocked/keypad", "locked/auto"]);
  });

  it("re-arms AutoRelockTime after a restart with the door unlocked", async () => {
    addBob();
    await settle(h, sim().enterPin("480613"));
    h.restart();
    expect(h.hub.status("front-door").lockState).toBe("unlocked");
    await h.clock.advance(31_000);
    expect(h.hub.status("front-door").lockState).toBe("locked");
  });

  it("setting a PIN again replaces the old one unless asked to add", async () => {
    const bob = addBob();
    h.hub.setPin(h.owner, bob.id, "702918");
    expect(await settle(h, sim().enterPin("480613"))).toBe("denied");
    expect(await settle(h, sim().enterPin("702918"))).toBe("granted");
    h.hub.setPin(h.owner, bob.id, "815372", { replace: false });
    expect(h.hub.credentialsOf(bob.id).filter((c) => c.type === "pin")).toHaveLength(2);
  });

  it("refuses control characters and duplicate names", () => {
    expect(() => h.hub.addUser(h.owner, { name: "Evil\u001b[31mRed" })).toThrow(/LK_INVALID_INPUT/);
    expect(() => h.hub.addUser(h.owner, { name: "two\nlines" })).toThrow(/LK_INVALID_INPUT/);
    h.hub.addUser(h.owner, { name: "Sam" });
    expect(() => h.hub.addUser(h.owner, { name: "sam" })).toThrow(/LK_CONFLICT/);
    expect(() => h.hub.addLock(h.owner, { id: "x", timeZone: "Mars/Olympus" })).toThrow(
      /LK_SCHEDULE_INVALID/,
    );
  });

  it("refuses a wrong PIN with the same feedback as an unknown user, and never logs digits", async () => {
    addBob();
    expect(await settle(h, sim().enterPin("480614"))).toBe("denied");
    expect(await settle(h, sim().enterPin("999999999"))).toBe("denied");
    const db = readFileSync(join(h.dir, "latchkey.db")).toString("latin1");
    const wal = readdirSync(h.dir).includes("latchkey.db-wal")
      ? readFileSync(join(h.dir, "latchkey.db-wal")).toString("latin1")
      : "";
    for (const digits of ["480613", "480614", "999999999"]) {
      expect(db + wal).not.toContain(digits);
    }
    expect(lastDenyReason()).toBe("unknown_credential");
  });

  it("locks out the keypad after WrongCodeEntryLimit, doubles on repeat, survives a restart, and spares the owner's card", async () => {
    addBob();
    const ownerCard = h.hub.addCard(h.owner, h.owner.userId, { uid: "04A1B2C3" });
    expect(ownerCard.type).toBe("rfid");
    for (let i = 0; i < 5; i++) await settle(h, sim().enterPin(`11223${i}`), 10);
    expect(kinds()).toContain("alarm.lockout");
    expect(await settle(h, sim().enterPin("480613"), 10)).toBe("locked_out");
    // Another input still works for the owner.
    expect(await settle(h, sim().tapCard("04:a1:b2:c3"))).toBe("granted");
    // A restart does not reset the counter.
    h.restart();
    expect(await settle(h, sim().enterPin("480613"), 10)).toBe("locked_out");
    await h.clock.advance(60_000);
    // Five more wrong codes: the second lockout lasts twice as long.
    for (let i = 0; i < 5; i++) await settle(h, sim().enterPin(`11224${i}`), 10);
    const alarms = h.hub.store.query({ limit: 10, kinds: ["alarm.lockout"] });
    expect(alarms.map((a) => (a.data.until as number) - a.at)).toEqual([60_000, 120_000]);
    await h.clock.advance(119_000);
    expect(await settle(h, sim().enterPin("480613"), 10)).toBe("locked_out");
    await h.clock.advance(2_000);
    expect(await settle(h, sim().enterPin("480613"))).toBe("granted");
  });

  it("setting the clock back never ends a lockout early", async () => {
    addBob();
    for (let i = 0; i < 5; i++) await settle(h, sim().enterPin(`11223${i}`), 10);
    sim().setRtc(EpochMs(h.clock.now() - 3_600_000));
    expect(await settle(h, sim().enterPin("480613"), 10)).toBe("locked_out");
  });

  it("setting the clock forward neither ends a lockout nor is trusted", async () => {
    addBob();
    for (let i = 0; i < 5; i++) await settle(h, sim().enterPin(`11223${i}`), 10);
    sim().setRtc(EpochMs(h.clock.now() + 3_600_000));
    expect(await settle(h, sim().enterPin("480613"), 10)).toBe("locked_out");
    expect(h.hub.status("front-door").clock).toMatchObject({ trusted: false, distrust: "jumpedForward" });
    // The lockout still ends on time, measured on the monotonic clock.
    await h.clock.advance(60_000);
    expect(await settle(h, sim().enterPin("480613"))).toBe("granted");
  });

  it("a lockout ends on time even while the clock is untrusted", async () => {
    addBob();
    for (let i = 0; i < 5; i++) await settle(h, sim().enterPin(`11223${i}`), 10);
    sim().cutRtcPower();
    await h.clock.advance(59_000);
    expect(await settle(h, sim().enterPin("480613"), 10)).toBe("locked_out");
    await h.clock.advance(2_000);
    expect(await settle(h, sim().enterPin("480613"))).toBe("granted");
  });

  it("never runs two motor drives at once, and the recorded states form one chain", async () => {
    addBob();
    const lock = h.hub.lock("front-door");
    const a = lock.remoteUnlock(h.owner.userId);
    const b = lock.remoteLock(h.owner.userId);
    const c = lock.remoteLock(h.owner.userId);
    const d = sim().enterPin("480613");
    await h.clock.advance(5_000);
    await Promise.all([a, b, c, d]);
    const states = h.hub.store.query({ limit: 50, kinds: ["lock.state"] });
    for (let i = 1; i < states.length; i++) expect(states[i]!.data.from).toBe(states[i - 1]!.data.to);
    expect(states[0]!.data.from).toBe("locked");
  });

  it("a relock waiting for the door is cancelled by passage mode", async () => {
    addBob();
    await settle(h, sim().enterPin("480613"));
    sim().openDoor();
    await h.clock.advance(31_000); // relock is now waiting for the door to close
    h.hub.setOperatingMode(h.owner, "front-door", "passage");
    sim().closeDoor();
    await h.clock.advance(5_000);
    expect(h.hub.status("front-door").lockState).toBe("unlocked");
  });

  it("opens for an ISO 14443 card and a Wiegand card; a bad-parity frame is logged and never matched", async () => {
    const bob = addBob();
    h.hub.addCard(h.owner, bob.id, { cardId: "h10301:123:45678" });
    const frame = encodeWiegand("h10301", 123, 45678);
    expect(await settle(h, sim().sendWiegand(frame))).toBe("granted");
    const flipped = `${frame.slice(0, 5)}${frame[5] === "0" ? "1" : "0"}${frame.slice(6)}`;
    expect(await settle(h, sim().sendWiegand(flipped))).toBe("denied");
    const bad = h.hub.store.query({ limit: 1, kinds: ["alarm.bad_frame"] })[0];
    expect(bad?.data).toMatchObject({ input: "wiegand", code: "LK_WIEGAND_PARITY", bits: 26 });
  });

  it("opens for an enrolled fingerprint slot only", async () => {
    const bob = addBob();
    h.hub.addFingerprint(h.owner, bob.id, 3);
    expect(await settle(h, sim().presentFinger(3))).toBe("granted");
    await h.clock.advance(30_000);
    expect(await settle(h, sim().presentFinger(4))).toBe("denied");
    expect(await settle(h, sim().presentFinger(null))).toBe("denied");
  });

  it("a duress PIN opens and raises a silent duress alarm", async () => {
    const bob = addBob();
    h.hub.setPin(h.owner, bob.id, "731945", { duress: true });
    expect(await settle(h, sim().enterPin("731945"))).toBe("granted");
    expect(h.hub.store.query({ limit: 5, kinds: ["alarm.duress"] })[0]?.data.userId).toBe(bob.id);
  });

  it("raises forced-open and door-ajar alarms from the door position sensor", async () => {
    sim().openDoor(); // bolt locked: forced
    expect(kinds()).toContain("alarm.forced_open");
    await h.clock.advance(61_000);
    expect(kinds()).toContain("alarm.door_ajar");
    expect(h.hub.status("front-door").doorState).toBe("ajar");
  });

  it("waits for the door to close before auto-relocking", async () => {
    addBob();
    await settle(h, sim().enterPin("480613"));
    sim().openDoor();
    await h.clock.advance(31_000);
    expect(h.hub.status("front-door").lockState).toBe("unlocked");
    sim().closeDoor();
    await h.clock.advance(1_000);
    expect(h.hub.status("front-door").lockState).toBe("locked");
  });

  it("keeps the battery reserve for owners, with low and critical alarms", async () => {
    addBob();
    h.hub.setPin(h.owner, h.owner.userId, "902417");
    sim().setBattery(15);
    h.hub.lock("front-door").checkBattery();
    sim().setBattery(4);
    h.hub.lock("front-door").checkBattery();
    expect(kinds()).toEqual(expect.arrayContaining(["alarm.battery_low", "alarm.battery_critical"]));
    expect(await settle(h, sim().enterPin("480613"))).toBe("denied");
    expect(lastDenyReason()).toBe("battery_reserve");
    expect(await settle(h, sim().enterPin("902417"))).toBe("granted");
  });

  it("refuses time-bound users when the RTC was set back or lost power, and recovers when an owner sets the time", async () => {
    const cleaner = h.hub.addUser(h.owner, {
      name: "Cleaner",
      userType: "weekDaySchedule",
      weekDaySchedules: [{ daysMask: 127, startHour: 0, startMinute: 0, endHour: 24, endMinute: 0 }],
    });
    h.hub.setPin(h.owner, cleaner.id, "580213");
    addBob();
    expect(await settle(h, sim().enterPin("580213"))).toBe("granted");
    await h.clock.advance(30_000);
    sim().setRtc(EpochMs(h.clock.now() - 86_400_000));
    expect(await settle(h, sim().enterPin("580213"))).toBe("denied");
    expect(lastDenyReason()).toBe("clock_untrusted");
    expect(kinds()).toContain("clock.untrusted");
    expect(await settle(h, sim().enterPin("480613"))).toBe("granted"); // unrestricted users still open
    await h.clock.advance(30_000);
    sim().cutRtcPower();
    expect(h.hub.status("front-door").clock).toMatchObject({ trusted: false, distrust: "powerLost" });
    h.hub.lock("front-door").setClock(h.clock.now(), h.owner.userId);
    expect(await settle(h, sim().enterPin("580213"))).toBe("granted");
  });

  it("scopes credentials to locks of the site", async () => {
    h.hub.addLock(h.owner, { id: "back-door", name: "Back door" });
    const bob = h.hub.addUser(h.owner, { name: "Bob" });
    h.hub.setPin(h.owner, bob.id, "480613", { locks: ["back-door"] });
    expect(await settle(h, sim().enterPin("480613"))).toBe("denied");
    expect(lastDenyReason()).toBe("wrong_lock");
    expect(await settle(h, h.hub.simulator("back-door").enterPin("480613"))).toBe("granted");
  });

  it("a disposable user opens once", async () => {
    const g = h.hub.addUser(h.owner, { name: "Plumber", userType: "disposable" });
    h.hub.setPin(h.owner, g.id, "640297");
    expect(await settle(h, sim().enterPin("640297"))).toBe("granted");
    await h.clock.advance(30_000);
    expect(await settle(h, sim().enterPin("640297"))).toBe("denied");
    expect(h.hub.user(g.id).userStatus).toBe("occupiedDisabled");
  });

  it("privacy mode refuses everyone outside; the mechanical key returns it to normal and is audited", async () => {
    addBob();
    h.hub.setOperatingMode(h.owner, "front-door", "privacy");
    expect(await settle(h, sim().enterPin("480613"))).toBe("denied");
    sim().turnKey("unlocked");
    expect(kinds()).toContain("lock.manual_key");
    expect(h.hub.lock("front-door").record.operatingMode).toBe("normal");
  });

  it("passage mode holds the door unlocked with no auto-relock", async () => {
    h.hub.setOperatingMode(h.owner, "front-door", "passage");
    await h.clock.advance(1_000);
    expect(h.hub.status("front-door").lockState).toBe("unlocked");
    await h.clock.advance(120_000);
    expect(h.hub.status("front-door").lockState).toBe("unlocked");
  });

  it("reports a jam as an alarm and a failed unlock", async () => {
    addBob();
    sim().jamNextDrive();
    expect(await settle(h, sim().enterPin("480613"))).toBe("error");
    expect(kinds()).toContain("alarm.jam");
    expect(h.hub.status("front-door").lockState).toBe("jammed");
  });

  it("keeps the whole log verifiable: checkpoints signed by the device key", async () => {
    addBob();
    for (let i = 0; i < 3; i++) {
      await settle(h, sim().enterPin("480613"));
      await h.clock.advance(30_000);
    }
    h.hub.audit.checkpoint();
    const v = h.hub.verifyAudit();
    expect(v).toMatchObject({ ok: true, unsignedTail: 0 });
    expect(v.checkpointsChecked).toBeGreaterThan(0);
  });
});

describe("audit retention", () => {
  it("trims to the bound behind a signed anchor, records the trim, and still verifies", async () => {
    h.cleanup();
    h = makeHub({ maxAuditEvents: 50, checkpointEvery: 10 });
    addBob();
    for (let i = 0; i < 120; i++) {
      await settle(h, sim().enterPin(i % 2 ? "480613" : "000000"));
    }
    await h.clock.advance(31_000);
    expect(h.hub.store.count()).toBeLessThanOrEqual(60);
    expect(h.hub.store.anchor()).not.toBeNull();
    expect(h.hub.store.query({ limit: 10, kinds: ["audit.trimmed"] }).length).toBeGreaterThan(0);
    expect(h.hub.verifyAudit().ok).toBe(true);
  });
});

describe("durability failure", () => {
  it("a failed audit write is fatal and the bolt does not move", async () => {
    addBob();
    // Make every audit insert fail the way a full disk or an fsync error does.
    h.hub.store.db.exec(
      "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(FAIL, 'disk I/O error'); END;",
    );
    const headBefore = h.hub.store.head();
    await expect(settle(h, sim().enterPin("480613"))).rejects.toMatchObject({ code: "LK_AUDIT_NOT_DURABLE" });
    expect(h.fatal.map((e) => e.code)).toEqual(["LK_AUDIT_NOT_DURABLE"]);
    expect(h.hub.status("front-door").lockState).toBe("locked");
    expect(h.hub.store.head()).toEqual(headBefore);
    h.hub.store.db.exec("DROP TRIGGER fail_audit");
  });
});
