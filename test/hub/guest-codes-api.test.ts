/**
 * Guest codes through the hub API (docs/protocol/guest-codes.md; routes under
 * /api/v1/locks/{lockId}/guest-codes): issuers are enrolled with their key once, codes issued through the
 * API or offline from that key open at the simulated keypad, single codes are revoked with an admin token
 * or with the issuer's MAC and no token, epochs and issuers cut codes off, other roles are refused, bad
 * input changes nothing, and neither the issuer list nor the audit log ever shows a key or the digits.
 * The hub runs on the real clock in UTC, so windows are set around the current hour.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type GuestCodeRequest,
  issueGuestCode,
  revocationMac,
} from "../../src/core/credentials/guest-code.ts";
import { fromHex } from "../../src/core/crypto.ts";
import { parseLocalDateTime } from "../../src/core/schedule.ts";
import { Milliseconds } from "../../src/core/units.ts";
import type { IssuerFileView } from "../../src/hub/hub.ts";
import { type RunningHub, startHub } from "../../src/hub/server.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { callApi } from "../support/api-client.ts";

let running: RunningHub;
let dir: string;
let ownerToken: string;
const tokens: Record<"admin" | "member" | "guest", string> = { admin: "", member: "", guest: "" };
/** Every code the tests saw: none may appear in the audit log. */
const seenCodes: string[] = [];

function api(method: string, path: string, body?: unknown, token: string | null = ownerToken, raw?: string) {
  return callApi(running.url, method, path, body, token, raw);
}

const gc = (lockId: string) => `/api/v1/locks/${lockId}/guest-codes`;

/** Local (UTC) date-times around now: a window from an hour ago to three hours ahead, on the hour. */
const HOUR = 3_600_000;
const local = (ms: number) => new Date(ms).toISOString().slice(0, 16);
const thisHour = Math.floor(Date.now() / HOUR) * HOUR;
const FROM = local(thisHour - HOUR);
const TO = local(thisHour + 3 * HOUR);
/** A window code for now, ending `quarters` quarter hours after TO (so offline codes differ: a new window each). */
const nowWindow = (quarters = 0): GuestCodeRequest => ({
  kind: "window",
  from: FROM,
  to: local(thisHour + 3 * HOUR + quarters * 15 * 60_000),
});

async function keypad(lockId: string, digits: string): Promise<string> {
  const r = await api("POST", `/api/v1/locks/${lockId}/simulator/keypad`, { digits });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json.data.feedback;
}

async function lastDenyReason(lockId: string): Promise<string> {
  const r = await api("GET", `/api/v1/audit?kind=access.denied&lockId=${lockId}&order=desc&limit=1`);
  return r.json.data.events[0].data.reason;
}

async function enrol(lockId: string, token = ownerToken): Promise<IssuerFileView> {
  const r = await api("POST", `${gc(lockId)}/issuers`, undefined, token);
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json.data;
}

/** Issue offline from an issuer file's key, as `latchkey code issue` does: the hub is not involved. */
function offline(file: IssuerFileView, req: GuestCodeRequest) {
  const issued = issueGuestCode(nodeCrypto, fromHex(file.keyHex), req, { digits: file.digits });
  seenCodes.push(issued.code);
  return issued;
}

async function issueViaApi(lockId: string, body: Record<string, unknown>, token = ownerToken) {
  const r = await api("POST", gc(lockId), body, token);
  if (r.json.ok) seenCodes.push(r.json.data.code);
  return r;
}

