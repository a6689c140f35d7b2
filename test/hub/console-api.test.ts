/**
 * The hub's side of the console (issue 7): recovery code, offboarding, access review, lock health with
 * the battery forecast, and the readiness check — on a hub with a fake clock, then through the HTTP API.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { isLatchkeyError } from "../../src/core/errors.ts";
import { Milliseconds } from "../../src/core/units.ts";
import { runReadinessCheck } from "../../src/hub/readiness.ts";
import { accessReview, lockHealth } from "../../src/hub/review.ts";
import { type RunningHub, startHub } from "../../src/hub/server.ts";
import { callApi } from "../support/api-client.ts";
import { type Harness, makeHub, settle } from "../support/hub-harness.ts";

const DAY = 86_400_000;
let h: Harness;
afterEach(() => h?.cleanup());

/** Run a promise that waits on the motor while moving the fake clock. */
async function drive<T>(p: Promise<T>): Promise<T> {
  let done = false;
  const out = p.finally(() => {
    done = true;
  });
  for (let i = 0; i < 400 && !done; i++) await h.clock.advance(250);
  return out;
}

function code(e: unknown): string {
  return isLatchkeyError(e) ? e.code : String(e);
}

describe("recovery code", () => {
  it("is returned once at the claim, buys a new owner token once, and is replaced", () => {
    h = makeHub();
    const dir = mkdtempSync(join(tmpdir(), "latchkey-rec-"));
    rmSync(dir, { recursive: true, force: true });
    // makeHub claimed already: rotate to learn a code.
    const { recoveryCode } = h.hub.rotateRecoveryCode(h.owner);
    expect(recoveryCode).toMatch(/^LKR(-[0-9A-Z]{5}){5}$/);
    const r = h.hub.recover(recoveryCode.toLowerCase().replaceAll("-", " "));
    expect(h.hub.authenticate(r.token).userId).toBe(h.owner.userId);
    expect(r.recoveryCode).not.toBe(recoveryCode);
    // Spent.
    expect(() => h.hub.recover(recoveryCode)).toThrow(/LK_RECOVERY_INVALID/);
    expect(() => h.hub.recover("LKR-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA")).toThrow(/LK_RECOVERY_INVALID/);
    // The new one works; nothing of either code is in the audit log.
    const r2 = h.hub.recover(r.recoveryCode);
    const log = JSON.stringify(h.hub.queryAudit(h.owner, { limit: 1000 }));
    for (const c of [recoveryCode, r.recoveryCode, r2.recoveryCode])
      expect(log).not.toContain(c.slice(4, 15));
    expect(log).toContain("hub.recover");
  });
});

describe("offboarding", () => {
  it("revokes every credential, token, phone key and issuer in one step; the PIN is refused at the door", async () => {
    h = makeHub();
    const rt = h.hub.lock("front-door");
    const sam = h.hub.addUser(h.owner, { name: "Sam Roommate", role: "member" });
    h.hub.setPin(h.owner, sam.id, "480613");
    h.hub.addCard(h.owner, sam.id, { uid: "04A1B2C3D4E5F6" });
    h.hub.addFingerprint(h.owner, sam.id, 7);
    const { token } = h.hub.issueToken(h.owner, sam.id, "phone");
    expect((await settle(h, rt.keypadEntry("480613"))).feedback).toBe("granted");

    const out = h.hub.offboardUser(h.owner, sam.id);
    expect(out).toMatchObject({ credentials: 3, tokens: 1, removed: false });
    expect(h.hub.user(sam.id).userStatus).toBe("occupiedDisabled");
    expect(h.hub.credentialViews(sam.id)).toEqual([]);
    expect(() => h.hub.authenticate(token)).toThrow(/LK_UNAUTHENTICATED/);
    await h.clock.advance(10_000);
    expect((await settle(h, rt.keypadEntry("480613"))).feedback).not.toBe("granted");
    expect((await settle(h, rt.cardTap("04A1B2C3D4E5F6"))).feedback).not.toBe("granted");

    // Remove as well; the last owner cannot be offboarded, nor can you offboard yourself.
    expect(h.hub.offboardUser(h.owner, sam.id, { remove: true }).removed).toBe(true);
    expect(() => h.hub.user(sam.id)).toThrow(/LK_NOT_FOUND/);
    let err: unknown;
    try {
      h.hub.offboardUser(h.owner, h.owner.userId);
    } catch (e) {
      err = e;
    }
    expect(code(err)).toBe("LK_FORBIDDEN");
  });
});

