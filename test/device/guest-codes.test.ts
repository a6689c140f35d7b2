/**
 * Guest codes at the simulated door (docs/protocol/guest-codes.md): codes issued from the issuer key alone
 * (as an offline admin machine does) open exactly inside their windows, one-time and use-limited codes
 * stop after their uses across a restart, single codes and whole issuers can be revoked, an untrusted
 * clock refuses them, and the audit log names the code, never its digits.
 * The fake clock starts Monday 2026-01-05 09:00 UTC = 10:00 in Europe/Berlin (the lock's zone).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type GuestCodeRequest,
  issueGuestCode,
  revocationMac,
} from "../../src/core/credentials/guest-code.ts";
import { parseOtpauthUri, totpAt } from "../../src/core/credentials/totp.ts";
import { fromHex } from "../../src/core/crypto.ts";
import { parseLocalDateTime } from "../../src/core/schedule.ts";
import { EpochMs } from "../../src/core/units.ts";
import type { IssuerFileView } from "../../src/hub/hub.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { type Harness, makeHub, settle } from "../support/hub-harness.ts";

let h: Harness;
let issuer: IssuerFileView;
beforeEach(() => {
  h = makeHub();
  issuer = h.hub.enrolIssuer(h.owner, "front-door");
});
afterEach(() => h.cleanup());

const sim = () => h.hub.simulator("front-door");
/** Issue offline: nothing but the issuer file's key (the hub is not involved). */
const issue = (req: GuestCodeRequest) =>
  issueGuestCode(nodeCrypto, fromHex(issuer.keyHex), req, { digits: issuer.digits });
const at = (isoUtc: string) => EpochMs(Date.parse(isoUtc));
/**
 * Jump the fake clock (and with it the RTC and the monotonic clock) to an instant without firing every
 * timer on the way; the overdue housekeeping tick runs once on the next advance.
 */
async function moveTo(isoUtc: string) {
  h.clock.set(at(isoUtc));
  await h.clock.advance(0);
}
const lastAccess = () =>
  h.hub.store.query({ limit: 1, descending: true, kinds: ["access.granted", "access.denied"] })[0]!;
async function enter(code: string) {
  const r = await settle(h, sim().enterPin(code));
  await h.clock.advance(31_000); // let AutoRelockTime close the door again
  return r;
}

