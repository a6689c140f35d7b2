/**
 * The guest-code issuer on an admin's machine (src/cli/issuer-wallet.ts): the file is private, issuing
 * works from the file alone and keeps a ledger without the digits, identical requests get different codes,
 * and revocations carry the issuer's MAC.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  findEntry,
  type IssuerFile,
  issueFromWallet,
  loadIssuer,
  parseDaySet,
  parseDuration,
  revocationFor,
  saveIssuer,
} from "../../src/cli/issuer-wallet.ts";
import { decodeGuestCode, deriveIssuerKey, revocationMac } from "../../src/core/credentials/guest-code.ts";
import { groupDigits } from "../../src/core/credentials/guest-code-text.ts";
import { toHex } from "../../src/core/crypto.ts";
import { parseLocalDateTime } from "../../src/core/schedule.ts";
import { EpochMs } from "../../src/core/units.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";

let dir: string;
const secret = new Uint8Array(32).fill(9);
const key = deriveIssuerKey(nodeCrypto, secret, "front-door", "iss_test", 0);
const file: IssuerFile = {
  format: "latchkey-issuer/1",
  lockId: "front-door",
  lockName: "Front door",
  timeZone: "Europe/Berlin",
  digits: 12,
  driftMinutes: 2,
  issuerId: "iss_test",
  epoch: 0,
  keyHex: toHex(key),
  ledger: [],
};
const now = EpochMs(Date.UTC(2026, 10, 22, 12, 0));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "lk-wallet-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("issuer wallet", () => {
  it("stores the issuer file privately and loads the only one without naming the lock", () => {
    const path = saveIssuer(dir, file);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "issuers")).mode & 0o777).toBe(0o700);
    expect(loadIssuer(dir).issuerId).toBe("iss_test");
    expect(() => loadIssuer(dir, "back-door")).toThrow(/LK_NOT_FOUND/);
  });

  it("issues offline, records the ledger without digits, and never repeats a code", () => {
    saveIssuer(dir, file);
    const req = { kind: "window" as const, from: "2026-12-01T09:00", to: "2026-12-01T12:00" };
    const a = issueFromWallet(dir, loadIssuer(dir), req, "Cleaner", now);
    const b = issueFromWallet(dir, loadIssuer(dir), req, "Cleaner 2", now);
    expect(a.code).not.toBe(b.code);
    expect(a.shareText).toContain(groupDigits(a.code));
    expect(a.shareText).toContain("Tue 1 Dec 2026 09:00");
    const raw = readFileSync(join(dir, "issuers", "front-door.json"), "utf8");
    expect(raw).not.toContain(a.code);
    const f = loadIssuer(dir);
    expect(f.ledger.map((e) => e.name)).toEqual(["Cleaner", "Cleaner 2"]);
    expect(findEntry(f, "Cleaner").codeId).toBe(a.entry.codeId);
    // The lock decodes it with the same key.
    const d = decodeGuestCode(
      nodeCrypto,
      [{ issuerId: "iss_test", epoch: 0, key }],
      a.code,
      parseLocalDateTime("2026-12-01T10:00"),
    );
    expect(d.status === "match" && d.codeId).toBe(a.entry.codeId);
    // The two exact encodings are used up: a third identical request is refused.
    expect(() => issueFromWallet(dir, loadIssuer(dir), req, "Cleaner 3", now)).toThrow(/LK_CONFLICT/);
  });

  it("keeps every ledger entry when runs work from stale copies of the file", () => {
    saveIssuer(dir, file);
    const stale = loadIssuer(dir);
    issueFromWallet(
      dir,
      stale,
      { kind: "window", from: "2026-12-01T09:00", to: "2026-12-01T12:00" },
      "A",
      now,
    );
    issueFromWallet(
      dir,
      stale,
      { kind: "window", from: "2026-12-02T09:00", to: "2026-12-02T12:00" },
      "B",
      now,
    );
    const f = loadIssuer(dir);
    expect(f.ledger.map((e) => [e.name, e.issuerId])).toEqual([
      ["A", "iss_test"],
      ["B", "iss_test"],
    ]);
    // An entry of another (earlier) issuer cannot be revoked with this issuer's key.
    const foreign = { ...f.ledger[0]!, issuerId: "iss_old" };
    expect(() => revocationFor(f, foreign)).toThrow(/LK_CONFLICT/);
  });

  it("refuses windows already over on the lock's clock", () => {
    saveIssuer(dir, file);
    expect(() =>
      issueFromWallet(
        dir,
        loadIssuer(dir),
        { kind: "window", from: "2026-11-01T09:00", to: "2026-11-01T12:00" },
        "Late",
        now,
      ),
    ).toThrow(/LK_GUESTCODE_INVALID/);
  });

  it("builds an issuer-authenticated revocation", () => {
    saveIssuer(dir, file);
    const a = issueFromWallet(
      dir,
      loadIssuer(dir),
      { kind: "oneTime", from: "2026-12-02T09:00", to: "2026-12-02T17:00" },
      "Plumber",
      now,
    );
    const r = revocationFor(loadIssuer(dir), a.entry);
    expect(r.mac).toBe(
      revocationMac(nodeCrypto, key, {
        issuerId: "iss_test",
        epoch: 0,
        codeId: a.entry.codeId,
        dropAfter: a.entry.dropAfter,
      }),
    );
    expect(r.dropAfter).toBe(parseLocalDateTime("2026-12-02T17:02"));
  });

  it("parses --days and --duration, refusing anything the format lacks", () => {
    expect(parseDaySet("Mon-Fri")).toBe(0x3e);
    expect(parseDaySet("weekends")).toBe(0x41);
    expect(() => parseDaySet("mon,tue")).toThrow(/LK_GUESTCODE_INVALID/);
    expect(parseDuration("24h")).toBe(1440);
    expect(parseDuration("7d")).toBe(10_080);
    expect(() => parseDuration("2h")).toThrow(/LK_INVALID_INPUT/);
  });
});