async function addLock(id: string) {
  expect((await api("POST", "/api/v1/locks", { id, timeZone: "UTC" })).status).toBe(200);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "latchkey-gc-api-"));
  running = await startHub({
    dataDir: dir,
    port: 0,
    host: "127.0.0.1",
    timeZone: "UTC",
    motorTime: Milliseconds(5),
    print: () => {},
  });
  const claim = await api(
    "POST",
    "/api/v1/claim",
    { setupCode: running.setupCode, ownerName: "Olivia" },
    null,
  );
  ownerToken = claim.json.data.token;
  for (const role of ["admin", "member", "guest"] as const) {
    const u = (await api("POST", "/api/v1/users", { name: `The ${role}`, role })).json.data;
    tokens[role] = (await api("POST", `/api/v1/users/${u.id}/tokens`, { label: "t" })).json.data.token;
  }
});
afterAll(async () => {
  await running.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("guest codes over the hub API", () => {
  it("enrols an issuer with its key once (no-store); the issuer list never shows a key", async () => {
    const r = await api("POST", `${gc("front-door")}/issuers`); // no body at all
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.cacheControl).toBe("no-store");
    expect(r.json.data).toMatchObject({
      format: "latchkey-issuer/1",
      lockId: "front-door",
      lockName: "Front door",
      timeZone: "UTC",
      digits: 12,
      driftMinutes: 2,
      epoch: 0,
    });
    const file = r.json.data as IssuerFileView;
    expect(file.issuerId).toMatch(/^iss_[0-9a-f]{12}$/);
    expect(file.keyHex).toMatch(/^[0-9a-f]{64}$/);
    // Enrolling again hands out the same issuer and key.
    const again = await api("POST", `${gc("front-door")}/issuers`, {});
    expect(again.json.data).toEqual(file);

    const list = await api("GET", `${gc("front-door")}/issuers`);
    expect(list.json.data).toEqual([
      expect.objectContaining({ issuerId: file.issuerId, name: "Olivia", epoch: 0, active: true }),
    ]);
    expect(JSON.stringify(list.json)).not.toContain(file.keyHex);
    expect(JSON.stringify(list.json)).not.toMatch(/key/i);

    const doc = (await api("GET", "/api/v1/openapi.json", undefined, null)).json as unknown as {
      paths: Record<string, Record<string, { security?: unknown[] }>>;
    };
    for (const p of ["", "/issuers", "/issuers/{issuerId}", "/issuers/{issuerId}/epoch", "/revoke-all"]) {
      expect(doc.paths).toHaveProperty([`/api/v1/locks/{lockId}/guest-codes${p}`]);
    }
    // The revocation route takes a token or none (an issuer's MAC).
    expect(doc.paths["/api/v1/locks/{lockId}/guest-codes/revocations"]?.post?.security).toEqual([
      { bearer: [] },
      {},
    ]);
  });

  it("issues through the API (digits once, no-store), opens at the keypad, and lists the ledger", async () => {
    const r = await issueViaApi("front-door", { name: "Cleaner", ...nowWindow() });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.cacheControl).toBe("no-store");
    expect(r.json.data).toMatchObject({
      kind: "window",
      validFrom: FROM,
      validTo: TO,
      exact: true,
      epoch: 0,
    });
    const { code, codeId } = r.json.data as { code: string; codeId: string };
    expect(code).toMatch(/^\d{12}$/);
    expect(codeId).toMatch(/^[0-9a-f]{16}$/);
    expect(r.json.data.shareText).toContain(code.slice(-4));
    expect(await keypad("front-door", code)).toBe("granted");

    // Widened windows say so; every kind maps to the core's request.
    const widened = await issueViaApi("front-door", {
      name: "Plumber",
      kind: "oneTime",
      from: local(thisHour - HOUR + 7 * 60_000),
      to: TO,
    });
    expect(widened.json.data).toMatchObject({ kind: "oneTime", validFrom: FROM, exact: false });
    const kinds = [
      { kind: "uses", from: FROM, to: TO, uses: 3 },
      { kind: "firstUse", from: FROM, to: TO, durationMinutes: 240 },
      {
        kind: "recurring",
        daysMask: 0x7f,
        startHour: 0,
        lengthHours: 12,
        fromDate: FROM.slice(0, 10),
        toDate: FROM.slice(0, 10),
      },
    ];
    for (const k of kinds) {
      const x = await issueViaApi("front-door", { name: `Kind ${k.kind}`, ...k });
      expect(x.status, JSON.stringify(x.json)).toBe(200);
      expect(x.json.data.kind).toBe(k.kind);
    }

    const list = await api("GET", gc("front-door"));
    expect(list.json.data).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ codeId, name: "Cleaner", kind: "window", revoked: false }),
      ]),
    );
    expect(JSON.stringify(list.json)).not.toContain(code);
  });

  it("opens with a code issued offline from the enrolled key, typed with the final #", async () => {
    const file = await enrol("front-door");
    expect(await keypad("front-door", `${offline(file, nowWindow(1)).code}#`)).toBe("granted");
    // Keys a keypad does not have are refused as bad input and logged nowhere.
    const before = (await api("GET", "/api/v1/audit?limit=1&order=desc")).json.data.events[0].seq;
    for (const digits of ["12ab", "1234 5678", "#123", "123##", ""]) {
      const r = await api("POST", "/api/v1/locks/front-door/simulator/keypad", { digits });
      expect(r.status, digits).toBe(400);
      expect(r.json.error?.code).toBe("LK_INVALID_INPUT");
    }
    expect((await api("GET", "/api/v1/audit?limit=1&order=desc")).json.data.events[0].seq).toBe(before);
  });

  it("revokes one code with an admin token, idempotently", async () => {
    const issued = (await issueViaApi("front-door", { name: "Guest A", ...nowWindow(2) })).json.data;
    expect(await keypad("front-door", issued.code)).toBe("granted");
    const body = {
      issuerId: issued.issuerId,
      epoch: issued.epoch,
      codeId: issued.codeId,
      dropAfter: issued.dropAfter,
    };
    const r = await api("POST", `${gc("front-door")}/revocations`, body, tokens.admin);
    expect(r.json).toEqual({ ok: true, data: { status: "revoked" } });
    expect(await keypad("front-door", issued.code)).toBe("denied");
    expect(await lastDenyReason("front-door")).toBe("revoked");
    expect((await api("POST", `${gc("front-door")}/revocations`, body)).json.data).toEqual({
      status: "alreadyRevoked",
    });
    const entry = (await api("GET", gc("front-door"))).json.data.find(
      (e: { codeId: string }) => e.codeId === issued.codeId,
    );
    expect(entry.revoked).toBe(true);
    const audit = await api("GET", "/api/v1/audit?kind=admin.change&order=desc&limit=20");
    expect(audit.json.data.events).toContainEqual(
      expect.objectContaining({
        data: expect.objectContaining({ action: "guestCode.revoke", codeId: issued.codeId }),
      }),
    );
  });

  it("revokes one code with the issuer's MAC and no token; a bad MAC or neither is 401", async () => {
    const file = await enrol("front-door");
    const a = offline(file, nowWindow(3));
    const b = offline(file, nowWindow(4));
    expect(b.codeId).not.toBe(a.codeId);
    const dropAfter = parseLocalDateTime(local(thisHour + 3 * HOUR + 3 * 15 * 60_000)) + 2; // a's end + δ
    const r = { issuerId: file.issuerId, epoch: file.epoch, codeId: a.codeId, dropAfter };
    const mac = revocationMac(nodeCrypto, fromHex(file.keyHex), r);
    const path = `${gc("front-door")}/revocations`;

    const bad = await api("POST", path, { ...r, mac: "0".repeat(64) }, null);
    expect(bad).toMatchObject({ status: 401, json: { ok: false, error: { code: "LK_UNAUTHENTICATED" } } });
    // A MAC over another code does not revoke this one.
    const other = revocationMac(nodeCrypto, fromHex(file.keyHex), { ...r, codeId: b.codeId });
    expect((await api("POST", path, { ...r, mac: other }, null)).status).toBe(401);
    const neither = await api("POST", path, r, null);
    expect(neither).toMatchObject({ status: 401, json: { error: { code: "LK_UNAUTHENTICATED" } } });
    // A token that is sent must be valid, MAC or not.
    expect((await api("POST", path, { ...r, mac }, `lk_${"0".repeat(48)}`)).status).toBe(401);
    expect(await keypad("front-door", a.code)).toBe("granted");

    const ok = await api("POST", path, { ...r, mac }, null);
    expect(ok.json).toEqual({ ok: true, data: { status: "revoked" } });
    expect(await keypad("front-door", a.code)).toBe("denied");
    expect(await lastDenyReason("front-door")).toBe("revoked");
    expect(await keypad("front-door", b.code)).toBe("granted");
    const ev = (await api("GET", "/api/v1/audit?kind=admin.change&order=desc&limit=1")).json.data.events[0];
    expect(ev.data).toMatchObject({
      action: "guestCode.revoke",
      codeId: a.codeId,
      actorId: `issuer:${file.issuerId}`,
    });
  });

  it("raising an issuer's epoch cuts off its codes; re-enrolling gives the new key", async () => {
    await addLock("annex");
    const file = await enrol("annex");
    const old = offline(file, nowWindow());
    expect(await keypad("annex", old.code)).toBe("granted");
    // An admin cannot touch the owner's issuer; an unknown issuer is LK_ISSUER_UNKNOWN.
    const forbidden = await api("POST", `${gc("annex")}/issuers/${file.issuerId}/epoch`, {}, tokens.admin);
    expect(forbidden.status).toBe(403);
    const unknown = await api("POST", `${gc("annex")}/issuers/iss_000000000000/epoch`);
    expect(unknown).toMatchObject({ status: 404, json: { error: { code: "LK_ISSUER_UNKNOWN" } } });

    const raised = await api("POST", `${gc("annex")}/issuers/${file.issuerId}/epoch`);
    expect(raised.json.data).toEqual({ issuerId: file.issuerId, epoch: 1 });
    expect(await keypad("annex", old.code)).toBe("denied");
    // Revoking a single code of an epoch that does not exist yet is refused.
    const future = await api("POST", `${gc("annex")}/revocations`, {
      issuerId: file.issuerId,
      epoch: 9,
      codeId: old.codeId,
      dropAfter: 1,
    });
    expect(future.json.error?.code).toBe("LK_GUESTCODE_INVALID");

    const next = await enrol("annex");
    expect(next).toMatchObject({ issuerId: file.issuerId, epoch: 1 });
    expect(next.keyHex).not.toBe(file.keyHex);
    expect(await keypad("annex", offline(next, nowWindow()).code)).toBe("granted");
    const listed = (await api("GET", `${gc("annex")}/issuers`)).json.data;
    expect(listed).toEqual([expect.objectContaining({ issuerId: file.issuerId, epoch: 1 })]);
  });

  it("revoke-all raises every issuer's epoch; removing an issuer cuts it off", async () => {
    await addLock("shed");
    const mine = await enrol("shed");
    const theirs = await enrol("shed", tokens.admin);
    expect(theirs.issuerId).not.toBe(mine.issuerId);
    const a = offline(mine, nowWindow());
    const b = offline(theirs, nowWindow());
    expect(await keypad("shed", a.code)).toBe("granted");
    expect(await keypad("shed", b.code)).toBe("granted");

    const all = await api("POST", `${gc("shed")}/revoke-all`, undefined, tokens.admin);
    expect(all.json.data).toEqual(
      expect.arrayContaining([
        { issuerId: mine.issuerId, epoch: 1 },
        { issuerId: theirs.issuerId, epoch: 1 },
      ]),
    );
    expect(await keypad("shed", a.code)).toBe("denied");
    expect(await keypad("shed", b.code)).toBe("denied");

    const theirs1 = await enrol("shed", tokens.admin);
    const c = offline(theirs1, nowWindow());
    expect(await keypad("shed", c.code)).toBe("granted");
    const removed = await api("DELETE", `${gc("shed")}/issuers/${theirs.issuerId}`, undefined, tokens.admin);
    expect(removed.json.data).toEqual({ removed: theirs.issuerId });
    expect(await keypad("shed", c.code)).toBe("denied");
    const listed = (await api("GET", `${gc("shed")}/issuers`)).json.data as { issuerId: string }[];
    expect(listed.map((i) => i.issuerId)).toEqual([mine.issuerId]);
  });

  it("refuses members and guests everything (403), and an owner's issuer to admins", async () => {
    const file = await enrol("front-door");
    const revocation = { issuerId: file.issuerId, epoch: 0, codeId: "0123456789abcdef", dropAfter: 1 };
    for (const role of ["member", "guest"] as const) {
      const t = tokens[role];
      const results = [
        await api("POST", `${gc("front-door")}/issuers`, {}, t),
        await api("GET", `${gc("front-door")}/issuers`, undefined, t),
        await api("POST", gc("front-door"), { name: "X", ...nowWindow() }, t),
        await api("GET", gc("front-door"), undefined, t),
        await api("POST", `${gc("front-door")}/issuers/${file.issuerId}/epoch`, undefined, t),
        await api("DELETE", `${gc("front-door")}/issuers/${file.issuerId}`, undefined, t),
        await api("POST", `${gc("front-door")}/revoke-all`, undefined, t),
        await api("POST", `${gc("front-door")}/revocations`, revocation, t),
      ];
      for (const r of results) {
        expect(r.status, `${role}: ${JSON.stringify(r.json)}`).toBe(403);
        expect(r.json.error?.code).toBe("LK_FORBIDDEN");
      }
    }
    // Admins enrol themselves only.
    const me = (await api("GET", "/api/v1/me")).json.data;
    const other = await api("POST", `${gc("front-door")}/issuers`, { userId: me.id }, tokens.admin);
    expect(other.status).toBe(403);
    const removeOwners = await api(
      "DELETE",
      `${gc("front-door")}/issuers/${file.issuerId}`,
      undefined,
      tokens.admin,
    );
    expect(removeOwners.status).toBe(403);
    // Without any token, only the MAC-authenticated revocation answers (and needs a MAC).
    expect((await api("GET", gc("front-door"), undefined, null)).status).toBe(401);
    expect((await api("POST", `${gc("front-door")}/issuers`, {}, null)).status).toBe(401);
  });

  it("answers malformed requests with a coded error and changes nothing", async () => {
    const lastSeq = async () =>
      (await api("GET", "/api/v1/audit?order=desc&limit=1")).json.data.events[0].seq as number;
    const issuers = async () => JSON.stringify((await api("GET", `${gc("front-door")}/issuers`)).json.data);
    const ledger = async () => JSON.stringify((await api("GET", gc("front-door"))).json.data);
    // A lock where nobody is an issuer yet: a rejected issue must not enrol the caller.
    await addLock("cellar");
    const before = { seq: await lastSeq(), issuers: await issuers(), ledger: await ledger() };
    const file = await enrol("front-door"); // audited: take the sequence number after it
    const seq = await lastSeq();
    const w = nowWindow();
    const issueCases: [string, unknown, string][] = [
      ["front-door", "{not json", "LK_INVALID_INPUT"],
      ["front-door", { name: "X", kind: "bogus", from: FROM, to: TO }, "LK_INVALID_INPUT"],
      ["front-door", { name: "X", kind: "window", from: FROM }, "LK_INVALID_INPUT"],
      ["front-door", { name: "X", ...w, extra: 1 }, "LK_INVALID_INPUT"],
      ["front-door", { name: "X", ...w, uses: 3 }, "LK_INVALID_INPUT"],
      ["front-door", { ...w }, "LK_INVALID_INPUT"],
      ["front-door", { name: "", ...w }, "LK_INVALID_INPUT"],
      ["front-door", { name: "Eve\u001b[31m", ...w }, "LK_INVALID_INPUT"],
      ["front-door", { name: "X", kind: "window", from: "tomorrow", to: TO }, "LK_INVALID_INPUT"],
      ["front-door", { name: "X", kind: "window", from: TO, to: FROM }, "LK_GUESTCODE_INVALID"],
      ["front-door", { name: "X", kind: "window", from: "2026-13-01T09:00", to: TO }, "LK_GUESTCODE_INVALID"],
      ["front-door", { name: "X", kind: "uses", from: FROM, to: TO, uses: 4 }, "LK_GUESTCODE_INVALID"],
      [
        "front-door",
        { name: "X", kind: "firstUse", from: FROM, to: TO, durationMinutes: 120 },
        "LK_GUESTCODE_INVALID",
      ],
      [
        "front-door",
        {
          name: "X",
          kind: "recurring",
          daysMask: 3,
          startHour: 9,
          lengthHours: 2,
          fromDate: "2026-01-01",
          toDate: "2026-02-01",
        },
        "LK_GUESTCODE_INVALID",
      ],
      [
        "front-door",
        { name: "X", kind: "window", from: "2020-01-01T09:00", to: "2020-01-01T10:00" },
        "LK_GUESTCODE_INVALID",
      ],
      [
        "front-door",
        { name: "X", kind: "window", from: FROM, to: "2099-01-01T00:00" },
        "LK_GUESTCODE_INVALID",
      ],
      [
        "cellar",
        { name: "X", kind: "window", from: "2020-01-01T09:00", to: "2020-01-01T10:00" },
        "LK_GUESTCODE_INVALID",
      ],
      ["cellar", { name: "Eve\u202etxt", ...w }, "LK_INVALID_INPUT"],
      ["nowhere", { name: "X", ...w }, "LK_NOT_FOUND"],
    ];
    for (const [lockId, body, code] of issueCases) {
      const r =
        typeof body === "string"
          ? await api("POST", gc(lockId), undefined, ownerToken, body)
          : await api("POST", gc(lockId), body);
      expect(r.json.error?.code, JSON.stringify(body)).toBe(code);
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    }
    const revocations = `${gc("front-door")}/revocations`;
    const good = { issuerId: file.issuerId, epoch: 0, codeId: "0123456789abcdef", dropAfter: 1 };
    const otherCases: [string, string, unknown, string][] = [
      ["POST", revocations, { ...good, codeId: "XYZ" }, "LK_INVALID_INPUT"],
      ["POST", revocations, { ...good, epoch: -1 }, "LK_INVALID_INPUT"],
      ["POST", revocations, { ...good, dropAfter: 2 ** 32 }, "LK_INVALID_INPUT"],
      ["POST", revocations, { ...good, mac: "abc" }, "LK_INVALID_INPUT"],
      ["POST", revocations, { ...good, extra: true }, "LK_INVALID_INPUT"],
      ["POST", revocations, { ...good, issuerId: "iss_000000000000" }, "LK_ISSUER_UNKNOWN"],
      ["POST", `${gc("front-door")}/issuers`, { userId: 7 }, "LK_INVALID_INPUT"],
      ["POST", `${gc("front-door")}/issuers`, { bogus: 1 }, "LK_INVALID_INPUT"],
      ["POST", `${gc("front-door")}/issuers`, { userId: "usr_nobody" }, "LK_NOT_FOUND"],
      ["POST", `${gc("front-door")}/issuers/${"x".repeat(65)}/epoch`, undefined, "LK_INVALID_INPUT"],
      ["DELETE", `${gc("front-door")}/issuers/iss_000000000000`, undefined, "LK_ISSUER_UNKNOWN"],
      ["PATCH", "/api/v1/locks/front-door", { guestCodeDigits: 16 }, "LK_INVALID_INPUT"],
      ["PATCH", "/api/v1/locks/front-door", { guestCodeDigits: 9 }, "LK_INVALID_INPUT"],
      ["PATCH", "/api/v1/locks/front-door", { guestCodeDriftMinutes: 16 }, "LK_INVALID_INPUT"],
      ["PATCH", "/api/v1/locks/front-door", { guestCodeDriftMinutes: 1.5 }, "LK_INVALID_INPUT"],
    ];
    for (const [method, path, body, code] of otherCases) {
      const r = await api(method, path, body);
      expect(r.json.error?.code, `${method} ${path} ${JSON.stringify(body)}`).toBe(code);
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    }
    expect(await lastSeq()).toBe(seq);
    expect(await ledger()).toBe(before.ledger);
    expect(await issuers()).toBe(before.issuers);
    expect((await api("GET", `${gc("cellar")}/issuers`)).json.data).toEqual([]);
    const lock = (await api("GET", "/api/v1/locks/front-door")).json.data;
    expect(lock.settings).toMatchObject({ guestCodeDigits: 12, guestCodeDriftMinutes: 2 });
  });

  it("changes the code length and drift tolerance through PATCH, end to end", async () => {
    await addLock("loft");
    const patched = await api("PATCH", "/api/v1/locks/loft", {
      guestCodeDigits: 10,
      guestCodeDriftMinutes: 5,
    });
    expect(patched.status, JSON.stringify(patched.json)).toBe(200);
    expect(patched.json.data.settings).toMatchObject({ guestCodeDigits: 10, guestCodeDriftMinutes: 5 });
    const file = await enrol("loft");
    expect(file).toMatchObject({ digits: 10, driftMinutes: 5 });
    const issued = await issueViaApi("loft", { name: "Short", ...nowWindow() });
    expect(issued.json.data.code).toMatch(/^\d{10}$/);
    expect(issued.json.data.dropAfter).toBe(parseLocalDateTime(TO) + 5);
    expect(await keypad("loft", issued.json.data.code)).toBe("granted");
    expect(await keypad("loft", offline(file, nowWindow(1)).code)).toBe("granted");
    // Back to 12 digits: the 10-digit codes stop opening (issuers re-enrol).
    expect((await api("PATCH", "/api/v1/locks/loft", { guestCodeDigits: 12 })).status).toBe(200);
    expect(await keypad("loft", issued.json.data.code)).toBe("denied");
    expect((await enrol("loft")).digits).toBe(12);
  });

  it("never writes a code's digits to the audit log", async () => {
    expect(seenCodes.length).toBeGreaterThan(10);
    const all = JSON.stringify((await api("GET", "/api/v1/audit?limit=1000")).json);
    for (const code of seenCodes) expect(all).not.toContain(code);
    const issues = (await api("GET", "/api/v1/audit?kind=admin.change&limit=1000")).json.data.events.filter(
      (e: { data: { action: string } }) => e.data.action === "guestCode.issue",
    );
    expect(issues.length).toBeGreaterThan(0);
  });
});