describe("guest codes at the door", () => {
  it("opens exactly inside its window, with the drift tolerance at both edges", async () => {
    // Local 2026-01-06 09:00–12:00 = 08:00–11:00 UTC.
    const { code, codeId } = issue({ kind: "window", from: "2026-01-06T09:00", to: "2026-01-06T12:00" });
    await moveTo("2026-01-06T07:57:30Z");
    expect(await enter(code)).toBe("denied");
    expect(lastAccess().data.reason).toBe("not_yet_valid");
    await moveTo("2026-01-06T07:58:00Z"); // 2 min early: inside δ
    expect(await enter(code)).toBe("granted");
    const granted = lastAccess();
    expect(granted.data).toMatchObject({
      credentialType: "guestCode",
      issuerId: issuer.issuerId,
      epoch: 0,
      codeId,
      codeKind: "window",
    });
    await moveTo("2026-01-06T11:01:00Z"); // 12:01 local: inside δ
    expect(await enter(code)).toBe("granted");
    await moveTo("2026-01-06T11:02:00Z");
    expect(await enter(code)).toBe("denied");
    expect(lastAccess().data.reason).toBe("expired");
    // None of these refusals counted as a wrong entry.
    expect(h.hub.store.query({ limit: 10, kinds: ["alarm.lockout"] })).toHaveLength(0);
  });

  it("a code issued a year ahead opens on its day, with no activation deadline", async () => {
    const { code } = issue({ kind: "window", from: "2027-01-04T15:00", to: "2027-01-08T11:00" });
    expect(await enter(code)).toBe("denied");
    await moveTo("2027-01-06T12:00:00Z");
    expect(await enter(code)).toBe("granted");
  });

  it("one-time codes open once, use-limited codes N times, and both stay used across a restart", async () => {
    const once = issue({ kind: "oneTime", from: "2026-01-05T09:00", to: "2026-01-05T17:00" });
    const thrice = issue({ kind: "uses", from: "2026-01-05T00:00", to: "2026-01-07T00:00", uses: 3 });
    expect(await enter(once.code)).toBe("granted");
    expect(await enter(thrice.code)).toBe("granted");
    expect(await enter(thrice.code)).toBe("granted");
    h.restart();
    expect(await enter(once.code)).toBe("denied");
    expect(lastAccess().data.reason).toBe("used_up");
    expect(await enter(thrice.code)).toBe("granted");
    expect(await enter(thrice.code)).toBe("denied");
    expect(lastAccess().data.reason).toBe("used_up");
  });

  it("first use starts the clock: D after the first grant, even past the activation window", async () => {
    const { code } = issue({
      kind: "firstUse",
      from: "2026-01-05T00:00",
      to: "2026-01-06T00:00",
      durationMinutes: 1440,
    });
    await moveTo("2026-01-05T20:00:00Z"); // 21:00 local
    expect(await enter(code)).toBe("granted");
    h.restart();
    await moveTo("2026-01-06T19:59:00Z");
    expect(await enter(code)).toBe("granted");
    await moveTo("2026-01-06T20:03:00Z"); // 24 h + δ after the first use
    expect(await enter(code)).toBe("denied");
    expect(lastAccess().data.reason).toBe("expired");
  });

  it("recurring codes open on their days and hours only", async () => {
    // Mondays 09:00–12:00 local, January–March 2026. The clock starts Monday 10:00 local.
    const { code } = issue({
      kind: "recurring",
      daysMask: 0x02,
      startHour: 9,
      lengthHours: 3,
      fromDate: "2026-01-01",
      toDate: "2026-03-31",
    });
    expect(await enter(code)).toBe("granted");
    await moveTo("2026-01-06T09:00:00Z"); // Tuesday 10:00
    expect(await enter(code)).toBe("denied");
    expect(lastAccess().data.reason).toBe("outside_schedule");
    await moveTo("2026-01-12T10:30:00Z"); // next Monday 11:30
    expect(await enter(code)).toBe("granted");
  });

  it("a single code can be revoked, by an admin or by its issuer's MAC alone, and stays revoked", async () => {
    const a = issue({ kind: "window", from: "2026-01-05T09:00", to: "2026-01-09T09:00" });
    const b = issue({ kind: "window", from: "2026-01-05T09:00", to: "2026-01-09T10:00" });
    const dropAfter = parseLocalDateTime("2026-01-09T10:02"); // the codes' end + δ
    h.hub.revokeGuestCode(h.owner, "front-door", {
      issuerId: issuer.issuerId,
      epoch: 0,
      codeId: a.codeId,
      dropAfter,
    });
    const r = { issuerId: issuer.issuerId, epoch: 0, codeId: b.codeId, dropAfter };
    expect(() => h.hub.revokeGuestCode(null, "front-door", { ...r, mac: "00".repeat(32) })).toThrow(
      /LK_UNAUTHENTICATED/,
    );
    const mac = revocationMac(nodeCrypto, fromHex(issuer.keyHex), r);
    expect(h.hub.revokeGuestCode(null, "front-door", { ...r, mac })).toEqual({ status: "revoked" });
    expect(h.hub.revokeGuestCode(null, "front-door", { ...r, mac })).toEqual({ status: "alreadyRevoked" });
    const c = issue({ kind: "window", from: "2026-01-05T09:00", to: "2026-01-09T11:00" });
    h.restart();
    expect(await enter(a.code)).toBe("denied");
    expect(lastAccess().data.reason).toBe("revoked");
    expect(await enter(b.code)).toBe("denied");
    expect(await enter(c.code)).toBe("granted");
    const revokes = h.hub.store
      .query({ limit: 10, kinds: ["admin.change"] })
      .filter((e) => e.data.action === "guestCode.revoke");
    expect(revokes.map((e) => e.data.codeId)).toEqual([a.codeId, b.codeId]);
  });

  it("raising an issuer's epoch revokes everything it issued so far; the new key issues again", async () => {
    const old = issue({ kind: "window", from: "2026-01-05T09:00", to: "2026-01-09T09:00" });
    expect(h.hub.raiseIssuerEpoch(h.owner, "front-door", issuer.issuerId)).toEqual({
      issuerId: issuer.issuerId,
      epoch: 1,
    });
    expect(await enter(old.code)).toBe("denied");
    expect(lastAccess().data.reason).toBe("unknown_credential");
    issuer = h.hub.enrolIssuer(h.owner, "front-door");
    expect(issuer.epoch).toBe(1);
    expect(
      await enter(issue({ kind: "window", from: "2026-01-05T09:00", to: "2026-01-09T09:00" }).code),
    ).toBe("granted");
    h.hub.removeIssuer(h.owner, "front-door", issuer.issuerId);
    expect(
      await enter(issue({ kind: "window", from: "2026-01-05T09:00", to: "2026-01-09T10:00" }).code),
    ).toBe("denied");
  });

  it("refuses codes while the clock is untrusted, without counting authentic ones as wrong entries", async () => {
    const { code } = issue({ kind: "window", from: "2026-01-05T09:00", to: "2026-01-09T09:00" });
    sim().setRtc(EpochMs(h.clock.now() - 3_600_000)); // set back an hour, behind the floor
    expect(await enter(code)).toBe("denied");
    expect(lastAccess().data.reason).toBe("clock_untrusted");
    sim().cutRtcPower();
    expect(await enter(code)).toBe("denied");
    expect(lastAccess().data.reason).toBe("clock_untrusted");
    expect(h.hub.store.query({ limit: 10, kinds: ["alarm.lockout"] })).toHaveLength(0);
    sim().setRtc(h.clock.now());
    expect(await enter(code)).toBe("granted");
  });

  it("refuses codes after the RTC jumps forward by itself, until an owner sets the time", async () => {
    const { code } = issue({ kind: "window", from: "2026-01-05T09:00", to: "2026-01-09T09:00" });
    expect(await enter(code)).toBe("granted");
    sim().setRtc(EpochMs(h.clock.now() + 86_400_000)); // a day ahead, with no time passing
    expect(await enter(code)).toBe("denied");
    expect(lastAccess().data.reason).toBe("clock_untrusted");
    h.hub.lock("front-door").setClock(h.clock.now(), h.owner.userId, true);
    expect(await enter(code)).toBe("granted");
  });

  it("wrong codes count towards the keypad lockout like wrong PINs", async () => {
    for (let i = 0; i < 5; i++) expect(await enter(`1234567890${String(i).padStart(2, "0")}`)).toBe("denied");
    expect(h.hub.store.query({ limit: 10, kinds: ["alarm.lockout"] })).toHaveLength(1);
    const { code } = issue({ kind: "window", from: "2026-01-05T09:00", to: "2026-01-09T09:00" });
    expect(await settle(h, sim().enterPin(code))).toBe("locked_out");
  });

  it("a 6-digit PIN plus an authenticator code (12 digits, the guest-code length) still opens as the user", async () => {
    const bob = h.hub.addUser(h.owner, { name: "Bob" });
    h.hub.setPin(h.owner, bob.id, "480613");
    const e = h.hub.addTotp(h.owner, bob.id, {});
    const secret = parseOtpauthUri(e.otpauthUri).secret;
    const entry = `480613${totpAt(nodeCrypto, secret, h.clock.now())}`;
    expect(entry).toHaveLength(issuer.digits);
    expect(await enter(entry)).toBe("granted");
    expect(lastAccess().data).toMatchObject({ credentialType: "totp", userId: bob.id });
    // And a guest code typed right after is still a guest code.
    const { code } = issue({ kind: "window", from: "2026-01-05T09:00", to: "2026-01-09T09:00" });
    expect(await enter(code)).toBe("granted");
    expect(lastAccess().data.credentialType).toBe("guestCode");
  });

  it("Privacy and Vacation modes refuse guest codes", async () => {
    const { code } = issue({ kind: "window", from: "2026-01-05T09:00", to: "2026-01-09T09:00" });
    h.hub.setOperatingMode(h.owner, "front-door", "vacation");
    expect(await enter(code)).toBe("denied");
    expect(lastAccess().data.reason).toBe("mode_forbids");
  });

  it("issues through the hub too, never storing or logging the digits", async () => {
    const r = h.hub.issueGuestCode(
      h.owner,
      "front-door",
      { kind: "window", from: "2026-01-05T09:00", to: "2026-01-05T18:00" },
      "Cleaner",
    );
    expect(r.shareText).toContain(r.code.slice(-4));
    expect(await enter(r.code)).toBe("granted");
    expect(h.hub.guestCodes(h.owner, "front-door")).toMatchObject([
      { codeId: r.codeId, name: "Cleaner", revoked: false },
    ]);
    // The same request again gets a different code.
    const again = h.hub.issueGuestCode(
      h.owner,
      "front-door",
      { kind: "window", from: "2026-01-05T09:00", to: "2026-01-05T18:00" },
      "Cleaner 2",
    );
    expect(again.code).not.toBe(r.code);
    h.hub.close();
    const files = readdirSync(h.dir).filter((f) => f.startsWith("latchkey.db"));
    const bytes = files.map((f) => readFileSync(join(h.dir, f)).toString("latin1")).join("");
    expect(bytes).not.toContain(r.code);
    expect(bytes).not.toContain(again.code);
    h.restart();
  });

  it("prunes per-code state once it can no longer matter, and keeps refusing pruned codes", async () => {
    const once = issue({ kind: "oneTime", from: "2026-01-05T09:00", to: "2026-01-05T12:00" });
    expect(await enter(once.code)).toBe("granted");
    expect(h.hub.lock("front-door").guestCodeRows).toBe(1);
    await moveTo("2026-01-05T13:00:00Z"); // the tick runs every 60 s
    expect(h.hub.lock("front-door").guestCodeRows).toBe(0);
    // A forced clock set-back to inside the window does not revive it.
    h.hub.lock("front-door").setClock(at("2026-01-05T10:00:00Z"), h.owner.userId, true);
    expect(await enter(once.code)).toBe("denied");
    expect(lastAccess().data.reason).toBe("expired");
  });
});