describe("access review", () => {
  it("finds ghosts, credentials that never worked, keys near expiry, and lists the admins", async () => {
    h = makeHub();
    const rt = h.hub.lock("front-door");
    const ana = h.hub.addUser(h.owner, { name: "Ana", role: "member" });
    const ben = h.hub.addUser(h.owner, { name: "Ben", role: "admin" });
    h.hub.setPin(h.owner, ana.id, "480613");
    const benCard = h.hub.addCard(h.owner, ben.id, { uid: "04A1B2C3D4E5F6" });
    h.hub.updateUser(h.owner, ben.id, {
      yearDaySchedules: [{ start: "2026-01-01T00:00", end: "2026-01-12T00:00" }],
    });
    h.clock.set(h.clock.now() + 40 * DAY);
    expect((await settle(h, rt.keypadEntry("480613"))).feedback).toBe("granted");
    h.hub.sampleBatteries();

    const r = accessReview(h.hub, h.owner, 30);
    const ghosts = r.ghostUsers.map((g) => g.name);
    expect(ghosts).toContain("Ben");
    expect(ghosts).not.toContain("Ana");
    expect(r.neverWorked.map((c) => c.credentialId)).toEqual([benCard.id]);
    expect(r.admins.map((a) => a.name).sort()).toEqual(["Ben", "Olivia Owner"]);
    expect(r.sharedCodes).toEqual([]);
    // Ben's date range ended before "now": not near expiry any more; a fresh one that ends in 5 days is.
    const now = new Date(h.hub.now());
    const end = new Date(now.getTime() + 5 * DAY).toISOString().slice(0, 16);
    h.hub.updateUser(h.owner, ben.id, { yearDaySchedules: [{ start: "2026-01-01T00:00", end }] });
    const r2 = accessReview(h.hub, h.owner, 30);
    expect(r2.keysNearExpiry).toMatchObject([{ kind: "user", userId: ben.id, daysLeft: 4 }]);
    // Members may not see it.
    expect(() => accessReview(h.hub, { userId: ana.id, role: "member" }, 30)).toThrow(/LK_FORBIDDEN/);
  });
});

describe("guest-code list", () => {
  it("counts the uses of window codes from the audit log (the lock keeps no row for them)", async () => {
    h = makeHub();
    const rt = h.hub.lock("front-door");
    h.hub.enrolIssuer(h.owner, "front-door");
    const issued = h.hub.issueGuestCode(
      h.owner,
      "front-door",
      { kind: "window", from: "2026-01-05T09:00", to: "2026-01-05T12:00" },
      "Aunt May",
    );
    for (let i = 0; i < 2; i++) {
      expect((await settle(h, rt.keypadEntry(issued.code))).feedback).toBe("granted");
      await h.clock.advance(40_000);
    }
    const row = h.hub.guestCodes(h.owner, "front-door").find((c) => c.codeId === issued.codeId)!;
    expect(row.uses).toBe(2);
  });
});

describe("lock health", () => {
  it("charts the battery and forecasts its replacement from the observed drain", async () => {
    h = makeHub();
    const sim = h.hub.simulator("front-door");
    for (let d = 0; d <= 20; d++) {
      sim.setBattery(90 - d * 2);
      h.hub.sampleBatteries();
      h.clock.set(h.clock.now() + DAY);
    }
    const health = lockHealth(h.hub, h.owner, "front-door");
    expect(health.battery.history.length).toBeGreaterThanOrEqual(21);
    expect(health.battery.forecast.percentPerDay).toBeCloseTo(2, 1);
    expect(health.battery.forecast.replaceAt).not.toBeNull();
    // 50 % at day 20, 2 %/day, threshold 15 %: about 17.5 days after the last reading.
    const days = (Date.parse(health.battery.forecast.replaceAt!) - h.hub.now()) / DAY;
    expect(days).toBeGreaterThan(15);
    expect(days).toBeLessThan(19);
    expect(health.sync).toBeNull();
    expect(health.clock.trusted).toBe(true);
    sim.jamNextDrive();
    await drive(h.hub.remoteUnlock(h.owner, "front-door"));
    expect(lockHealth(h.hub, h.owner, "front-door").alarms.map((a) => a.kind)).toContain("alarm.jam");
  });
});

