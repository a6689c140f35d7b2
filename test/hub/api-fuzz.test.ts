/** Hostile input at the HTTP boundary: random bodies and paths always get a coded 4xx and change nothing. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Milliseconds } from "../../src/core/units.ts";
import { type RunningHub, startHub } from "../../src/hub/server.ts";

let running: RunningHub;
let dir: string;
let token: string;
let userId: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "latchkey-fuzz-"));
  running = await startHub({
    dataDir: dir,
    port: 0,
    host: "127.0.0.1",
    timeZone: "UTC",
    motorTime: Milliseconds(1),
    print: () => {},
  });
  const code = readFileSync(join(dir, "setup-code"), "utf8").trim();
  const r = await fetch(`${running.url}/api/v1/claim`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ setupCode: code, ownerName: "O" }),
  });
  const body = (await r.json()) as { data: { token: string; user: { id: string } } };
  token = body.data.token;
  userId = body.data.user.id;
});
afterAll(async () => {
  await running.close();
  rmSync(dir, { recursive: true, force: true });
});

const snapshot = () => ({
  head: running.hub.store.head().seq,
  users: running.hub.users().length,
  credentials: running.hub.credentialViews().length,
  locks: running.hub.locks().length,
});

describe("API fuzz", () => {
  it("random JSON bodies to every write endpoint: coded 4xx, no state change", async () => {
    const endpoints = [
      ["POST", "/api/v1/users"],
      ["PATCH", `/api/v1/users/${userId}`],
      ["POST", `/api/v1/users/${userId}/pin`],
      ["POST", `/api/v1/users/${userId}/cards`],
      ["POST", `/api/v1/users/${userId}/fingerprints`],
      ["POST", "/api/v1/locks"],
      ["PATCH", "/api/v1/locks/front-door"],
      ["PUT", "/api/v1/locks/front-door/mode"],
      ["POST", "/api/v1/claim"],
      ["POST", "/api/v1/locks/front-door/simulator/wiegand"],
      ["POST", "/api/v1/keys/authority"],
      ["POST", "/api/v1/keys"],
      ["POST", "/api/v1/phone/sync"],
    ] as const;
    // Bodies that are never valid: wrong types, unknown keys, or not an object at all.
    const hostile = fc.oneof(
      fc.jsonValue().filter((v) => typeof v !== "object" || v === null || Array.isArray(v)),
      fc.dictionary(
        fc.string({ minLength: 1 }).map((k) => `x_${k}`),
        fc.jsonValue(),
        { minKeys: 1 },
      ),
      fc.record({
        name: fc.oneof(fc.integer(), fc.constant(""), fc.boolean()),
        pin: fc.integer(),
        slot: fc.string(),
        mode: fc.integer(),
        id: fc.constant("UPPER CASE"),
        setupCode: fc.integer(),
        frame: fc.integer(),
      }),
    );
    const before = snapshot();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...endpoints), hostile, async ([method, path], body) => {
        const res = await fetch(running.url + path, {
          method,
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: JSON.stringify(body),
        });
        const json = (await res.json()) as { ok: boolean; error?: { code: string } };
        expect(json.ok).toBe(false);
        expect(json.error?.code).toMatch(/^LK_[A-Z_]+$/);
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
      }),
      { numRuns: 300 },
    );
    expect(snapshot()).toEqual(before);
  });

  it("random bytes as a body and random paths never crash the hub", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 512 }),
        fc.string({ maxLength: 40 }),
        async (bytes, seg) => {
          const res = await fetch(`${running.url}/api/v1/users/${encodeURIComponent(seg)}/pin`, {
            method: "POST",
            headers: { authorization: `Bearer ${token}` },
            body: bytes,
          });
          expect(res.status).toBeGreaterThanOrEqual(400);
          expect(res.status).toBeLessThan(500);
        },
      ),
      { numRuns: 200 },
    );
    expect((await fetch(`${running.url}/healthz`)).status).toBe(200);
  });
});
