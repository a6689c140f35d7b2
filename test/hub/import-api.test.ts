/**
 * Export version 2, import with a passphrase, and the encrypted audit export through the HTTP API and
 * the CLI (docs/formats/export.md). These run at the product's real scrypt cost (no test-only option
 * reaches the API), so each seal or open takes a fraction of a second.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role } from "../../src/core/model.ts";
import { Milliseconds } from "../../src/core/units.ts";
import { openAuditExport, verifyAuditSlice } from "../../src/hub/export-audit.ts";
import type { Actor } from "../../src/hub/hub.ts";
import { DEFAULT_SCRYPT } from "../../src/hub/passphrase-box.ts";
import { type RunningHub, startHub } from "../../src/hub/server.ts";
import { callApi } from "../support/api-client.ts";
import { cli } from "../support/processes.ts";

const PASS = "a long and memorable passphrase";
const PIN = "480613";

interface Site {
  running: RunningHub;
  dir: string;
  token: string;
  owner: Actor;
}

const sites: Site[] = [];
let tmp: string;

async function site(): Promise<Site> {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-import-api-"));
  const running = await startHub({
    dataDir: dir,
    port: 0,
    host: "127.0.0.1",
    timeZone: "UTC",
    motorTime: Milliseconds(5),
    linkPort: null,
    print: () => {},
  });
  const claim = await callApi(
    running.url,
    "POST",
    "/api/v1/claim",
    { setupCode: running.setupCode, ownerName: "Olivia" },
    null,
  );
  expect(claim.status, JSON.stringify(claim.json)).toBe(200);
  const s: Site = {
    running,
    dir,
    token: claim.json.data.token,
    owner: { userId: claim.json.data.user.id, role: Role.Owner },
  };
  sites.push(s);
  return s;
}

const api = (s: Site, method: string, path: string, body?: unknown, token: string | null = s.token) =>
  callApi(s.running.url, method, path, body, token);

/** Export without the instant it was taken: equal before and after means nothing changed. */
async function snapshot(s: Site): Promise<unknown> {
  const r = await api(s, "GET", "/api/v1/export");
  const { exportedAt: _at, ...rest } = r.json.data;
  return { rest, pinFile: readFileSync(join(s.dir, "secrets", "pin-secret")).toString("hex") };
}

async function keypad(s: Site, digits: string): Promise<string> {
  const r = await api(s, "POST", "/api/v1/locks/front-door/simulator/keypad", { digits });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json.data.feedback;
}