describe("readiness check (no cloud)", () => {
  it("decides a temporary credential of each enrolled kind locally, adds and removes a person, and leaves nothing behind", async () => {
    h = makeHub();
    const ana = h.hub.addUser(h.owner, { name: "Ana", role: "member" });
    h.hub.setPin(h.owner, ana.id, "480613");
    h.hub.addCard(h.owner, ana.id, { uid: "04A1B2C3D4E5F6" });
    h.hub.addFingerprint(h.owner, ana.id, 3);
    h.hub.addTotp(h.owner, ana.id, { requirePin: true });
    h.hub.enrolIssuer(h.owner, "front-door");
    const usersBefore = h.hub.users().map((u) => u.id);
    const credsBefore = h.hub.credentialViews().map((c) => c.id);

    const report = await drive(runReadinessCheck(h.hub, h.owner));
    const byId = Object.fromEntries(report.steps.map((s) => [s.id, s]));
    expect(Object.keys(byId)).toEqual(
      expect.arrayContaining([
        "uplink.cut",
        "user.add",
        "kind.pin",
        "kind.rfid",
        "kind.fingerprint",
        "kind.totp",
        "kind.guestCode",
        "user.remove",
        "audit.local",
        "backup.entry",
      ]),
    );
    for (const s of report.steps) expect(s.ok, `${s.id}: ${s.detail}`).toBe(true);
    expect(report.passed).toBe(true);
    expect(report.facts.cloud).toBe("none");
    expect(report.facts.enrolledKinds).toEqual(["fingerprint", "pin", "rfid", "totp", "guestCode"]);
    // Nothing left behind; the lock is locked again.
    expect(h.hub.users().map((u) => u.id)).toEqual(usersBefore);
    expect(h.hub.credentialViews().map((c) => c.id)).toEqual(credsBefore);
    expect(h.hub.status("front-door").lockState).toBe("locked");
    // Stored, and a second check at once is refused while one runs.
    expect(h.hub.store.console.report(report.id)).not.toBeNull();
    const first = runReadinessCheck(h.hub, h.owner);
    await expect(runReadinessCheck(h.hub, h.owner)).rejects.toThrow(/LK_CHECK_RUNNING/);
    await drive(first);
  });

  it("passes again and again (each check's guest code differs; its events are marked)", async () => {
    h = makeHub();
    const ana = h.hub.addUser(h.owner, { name: "Ana", role: "member" });
    h.hub.setPin(h.owner, ana.id, "480613");
    h.hub.enrolIssuer(h.owner, "front-door");
    for (let i = 0; i < 12; i++) {
      const report = await drive(runReadinessCheck(h.hub, h.owner));
      expect(report.steps.filter((s) => !s.ok)).toEqual([]);
      const marked = h.hub
        .queryAudit(h.owner, { kinds: ["access.granted"], limit: 1000 })
        .filter((e) => e.data.readinessCheck === report.id);
      expect(marked.length).toBe(2); // the PIN and the guest code
    }
  });

  it("reports a refused kind honestly (privacy mode) instead of passing", async () => {
    h = makeHub();
    const ana = h.hub.addUser(h.owner, { name: "Ana", role: "member" });
    h.hub.setPin(h.owner, ana.id, "480613");
    h.hub.setOperatingMode(h.owner, "front-door", "privacy");
    const report = await drive(runReadinessCheck(h.hub, h.owner));
    expect(report.passed).toBe(false);
    const pin = report.steps.find((s) => s.id === "kind.pin")!;
    expect(pin.ok).toBe(false);
    expect(pin.detail).toMatch(/refused/);
  });
});

