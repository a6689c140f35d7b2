/**
 * Authenticator-app codes (RFC 6238 TOTP) at the simulated keypad, end to end through the hub: enrolment,
 * PIN then code (Dual), the code alone, accept once across restarts, clock skew and trust, lockout, and
 * the secret sealed at rest. Codes come from our own `totpAt` and from otplib, an independent client.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { generateSync } from "otplib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { base32Encode } from "../../src/core/credentials/base32.ts";
import { parseOtpauthUri, totpAt } from "../../src/core/credentials/totp.ts";
import { isLatchkeyError } from "../../src/core/errors.ts";
import type { User } from "../../src/core/model.ts";
import { EpochMs } from "../../src/core/units.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { type Harness, makeHub, settle } from "../support/hub-harness.ts";

let h: Harness;
beforeEach(() => {
  h = makeHub();
});
afterEach(() => h.cleanup());

const PIN = "480613";
const sim = () => h.hub.simulator("front-door");
const lastAccess = () =>
  h.hub.store.query({ limit: 1, descending: true, kinds: ["access.granted", "access.denied"] })[0];
const lastDenyReason = () =>
  h.hub.store.query({ limit: 1, descending: true, kinds: ["access.denied"] })[0]?.data.reason;
const lockouts = () => h.hub.store.query({ limit: 100, kinds: ["alarm.lockout"] }).length;

/** A member with a PIN and an authenticator app; returns the app's secret (as the QR code carries it). */
function enrol(name: string, opts: { requirePin?: boolean; pin?: string | null; locks?: string[] } = {}) {
  const user = h.hub.addUser(h.owner, { name });
  if (opts.pin !== null) h.hub.setPin(h.owner, user.id, opts.pin ?? PIN);
  const e = h.hub.addTotp(h.owner, user.id, {
    ...(opts.requirePin !== undefined ? { requirePin: opts.requirePin } : {}),
    ...(opts.locks ? { locks: opts.locks } : {}),
  });
  return { user, credential: e.credential, uri: e.otpauthUri, secret: parseOtpauthUri(e.otpauthUri).secret };
}

/** The app's code `steps` time steps from the hub's now. */
const codeAt = (secret: Uint8Array, steps = 0) =>
  totpAt(nodeCrypto, secret, EpochMs(h.clock.now() + steps * 30_000));

/** Type at the keypad and let the motor finish. */
const type = (digits: string) => settle(h, sim().enterPin(digits));