let src: Site;
let adminToken: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "latchkey-import-cli-"));
  writeFileSync(join(tmp, "pass"), `${PASS}\n`, { mode: 0o600 });
  writeFileSync(join(tmp, "wrong"), "not the right passphrase\n", { mode: 0o600 });
  src = await site();
  const hb = src.running.hub;
  const cleaner = hb.addUser(src.owner, { name: "Cleaner", role: Role.Guest });
  hb.setPin(src.owner, cleaner.id, PIN);
  hb.addCard(src.owner, cleaner.id, { uid: "04a1b2c3" });
  const ada = hb.addUser(src.owner, { name: "Ada", role: Role.Admin });
  adminToken = hb.issueToken(src.owner, ada.id, "test").token;
});
afterAll(async () => {
  for (const s of sites.splice(0)) {
    await s.running.close();
    rmSync(s.dir, { recursive: true, force: true });
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe("export and import through the API", () => {
  it("takes a CSV of 3,000 people (beyond the 64 KiB of other requests) and still refuses an oversized body", async () => {
    const dst = await site();
    const rows = ["name,role,card"];
    for (let i = 0; i < 3000; i++)
      rows.push(`Tenant ${i},member,${(0x05000000 + i * 17).toString(16).padStart(8, "0")}`);
    const csv = `${rows.join("\n")}\n`;
    expect(csv.length).toBeGreaterThan(64 * 1024);
    const r = await api(dst, "POST", "/api/v1/import", { csv });
    expect(r.status, JSON.stringify(r.json).slice(0, 300)).toBe(200);
    expect(dst.running.hub.users().length).toBe(3001);
    // Other routes keep the small limit; the import's own is bounded too.
    const big = await api(dst, "POST", "/api/v1/users", { name: "x".repeat(70 * 1024) });
    expect(big.json).toMatchObject({ ok: false, error: { code: "LK_PAYLOAD_TOO_LARGE" } });
    const huge = await api(dst, "POST", "/api/v1/import", { csv: "name\n".repeat(1_700_000) });
    expect(huge.json).toMatchObject({ ok: false, error: { code: "LK_PAYLOAD_TOO_LARGE" } });
  }, 60_000);

  it("GET /api/v1/export stays version 1; POST with a passphrase is version 2, owner only, never cached", async () => {
    const v1 = await api(src, "GET", "/api/v1/export");
    expect(v1.json.data).toMatchObject({ version: 1, secretsIncluded: false });
    expect(v1.json.data).not.toHaveProperty("secrets");
    const v2 = await api(src, "POST", "/api/v1/export", { passphrase: PASS });
    expect(v2.status, JSON.stringify(v2.json)).toBe(200);
    expect(v2.cacheControl).toBe("no-store");
    expect(v2.json.data).toMatchObject({ version: 2, secretsIncluded: true });
    expect(v2.json.data.secrets).toMatchObject({
      box: "latchkey-passphrase-box",
      kind: "latchkey-export-secrets",
      kdf: { alg: "scrypt", ...DEFAULT_SCRYPT },
      aead: { alg: "A256GCM" },
    });
    const weak = await api(src, "POST", "/api/v1/export", { passphrase: "too short" });
    expect([weak.status, weak.json.error?.code]).toEqual([400, "LK_PASSPHRASE_WEAK"]);
    const admin = await api(src, "POST", "/api/v1/export", { passphrase: PASS }, adminToken);
    expect([admin.status, admin.json.error?.code]).toEqual([403, "LK_FORBIDDEN"]);
    // Documented in the OpenAPI document like every route.
    const openapi = (await api(src, "GET", "/api/v1/openapi.json", undefined, null)).json as unknown as {
      paths: Record<string, Record<string, unknown>>;
    };
    expect(Object.keys(openapi.paths["/api/v1/export"] ?? {}).sort()).toEqual(["get", "post"]);
    expect(openapi.paths["/api/v1/audit/export"]).toHaveProperty("post");
  });

  it("a wrong passphrase and a modified document change nothing; the right one restores the PIN", async () => {
    const dst = await site();
    const doc = (await api(src, "POST", "/api/v1/export", { passphrase: PASS })).json.data;
    const before = await snapshot(dst);

    const wrong = await api(dst, "POST", "/api/v1/import", {
      document: doc,
      passphrase: "not the passphrase",
    });
    expect([wrong.status, wrong.json.error?.code]).toEqual([400, "LK_PASSPHRASE_WRONG"]);
    const modified = structuredClone(doc);
    modified.users.find((u: { name: string }) => u.name === "Cleaner").role = "admin";
    const mod = await api(dst, "POST", "/api/v1/import", { document: modified, passphrase: PASS });
    expect([mod.status, mod.json.error?.code]).toEqual([400, "LK_EXPORT_MODIFIED"]);
    const csv = await api(dst, "POST", "/api/v1/import", { csv: "name\nBo\n", passphrase: PASS });
    expect([csv.status, csv.json.error?.code]).toEqual([400, "LK_INVALID_INPUT"]);
    const v1 = (await api(src, "GET", "/api/v1/export")).json.data;
    const old = await api(dst, "POST", "/api/v1/import", { document: v1, passphrase: PASS });
    expect([old.status, old.json.error?.code]).toEqual([400, "LK_INVALID_INPUT"]);
    expect(await snapshot(dst)).toEqual(before);

    const dry = await api(dst, "POST", "/api/v1/import", { document: doc, passphrase: PASS, dryRun: true });
    expect(dry.status, JSON.stringify(dry.json)).toBe(200);
    expect(dry.json.data.plan.secrets).toEqual({
      sealed: true,
      opened: true,
      pinKey: "adopt",
      guestCodeKey: null,
    });
    expect(JSON.stringify(dry.json.data)).not.toMatch(/[0-9a-f]{64}/); // no digest, no key
    expect(await snapshot(dst)).toEqual(before);

    const ok = await api(dst, "POST", "/api/v1/import", { document: doc, passphrase: PASS });
    expect(ok.status, JSON.stringify(ok.json)).toBe(200);
    expect(ok.json.data.plan.reEnrol).toEqual([]);
    expect(ok.json.data.result.applied).toBeGreaterThan(0);
    expect(await keypad(dst, PIN)).toBe("granted");
  });

  it("without the passphrase a version-2 document imports like version 1, naming who re-enrols", async () => {
    const dst = await site();
    const doc = (await api(src, "POST", "/api/v1/export", { passphrase: PASS })).json.data;
    const r = await api(dst, "POST", "/api/v1/import", { document: doc });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.data.plan.reEnrol).toEqual([
      expect.objectContaining({ name: "Cleaner", needs: ["pin"], reason: "noPassphrase" }),
    ]);
    expect(await keypad(dst, PIN)).not.toBe("granted");
  });
});

describe("encrypted audit export through the API", () => {
  it("seals the events with their checkpoints and the verification; the file checks by itself", async () => {
    src.running.hub.audit.checkpoint();
    const r = await api(src, "POST", "/api/v1/audit/export", { passphrase: PASS, fromSeq: 2 });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.cacheControl).toBe("no-store");
    const doc = r.json.data;
    expect(doc).toMatchObject({
      format: "latchkey-audit-export",
      version: 1,
      hub: { deviceId: src.running.hub.deviceId },
    });
    expect(doc.box.kind).toBe("latchkey-audit-export");
    expect(JSON.stringify(doc)).not.toContain("Cleaner");
    // The API envelope as a browser would save it opens too.
    const p = await openAuditExport(JSON.stringify(r.json), PASS);
    expect(p.events[0]!.seq).toBe(2);
    expect(p.events.some((e) => e.data.action === "user.add")).toBe(true);
    expect(p.verification.ok).toBe(true);
    expect(p.checkpoints.length).toBeGreaterThan(0);
    expect(verifyAuditSlice(p)).toMatchObject({ ok: true, eventsChecked: p.events.length });
    // An event changed after opening no longer checks.
    const forged = {
      ...p,
      events: p.events.map((e, i) => (i === 1 ? { ...e, data: { ...e.data, x: 1 } } : e)),
    };
    expect(verifyAuditSlice(forged)).toMatchObject({ ok: false, problem: { seq: p.events[1]!.seq } });
    // Admins only; a bad range and a weak passphrase are refused.
    const member = src.running.hub.addUser(src.owner, { name: "Mo" });
    const memberToken = src.running.hub.issueToken(src.owner, member.id, "t").token;
    const m = await api(src, "POST", "/api/v1/audit/export", { passphrase: PASS }, memberToken);
    expect(m.json.error?.code).toBe("LK_FORBIDDEN");
    const range = await api(src, "POST", "/api/v1/audit/export", { passphrase: PASS, fromSeq: 9, toSeq: 3 });
    expect(range.json.error?.code).toBe("LK_INVALID_INPUT");
    const weak = await api(src, "POST", "/api/v1/audit/export", { passphrase: "short" });
    expect(weak.json.error?.code).toBe("LK_PASSPHRASE_WEAK");
  });
});

describe("the CLI", () => {
  const run = (s: Site, ...args: string[]) =>
    cli(["--data-dir", join(tmp, "no-hub-here"), "--url", s.running.url, "--token", s.token, ...args]);

  it("export --secrets, then import --passphrase-file on a new hub: the PIN opens there", async () => {
    const file = join(tmp, "export-v2.json");
    const ex = await run(src, "export", "--secrets", "--passphrase-file", join(tmp, "pass"), "--out", file);
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stdout).toMatch(/version 2/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, "utf8"))).toMatchObject({ version: 2 });

    const dst = await site();
    const before = await snapshot(dst);
    const wrong = await run(dst, "import", file, "--passphrase-file", join(tmp, "wrong"));
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/^error LK_PASSPHRASE_WRONG: /m);
    expect(await snapshot(dst)).toEqual(before);

    const im = await run(dst, "import", file, "--passphrase-file", join(tmp, "pass"));
    expect(im.code, im.stderr).toBe(0);
    expect(im.stdout).toMatch(/secrets: 1 PINs\/authenticator apps and 0 guest-code issuers restored/);
    expect(im.stdout).not.toMatch(/re-enrol/);
    expect(await keypad(dst, PIN)).toBe("granted");
  });

  it("audit export -o FILE and audit open FILE", async () => {
    const file = join(tmp, "audit.json");
    const ex = await run(src, "audit", "export", "--passphrase-file", join(tmp, "pass"), "-o", file);
    expect(ex.code, ex.stderr).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const open = await run(src, "audit", "open", file, "--passphrase-file", join(tmp, "pass"));
    expect(open.code, open.stderr).toBe(0);
    expect(open.stdout).toMatch(/this file: hashes and links OK/);
    expect(open.stdout).toMatch(/action=user\.add/);
    const wrong = await run(src, "audit", "open", file, "--passphrase-file", join(tmp, "wrong"));
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/^error LK_PASSPHRASE_WRONG: /m);
  });
});