describe("console routes over HTTP", () => {
  let running: RunningHub;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "latchkey-console-api-"));
    running = await startHub({
      dataDir: dir,
      port: 0,
      host: "127.0.0.1",
      timeZone: "UTC",
      motorTime: Milliseconds(5),
      print: () => {},
    });
  });
  afterAll(async () => {
    await running.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("claims with a recovery code, runs the check, serves the printable report, offboards", async () => {
    const claim = await callApi(
      running.url,
      "POST",
      "/api/v1/claim",
      { setupCode: running.setupCode, ownerName: "Olivia" },
      null,
    );
    expect(claim.status).toBe(200);
    const { token, recoveryCode } = claim.json.data as { token: string; recoveryCode: string };
    expect(recoveryCode).toMatch(/^LKR-/);
    const api = (m: string, p: string, b?: unknown, t: string | null = token) =>
      callApi(running.url, m, p, b, t);

    const policy = await api("GET", "/api/v1/recovery/policy");
    expect((policy.json.data as { lines: string[] }).lines.join(" ")).toMatch(/Mechanical key/);

    const sam = await api("POST", "/api/v1/users", { name: "Sam", role: "member" });
    const samId = (sam.json.data as { id: string }).id;
    expect((await api("POST", `/api/v1/users/${samId}/pin`, { pin: "480613" })).status).toBe(200);
    const weak = await api("POST", `/api/v1/users/${samId}/pin`, { pin: "123456" });
    expect(weak.json).toMatchObject({ ok: false, error: { code: "LK_PIN_WEAK" } });

    const check = await api("POST", "/api/v1/check");
    expect(check.status).toBe(200);
    const rep = check.json.data as {
      id: string;
      passed: boolean;
      steps: { id: string; ok: boolean; detail: string }[];
    };
    expect(rep.steps.filter((s) => !s.ok)).toEqual([]);
    expect(rep.passed).toBe(true);
    const list = await api("GET", "/api/v1/checks");
    expect((list.json.data as { id: string }[])[0]!.id).toBe(rep.id);
    const html = await fetch(`${running.url}/api/v1/checks/${rep.id}/report.html`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(html.headers.get("content-type")).toMatch(/text\/html/);
    const page = await html.text();
    expect(page).toContain("PASSED");
    expect(page).toContain(rep.id);
    expect(page).not.toMatch(/https?:\/\//);
    expect((await api("GET", "/api/v1/checks/chk-0000000000000000")).status).toBe(404);
    expect((await api("GET", `/api/v1/checks/${rep.id}/report.html`, undefined, null)).status).toBe(401);

    const health = await api("GET", "/api/v1/locks/front-door/health");
    expect(health.json.data).toMatchObject({
      lockId: "front-door",
      battery: { forecast: { thresholdPercent: 15 } },
    });
    const review = await api("GET", "/api/v1/review?days=30");
    expect(review.status).toBe(200);
    expect((await api("GET", "/api/v1/review?days=0")).json).toMatchObject({
      error: { code: "LK_INVALID_INPUT" },
    });

    const off = await api("POST", `/api/v1/users/${samId}/offboard`, { remove: true });
    expect(off.json.data).toMatchObject({ credentials: 1, removed: true });
    const unknown = await api("POST", `/api/v1/users/${samId}/offboard`, {});
    expect(unknown.status).toBe(404);

    const rec = await api("POST", "/api/v1/recover", { recoveryCode }, null);
    expect(rec.status).toBe(200);
    // Sign out revokes the token presented, and only it.
    const other = (rec.json.data as { token: string }).token;
    expect((await api("POST", "/api/v1/signout", undefined, other)).json).toMatchObject({
      data: { revoked: true },
    });
    expect((await api("GET", "/api/v1/me", undefined, other)).status).toBe(401);
    expect((await api("GET", "/api/v1/me")).status).toBe(200);
    expect((await api("POST", "/api/v1/signout", undefined, other)).status).toBe(401);
    const again = await api("POST", "/api/v1/recover", { recoveryCode }, null);
    expect(again.json).toMatchObject({ ok: false, error: { code: "LK_RECOVERY_INVALID" } });
  });

  it("serves the console (or says how to build it) with a same-origin Content-Security-Policy", async () => {
    const res = await fetch(`${running.url}/`);
    expect([200, 503]).toContain(res.status);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(res.headers.get("content-security-policy")).toContain("connect-src 'self'");
  });
});