describe("authenticator codes at the keypad", () => {
  it("enrols with an otpauth:// URI and opens with the PIN then the current code in one entry", async () => {
    const { user, credential, uri, secret } = enrol("Bob");
    expect(uri).toMatch(
      /^otpauth:\/\/totp\/Latchkey:Bob\?secret=[A-Z2-7]{32}&issuer=Latchkey&algorithm=SHA1&digits=6&period=30$/,
    );
    expect(credential).toMatchObject({
      type: "totp",
      requirePin: true,
      algorithm: "SHA-1",
      digits: 6,
      step: 30,
    });
    expect(credential).not.toHaveProperty("secret");
    expect(credential).not.toHaveProperty("lastStep");
    expect(await type(PIN + codeAt(secret))).toBe("granted");
    expect(lastAccess()?.data).toMatchObject({
      credentialType: "totp",
      credentialId: credential.id,
      userId: user.id,
      source: "keypad",
    });
    // The enrolment is audited without the secret; the list and the export never show it.
    const add = h.hub.store
      .query({ limit: 50, kinds: ["admin.change"] })
      .find((e) => e.data.credentialId === credential.id);
    expect(add?.data).toMatchObject({ action: "credential.add", credentialType: "totp", requirePin: true });
    const b32 = base32Encode(secret);
    expect(JSON.stringify(h.hub.credentialViews(user.id))).not.toContain(b32);
    expect(JSON.stringify(h.hub.exportData(h.owner))).not.toContain(b32);
    expect(JSON.stringify(h.hub.store.query({ limit: 1000 }))).not.toContain(b32);
  });

  it("refuses the PIN alone of a Dual user as second_credential_required, without counting it", async () => {
    enrol("Bob");
    for (let i = 0; i < 7; i++) {
      expect(await type(PIN)).toBe("denied");
      expect(lastDenyReason()).toBe("second_credential_required");
    }
    expect(lockouts()).toBe(0);
    // Another user's PIN is untouched.
    const carol = h.hub.addUser(h.owner, { name: "Carol" });
    h.hub.setPin(h.owner, carol.id, "702918");
    expect(await type("702918")).toBe("granted");
  });

  it("opens with the code alone only when enrolled with requirePin false", async () => {
    const bob = enrol("Bob");
    expect(await type(codeAt(bob.secret))).toBe("denied");
    expect(lastDenyReason()).toBe("unknown_credential");
    const carol = enrol("Carol", { requirePin: false, pin: null });
    expect(await type(codeAt(carol.secret))).toBe("granted");
    expect(lastAccess()?.data).toMatchObject({ credentialType: "totp", credentialId: carol.credential.id });
    // Alone, the code is not a second factor: Carol's entry is the code, nothing before it.
    await h.clock.advance(30_000);
    const dan = enrol("Dan", { requirePin: false, pin: "815372" });
    expect(await type(`815372${codeAt(dan.secret)}`)).toBe("denied");
    expect(await type("815372")).toBe("granted");
  });

  it("accepts a code once: the same code is refused again, also after a restart on the same data directory", async () => {
    const bob = enrol("Bob");
    const carol = enrol("Carol", { requirePin: false, pin: null });
    const dual = PIN + codeAt(bob.secret);
    const alone = codeAt(carol.secret);
    expect(await type(dual)).toBe("granted");
    expect(await type(alone)).toBe("granted");
    expect(await type(dual)).toBe("denied");
    expect(lastDenyReason()).toBe("totp_replayed");
    expect(await type(alone)).toBe("denied");
    expect(lastDenyReason()).toBe("totp_replayed");
    h.restart();
    expect(await type(dual)).toBe("denied");
    expect(lastDenyReason()).toBe("totp_replayed");
    expect(await type(alone)).toBe("denied");
    // The secrets were unsealed at load: the next step's codes open.
    await h.clock.advance(30_000);
    expect(await type(PIN + codeAt(bob.secret))).toBe("granted");
    expect(await type(codeAt(carol.secret))).toBe("granted");
  });

  it("opens with codes made by otplib, an independent authenticator implementation", async () => {
    const { secret } = enrol("Bob");
    for (let i = 0; i < 3; i++) {
      const code = generateSync({ secret, epoch: h.clock.now() / 1000 });
      expect(await type(PIN + code)).toBe("granted");
      await h.clock.advance(30_000);
    }
  });

  it("accepts one time step of skew either way and refuses two", async () => {
    const { secret } = enrol("Bob");
    await h.clock.advance(10_000); // mid-step
    expect(await type(PIN + codeAt(secret, -2))).toBe("denied");
    expect(lastDenyReason()).toBe("totp_invalid");
    expect(await type(PIN + codeAt(secret, 2))).toBe("denied");
    expect(lastDenyReason()).toBe("totp_invalid");
    expect(await type(PIN + codeAt(secret, -1))).toBe("granted");
    expect(await type(PIN + codeAt(secret, 1))).toBe("granted");
    // The current step is older than the accepted +1: refused as used (accept once, RFC 6238 § 5.2).
    expect(await type(PIN + codeAt(secret, 0))).toBe("denied");
    expect(lastDenyReason()).toBe("totp_replayed");
  });

  it("refuses codes while the lock's clock is untrusted, without counting them", async () => {
    const bob = enrol("Bob");
    const carol = enrol("Carol", { requirePin: false, pin: null });
    sim().setRtc(EpochMs(h.clock.now() - 3_600_000));
    expect(h.hub.status("front-door").clock.trusted).toBe(false);
    for (let i = 0; i < 6; i++) {
      expect(await type(PIN + codeAt(bob.secret))).toBe("denied");
      expect(lastDenyReason()).toBe("clock_untrusted");
    }
    expect(lockouts()).toBe(0);
    // A code alone that matches (checked against the lock's estimate of the time) is refused the same way.
    expect(await type(codeAt(carol.secret))).toBe("denied");
    expect(lastDenyReason()).toBe("clock_untrusted");
    // Once an owner sets the time, codes work again.
    h.hub.lock("front-door").setClock(h.clock.now(), h.owner.userId, true);
    expect(await type(PIN + codeAt(bob.secret))).toBe("granted");
  });

  it("counts wrong codes after a right PIN towards the keypad lockout, with a wrong PIN's feedback", async () => {
    const { secret } = enrol("Bob");
    const right = codeAt(secret);
    const wrong = right === "000000" ? "000001" : "000000";
    for (let i = 0; i < 5; i++) expect(await settle(h, sim().enterPin(PIN + wrong), 10)).toBe("denied");
    expect(lockouts()).toBe(1);
    expect(await settle(h, sim().enterPin(PIN + right), 10)).toBe("locked_out");
    await h.clock.advance(60_000);
    expect(await type(PIN + codeAt(secret))).toBe("granted");
  });

  it("keeps the secret out of the SQLite file: sealed with AES-256-GCM under secrets/totp-seal-key", async () => {
    const { secret, credential } = enrol("Bob");
    expect(await type(PIN + codeAt(secret))).toBe("granted");
    const files = readdirSync(h.dir).filter((f) => f.startsWith("latchkey.db"));
    const bytes = Buffer.concat(files.map((f) => readFileSync(join(h.dir, f))));
    expect(bytes.includes(Buffer.from(secret))).toBe(false);
    expect(bytes.includes(Buffer.from(base32Encode(secret), "latin1"))).toBe(false);
    expect(bytes.toString("latin1")).not.toContain(base32Encode(secret).toLowerCase());
    const row = h.hub.store.db
      .prepare("SELECT totp_sealed, match_key, last_step FROM credentials WHERE id = ?")
      .get(credential.id) as { totp_sealed: Uint8Array; match_key: string; last_step: number };
    expect(row.totp_sealed.length).toBe(1 + 12 + 20 + 16);
    expect(row.match_key).toBe(credential.id);
    expect(row.last_step).toBe(Math.floor(h.clock.now() / 30_000));
    // Another key does not open it: the hub refuses to start rather than run without the secrets.
    h.hub.close();
    writeFileSync(join(h.dir, "secrets", "totp-seal-key"), nodeCrypto.randomBytes(32), { mode: 0o600 });
    let err: unknown;
    try {
      h.restart();
    } catch (e) {
      err = e;
    }
    expect(isLatchkeyError(err, "LK_DATA_DIR_INVALID")).toBe(true);
    expect(String(err)).toMatch(/totp-seal-key/);
    expect(String(err)).not.toContain(base32Encode(secret));
  });

  it("follows the credential's lock scope, and removing the credential gives the PIN back", async () => {
    h.hub.addLock(h.owner, { id: "back-door" });
    const { credential, secret } = enrol("Bob", { locks: ["back-door"] });
    // At the front door Bob's authenticator does not apply: his PIN alone opens there.
    expect(await type(PIN)).toBe("granted");
    const back = h.hub.simulator("back-door");
    expect(await settle(h, back.enterPin(PIN))).toBe("denied");
    expect(await settle(h, back.enterPin(PIN + codeAt(secret)))).toBe("granted");
    h.hub.removeCredential(h.owner, credential.id);
    expect(await settle(h, back.enterPin(PIN))).toBe("granted");
  });

  it("only owners and admins enrol; only they may grant the code alone; at most 10 alone per lock", () => {
    const admin = h.hub.addUser(h.owner, { name: "Ada", role: "admin" });
    const member = h.hub.addUser(h.owner, { name: "Max" });
    const asAdmin = { userId: admin.id, role: admin.role };
    const asMember = { userId: member.id, role: member.role };
    expect(() => h.hub.addTotp(asMember, member.id)).toThrow(/LK_FORBIDDEN/);
    expect(() => h.hub.addTotp(asMember, admin.id)).toThrow(/LK_FORBIDDEN/);
    expect(() => h.hub.addTotp(asAdmin, h.owner.userId)).toThrow(/LK_FORBIDDEN/);
    expect(h.hub.addTotp(asAdmin, admin.id).credential.type).toBe("totp");
    expect(h.hub.addTotp(asAdmin, member.id, { requirePin: false }).credential).toMatchObject({
      requirePin: false,
    });
    const users: User[] = [];
    for (let i = 0; i < 9; i++) users.push(h.hub.addUser(h.owner, { name: `Guest ${i}` }));
    for (const u of users) h.hub.addTotp(h.owner, u.id, { requirePin: false, locks: ["front-door"] });
    const extra = h.hub.addUser(h.owner, { name: "One Too Many" });
    expect(() => h.hub.addTotp(h.owner, extra.id, { requirePin: false })).toThrow(/LK_TOTP_ALONE_LIMIT/);
    // Dual credentials are not capped, and another lock has its own ten.
    expect(h.hub.addTotp(h.owner, extra.id).credential).toMatchObject({ requirePin: true });
    h.hub.addLock(h.owner, { id: "garage" });
    expect(h.hub.addTotp(h.owner, extra.id, { requirePin: false, locks: ["garage"] }).credential.type).toBe(
      "totp",
    );
  });

  it("a random 6-digit code never opens, alone or after the PIN, unless it is the code of the current or an adjacent step", async () => {
    h.hub.updateLockSettings(h.owner, "front-door", { wrongCodeEntryLimit: 255 });
    const bob = enrol("Bob");
    const carol = enrol("Carol", { requirePin: false, pin: null });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 999_999 }), fc.boolean(), async (n, withPin) => {
        const secret = withPin ? bob.secret : carol.secret;
        const code = String(n).padStart(6, "0");
        fc.pre(![-1, 0, 1].some((d) => codeAt(secret, d) === code));
        const r = await settle(h, sim().enterPin(withPin ? PIN + code : code), 10);
        expect(r).toBe("denied");
      }),
      { numRuns: 200 },
    );
    expect(h.hub.store.query({ limit: 10, kinds: ["access.granted"] })).toHaveLength(0);
    // ...and the codes that should open, do (each once).
    expect(await type(PIN + codeAt(bob.secret))).toBe("granted");
    expect(await type(codeAt(carol.secret))).toBe("granted");
  });
});
