import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { base32Encode } from "../../src/core/credentials/base32.ts";
import { parseOtpauthUri, totpAt } from "../../src/core/credentials/totp.ts";
import { EpochMs, Milliseconds } from "../../src/core/units.ts";
import { type RunningHub, startHub } from "../../src/hub/server.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { callApi } from "../support/api-client.ts";

let running: RunningHub;
let dir: string;
let ownerToken: string;

function api(method: string, path: string, body?: unknown, token: string | null = ownerToken, raw?: string) {
  return callApi(running.url, method, path, body, token, raw);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "latchkey-api-"));
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

describe("hub API", () => {
  it("states its capabilities without auth (credential kinds, limits, events, offline guarantees)", async () => {
    for (const path of ["/api/v1/capabilities", "/capabilities"]) {
      const res = await fetch(`${running.url}${path}`);
      expect(res.status).toBe(200);
      const { data } = (await res.json()) as {
        data: {
          credentials: Record<string, unknown>;
          offline: Record<string, unknown>;
          events: string[];
          interfaces: Record<string, unknown>;
        };
      };
      expect(data).toMatchObject({ format: "latchkey-capabilities", version: 1 });
      expect(Object.keys(data.credentials)).toEqual([
        "pin",
        "rfid",
        "fingerprint",
        "totp",
        "guestCode",
        "phoneKey",
      ]);
      expect(data.offline).toMatchObject({ decisions: true, management: true, auditLog: true });
      expect(data.events).toContain("alarm.forced_open");
      expect(data.interfaces.webConsole).toContain("served by the hub");
    }
  });

  it("answers /healthz without auth and serves an OpenAPI document", async () => {
    expect((await fetch(`${running.url}/healthz`)).status).toBe(200);
    const doc = (await (await fetch(`${running.url}/api/v1/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, unknown>;
    };
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/api/v1/claim", "/api/v1/users/{userId}/pin", "/api/v1/audit"]),
    );
  });

  it("keeps the setup code in a 0600 file and refuses a wrong one", async () => {
    const file = join(dir, "setup-code");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const bad = await api("POST", "/api/v1/claim", { setupCode: "AAAA-BBBB-CCCC", ownerName: "Eve" }, null);
    expect(bad).toMatchObject({ status: 401, json: { ok: false, error: { code: "LK_SETUP_CODE_INVALID" } } });
  });

  it("claims once with the setup code, then never again", async () => {
    const code = readFileSync(join(dir, "setup-code"), "utf8").trim();
    expect(code).toBe(running.setupCode);
    const r = await api(
      "POST",
      "/api/v1/claim",
      { setupCode: code.toLowerCase(), ownerName: "Olivia" },
      null,
    );
    expect(r.status).toBe(200);
    ownerToken = r.json.data.token;
    expect(ownerToken).toMatch(/^lk_[0-9a-f]{48}$/);
    const again = await api("POST", "/api/v1/claim", { setupCode: code, ownerName: "Eve" }, null);
    expect(again.json.error?.code).toBe("LK_ALREADY_CLAIMED");
    expect(() => statSync(join(dir, "setup-code"))).toThrow();
  });

  it("needs a valid token for everything else", async () => {
    expect((await api("GET", "/api/v1/users", undefined, null)).json.error?.code).toBe("LK_UNAUTHENTICATED");
    expect((await api("GET", "/api/v1/users", undefined, `lk_${"0".repeat(48)}`)).status).toBe(401);
  });

  it("answers bad input with a coded error and changes nothing", async () => {
    const before = (await api("GET", "/api/v1/users")).json.data.length;
    const auditBefore = (await api("GET", "/api/v1/audit?order=desc&limit=1")).json.data.events[0].seq;
    const cases = [
      await api("POST", "/api/v1/users", undefined, ownerToken, "{not json"),
      await api("POST", "/api/v1/users", { name: "" }),
      await api("POST", "/api/v1/users", { name: "X", role: "superuser" }),
      await api("POST", "/api/v1/users", { name: "X", extra: 1 }),
      await api("POST", "/api/v1/users", {
        name: "X",
        weekDaySchedules: [{ daysMask: 0, startHour: 1, startMinute: 0, endHour: 2, endMinute: 0 }],
      }),
      await api("POST", "/api/v1/users", { name: "x".repeat(70_000) }),
      await api("GET", "/api/v1/audit?limit=-4"),
    ];
    for (const c of cases) {
      expect(c.json.ok).toBe(false);
      expect(c.json.error?.code).toMatch(/^LK_(INVALID_INPUT|PAYLOAD_TOO_LARGE|SCHEDULE_INVALID)$/);
      expect(c.status).toBeGreaterThanOrEqual(400);
      expect(c.status).toBeLessThan(500);
    }
    expect((await api("GET", "/api/v1/users")).json.data.length).toBe(before);
    expect((await api("GET", "/api/v1/audit?order=desc&limit=1")).json.data.events[0].seq).toBe(auditBefore);
  });

  it("runs the walk-through: add a user, set a PIN, open at the keypad, read the log", async () => {
    const bob = (await api("POST", "/api/v1/users", { name: "Bob", role: "member" })).json.data;
    const weak = await api("POST", `/api/v1/users/${bob.id}/pin`, { pin: "123456" });
    expect(weak.json.error?.code).toBe("LK_PIN_WEAK");
    expect(weak.json.error?.message).not.toContain("123456");
    const set = await api("POST", `/api/v1/users/${bob.id}/pin`, { pin: "480613" });
    expect(set.status).toBe(200);
    expect(JSON.stringify(set.json)).not.toMatch(/480613|pinDigest/);
    const shared = await api("POST", "/api/v1/users", { name: "Carol" });
    const clash = await api("POST", `/api/v1/users/${shared.json.data.id}/pin`, { pin: "480613" });
    expect(clash.json.error?.code).toBe("LK_PIN_IN_USE");

    const open = await api("POST", "/api/v1/locks/front-door/simulator/keypad", { digits: "480613" });
    expect(open.json.data.feedback).toBe("granted");
    const wrong = await api("POST", "/api/v1/locks/front-door/simulator/keypad", { digits: "480612" });
    expect(wrong.json.data.feedback).toBe("denied");
    const log = await api("GET", `/api/v1/audit?kind=access.granted&userId=${bob.id}`);
    expect(log.json.data.events).toHaveLength(1);
    expect(JSON.stringify((await api("GET", "/api/v1/audit?limit=1000")).json)).not.toContain("480613");
    const verify = await api("GET", "/api/v1/audit/verify");
    expect(verify.json.data.ok).toBe(true);
  });

  it("lets members open but not manage users, and shows them only their own events", async () => {
    const m = (await api("POST", "/api/v1/users", { name: "Mia", role: "member" })).json.data;
    const token = (await api("POST", `/api/v1/users/${m.id}/tokens`, { label: "phone" })).json.data.token;
    expect((await api("POST", "/api/v1/users", { name: "Eve" }, token)).json.error?.code).toBe(
      "LK_FORBIDDEN",
    );
    expect((await api("GET", "/api/v1/users", undefined, token)).status).toBe(403);
    // No credential on this lock yet: a token alone does not open it.
    const refused = await api("POST", "/api/v1/locks/front-door/unlock", undefined, token);
    expect(refused.json.error?.code).toBe("LK_FORBIDDEN");
    expect(refused.json.error?.message).toContain("wrong_lock");
    // Members cannot set PINs, not even their own (the no-shared-codes answer would be an oracle).
    expect((await api("POST", `/api/v1/users/${m.id}/pin`, { pin: "750913" }, token)).json.error?.code).toBe(
      "LK_FORBIDDEN",
    );
    expect((await api("POST", `/api/v1/users/${m.id}/pin`, { pin: "750913" })).status).toBe(200);
    const unlock = await api("POST", "/api/v1/locks/front-door/unlock", undefined, token);
    expect(unlock.json.data.result).toBe("granted");
    const events = (await api("GET", "/api/v1/audit?limit=1000", undefined, token)).json.data.events as {
      data: { userId?: string };
    }[];
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.data.userId === m.id)).toBe(true);
    // An admin cannot create an owner.
    const a = (await api("POST", "/api/v1/users", { name: "Ada", role: "admin" })).json.data;
    const at = (await api("POST", `/api/v1/users/${a.id}/tokens`, { label: "x" })).json.data.token;
    expect((await api("POST", "/api/v1/users", { name: "Own", role: "owner" }, at)).json.error?.code).toBe(
      "LK_FORBIDDEN",
    );
  });

  it("audits and rate-limits PIN collisions so the no-shared-codes rule is not a PIN oracle", async () => {
    const admin = (await api("POST", "/api/v1/users", { name: "Prober", role: "admin" })).json.data;
    const adminToken = (await api("POST", `/api/v1/users/${admin.id}/tokens`, { label: "t" })).json.data
      .token;
    const u = (await api("POST", "/api/v1/users", { name: "Probe" })).json.data;
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await api("POST", `/api/v1/users/${u.id}/pin`, { pin: "480613" }, adminToken);
      codes.push(r.json.error?.code ?? "ok");
    }
    expect(codes).toEqual([
      "LK_PIN_IN_USE",
      "LK_PIN_IN_USE",
      "LK_PIN_IN_USE",
      "LK_PIN_IN_USE",
      "LK_PIN_IN_USE",
      "LK_FORBIDDEN",
    ]);
    const refusals = (
      await api("GET", "/api/v1/audit?kind=admin.change&order=desc&limit=50")
    ).json.data.events.filter(
      (e: { data: { action: string; actorId: string } }) =>
        e.data.action === "pin.refused_in_use" && e.data.actorId === admin.id,
    );
    expect(refusals).toHaveLength(5);
    expect(JSON.stringify(refusals)).not.toContain("480613");
  });

  it("never lets an owner's clock change lower the time floor by accident", async () => {
    const past = new Date(Date.now() - 86_400_000).toISOString();
    expect((await api("PUT", "/api/v1/locks/front-door/clock", { time: past })).json.error?.code).toBe(
      "LK_CONFLICT",
    );
    const forced = await api("PUT", "/api/v1/locks/front-door/clock", { time: past, force: true });
    expect(forced.json.data.clock.trusted).toBe(true);
    const ev = (await api("GET", "/api/v1/audit?kind=clock.set&order=desc&limit=1")).json.data.events[0];
    expect(ev.data.forced).toBe(true);
    expect(
      (await api("PUT", "/api/v1/locks/front-door/clock", { time: new Date().toISOString() })).status,
    ).toBe(200);
  });

  it("keeps tokens personal: self or owner issues, lists without secrets, revokes", async () => {
    const ada = (await api("POST", "/api/v1/users", { name: "Ada Admin", role: "admin" })).json.data;
    const adaToken = (await api("POST", `/api/v1/users/${ada.id}/tokens`, { label: "laptop" })).json.data
      .token;
    const max = (await api("POST", "/api/v1/users", { name: "Max" })).json.data;
    // An admin cannot mint a token for someone else (that would be acting as them).
    expect(
      (await api("POST", `/api/v1/users/${max.id}/tokens`, { label: "x" }, adaToken)).json.error?.code,
    ).toBe("LK_FORBIDDEN");
    // An admin cannot create a programming user (owner-level door privileges).
    expect(
      (await api("POST", "/api/v1/users", { name: "P", userType: "programming" }, adaToken)).json.error?.code,
    ).toBe("LK_FORBIDDEN");
    // Simulated hardware is the owner's alone.
    expect(
      (await api("POST", "/api/v1/locks/front-door/simulator/fingerprint", { slot: 1 }, adaToken)).status,
    ).toBe(403);
    // Ada can mint herself a second token, list them (no secrets) and revoke one.
    const second = (await api("POST", `/api/v1/users/${ada.id}/tokens`, { label: "phone" }, adaToken)).json
      .data.token;
    const list = (await api("GET", `/api/v1/users/${ada.id}/tokens`, undefined, adaToken)).json.data as {
      id: string;
      label: string;
    }[];
    expect(list.map((t) => t.label)).toEqual(["laptop", "phone"]);
    expect(JSON.stringify(list)).not.toMatch(/lk_[0-9a-f]{48}|hash/);
    const phone = list.find((t) => t.label === "phone")!;
    expect((await api("DELETE", `/api/v1/tokens/${phone.id}`, undefined, adaToken)).status).toBe(200);
    expect((await api("GET", "/api/v1/me", undefined, second)).json.error?.code).toBe("LK_UNAUTHENTICATED");
    expect((await api("GET", "/api/v1/me", undefined, adaToken)).status).toBe(200);
  });

  it("authorises remote lock like unlock, and allows Privacy only while locked", async () => {
    const g = (await api("POST", "/api/v1/users", { name: "Guest", role: "guest" })).json.data;
    const gt = (await api("POST", `/api/v1/users/${g.id}/tokens`, { label: "g" })).json.data.token;
    const lock = await api("POST", "/api/v1/locks/front-door/lock", undefined, gt);
    expect(lock.json.error?.code).toBe("LK_FORBIDDEN");
    expect(lock.json.error?.message).toContain("wrong_lock");
    await api("POST", "/api/v1/locks/front-door/unlock");
    expect((await api("PUT", "/api/v1/locks/front-door/mode", { mode: "privacy" })).json.error?.code).toBe(
      "LK_MODE_FORBIDS",
    );
    expect((await api("POST", "/api/v1/locks/front-door/lock")).json.data.result).toBe("locked");
    expect((await api("PUT", "/api/v1/locks/front-door/mode", { mode: "privacy" })).status).toBe(200);
    expect((await api("POST", "/api/v1/locks/front-door/lock")).json.error?.code).toBe("LK_MODE_FORBIDS");
    expect((await api("PUT", "/api/v1/locks/front-door/mode", { mode: "normal" })).status).toBe(200);
  });

  it("never removes the last owner", async () => {
    const me = (await api("GET", "/api/v1/me")).json.data;
    expect((await api("DELETE", `/api/v1/users/${me.id}`)).json.error?.code).toBe("LK_CONFLICT");
  });

  it("adds a second lock and scopes a card to it", async () => {
    expect((await api("POST", "/api/v1/locks", { id: "Back Door" })).json.error?.code).toBe(
      "LK_INVALID_INPUT",
    );
    expect(
      (await api("POST", "/api/v1/locks", { id: "back-door", timeZone: "Mars/Olympus" })).json.error?.code,
    ).toBe("LK_SCHEDULE_INVALID");
    expect((await api("POST", "/api/v1/locks", { id: "back-door", name: "Back door" })).status).toBe(200);
    const u = (await api("POST", "/api/v1/users", { name: "Courier" })).json.data;
    expect(
      (
        await api("POST", `/api/v1/users/${u.id}/cards`, {
          uid: "04:A1:B2:C3:D4:E5:F6",
          locks: ["back-door"],
        })
      ).status,
    ).toBe(200);
    expect(
      (await api("POST", "/api/v1/locks/front-door/simulator/card", { uid: "04a1b2c3d4e5f6" })).json.data
        .feedback,
    ).toBe("denied");
    expect(
      (await api("POST", "/api/v1/locks/back-door/simulator/card", { uid: "04a1b2c3d4e5f6" })).json.data
        .feedback,
    ).toBe("granted");
    expect((await api("POST", `/api/v1/users/${u.id}/cards`, { uid: "04:A1" })).json.error?.code).toBe(
      "LK_CARD_FORMAT",
    );
  });

  it("enrols an authenticator app once (URI and SVG QR code), lists it without the secret, opens with PIN then code", async () => {
    const u = (await api("POST", "/api/v1/users", { name: "Tess Totp" })).json.data;
    expect((await api("POST", `/api/v1/users/${u.id}/pin`, { pin: "590317" })).status).toBe(200);
    const r = await fetch(`${running.url}/api/v1/users/${u.id}/totp`, {
      method: "POST",
      headers: { authorization: `Bearer ${ownerToken}`, "content-type": "application/json" },
      body: JSON.stringify({ label: "phone" }),
    });
    expect(r.status).toBe(200);
    expect(r.headers.get("cache-control")).toBe("no-store");
    const { data } = (await r.json()) as {
      data: {
        credential: { id: string; type: string; requirePin: boolean };
        otpauthUri: string;
        qrSvg: string;
      };
    };
    expect(data.credential).toMatchObject({ type: "totp", requirePin: true, label: "phone" });
    expect(data.otpauthUri).toMatch(/^otpauth:\/\/totp\/Latchkey:Tess%20Totp\?secret=[A-Z2-7]+&/);
    expect(data.qrSvg).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    const secret = parseOtpauthUri(data.otpauthUri).secret;
    const b32 = base32Encode(secret);

    // Shown once: the list, the user view and the audit log never carry it.
    const list = await api("GET", `/api/v1/users/${u.id}/credentials`);
    expect(list.json.data).toEqual([
      expect.objectContaining({ type: "pin" }),
      expect.objectContaining({
        id: data.credential.id,
        type: "totp",
        algorithm: "SHA-1",
        digits: 6,
        step: 30,
      }),
    ]);
    expect(JSON.stringify(list.json)).not.toContain(b32);
    expect(JSON.stringify((await api("GET", `/api/v1/users/${u.id}`)).json)).not.toContain(b32);
    expect(JSON.stringify((await api("GET", "/api/v1/audit?limit=1000")).json)).not.toContain(b32);
    expect((await api("GET", "/api/v1/openapi.json", undefined, null)).json).toHaveProperty([
      "paths",
      "/api/v1/users/{userId}/totp",
    ]);

    // At the keypad: the PIN alone no longer opens; the PIN then the code (for the lock's clock) does.
    const keypad = async (digits: string) =>
      (await api("POST", "/api/v1/locks/front-door/simulator/keypad", { digits })).json.data.feedback;
    expect(await keypad("590317")).toBe("denied");
    const lockNow = (await api("GET", "/api/v1/locks/front-door")).json.data.status.clock.now as number;
    expect(await keypad(`590317${totpAt(nodeCrypto, secret, EpochMs(lockNow))}`)).toBe("granted");

    // Members cannot enrol (not even themselves); the code alone is an owner/admin decision.
    const m = (await api("POST", "/api/v1/users", { name: "Mo Member" })).json.data;
    const mt = (await api("POST", `/api/v1/users/${m.id}/tokens`, { label: "t" })).json.data.token;
    expect((await api("POST", `/api/v1/users/${m.id}/totp`, {}, mt)).json.error?.code).toBe("LK_FORBIDDEN");
    const alone = await api("POST", `/api/v1/users/${m.id}/totp`, { requirePin: false });
    expect(alone.json.data.credential.requirePin).toBe(false);
    const own = await api("DELETE", `/api/v1/credentials/${alone.json.data.credential.id}`, undefined, mt);
    expect(own.json.error?.code).toBe("LK_FORBIDDEN");
    expect((await api("POST", `/api/v1/users/${m.id}/totp`, { secret: "AAAA" })).json.error?.code).toBe(
      "LK_INVALID_INPUT",
    );

    // Removed through the common credential path: the PIN alone opens again.
    const del = await api("DELETE", `/api/v1/credentials/${data.credential.id}`);
    expect(del.json.data).toEqual({ removed: data.credential.id });
    expect(await keypad("590317")).toBe("granted");
  });

  it("exports users and credentials without secrets", async () => {
    const ex = (await api("GET", "/api/v1/export")).json.data;
    expect(ex).toMatchObject({ format: "latchkey-export", version: 1, secretsIncluded: false });
    expect(JSON.stringify(ex)).not.toMatch(/pinDigest|480613|secret"|lastStep/);
  });
});

describe("first start", () => {
  it("refuses an unknown time zone, and a setup code never shown is replaced at the next start", async () => {
    const d2 = mkdtempSync(join(tmpdir(), "latchkey-api2-"));
    try {
      await expect(
        startHub({ dataDir: d2, port: 0, host: "127.0.0.1", timeZone: "Mars/Olympus", print: () => {} }),
      ).rejects.toThrow(/LK_SCHEDULE_INVALID/);
      const busy = Number(new URL(running.url).port);
      await expect(
        startHub({ dataDir: d2, port: busy, host: "127.0.0.1", timeZone: "UTC", print: () => {} }),
      ).rejects.toThrow(/already in use/);
      const lines: string[] = [];
      const again = await startHub({
        dataDir: d2,
        port: 0,
        host: "127.0.0.1",
        timeZone: "UTC",
        print: (l) => lines.push(l),
      });
      expect(again.setupCode).not.toBeNull();
      expect(lines.join("\n")).toContain(`Owner setup code (shown once): ${again.setupCode}`);
      await again.close();
    } finally {
      rmSync(d2, { recursive: true, force: true });
    }
  });
});
