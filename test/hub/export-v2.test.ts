/**
 * Export version 2 and the passphrase box (docs/formats/export.md § "Version 2", § "Passphrase box"):
 * a round trip to a new hub restores PINs, authenticator apps and guest-code issuers without
 * re-enrolment; every tamper (a modified box, truncated JSON, a wrong passphrase, a modified document, an
 * export older than a revocation) is refused and leaves the hub exactly as it was.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { canonicalJson } from "../../src/core/audit/canonical.ts";
import { issueGuestCode } from "../../src/core/credentials/guest-code.ts";
import { parseOtpauthUri, totpAt } from "../../src/core/credentials/totp.ts";
import { fromHex } from "../../src/core/crypto.ts";
import { type ErrorCode, isLatchkeyError } from "../../src/core/errors.ts";
import { Role } from "../../src/core/model.ts";
import { EpochMs } from "../../src/core/units.ts";
import { exportWithSecrets, openExportSecrets } from "../../src/hub/export.ts";
import type { IssuerFileView } from "../../src/hub/hub.ts";
import { applyImport, planImport, planImportWithPassphrase } from "../../src/hub/import.ts";
import {
  type BoxOptions,
  DEFAULT_SCRYPT,
  openWithPassphrase,
  sealWithPassphrase,
} from "../../src/hub/passphrase-box.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { type Harness, makeHub, settle } from "../support/hub-harness.ts";

/** Tests only: a cheap scrypt cost (the product's default and floor are never lowered). */
const FAST: BoxOptions = { scrypt: { N: 1024, r: 8, p: 1 }, allowWeakKdf: true };
const PASS = "correct horse battery staple";

const harnesses: Harness[] = [];
function hub(): Harness {
  const h = makeHub();
  harnesses.push(h);
  return h;
}
afterEach(() => {
  for (const h of harnesses.splice(0)) h.cleanup();
});

async function codeOf(f: () => unknown): Promise<{ code: ErrorCode; message: string }> {
  try {
    await f();
  } catch (e) {
    if (isLatchkeyError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error("expected a LatchkeyError");
}

/** Everything an import could change: the export (without its instant), the audit-relevant tables, the key files. */
function snapshot(h: Harness): unknown {
  const { exportedAt: _at, ...rest } = h.hub.exportData(h.owner);
  const m = h.hub.exportSecretMaterial(h.owner);
  return {
    rest,
    pins: m.pins,
    totp: m.totp.map((t) => ({ ...t, secret: Buffer.from(t.secret).toString("hex") })),
    guestCodeState: m.guestCodeState,
    pinFile: readFileSync(join(h.dir, "secrets", "pin-secret")).toString("hex"),
    guestFile: readFileSync(join(h.dir, "secrets", "guest-code-secret")).toString("hex"),
    pinKey: Buffer.from(m.pinKey).toString("hex"),
    guestKey: Buffer.from(m.guestCodeKey).toString("hex"),
  };
}

const HOUR = 3_600_000;
/** A local `YYYY-MM-DDTHH:MM` on the lock (Europe/Berlin, UTC+1 in January) `hours` from the hub's now. */
const localAt = (h: Harness, hours: number) =>
  new Date(h.clock.now() + HOUR + hours * HOUR).toISOString().slice(0, 16);

interface Source {
  h: Harness;
  doc: Record<string, unknown>;
  pin: string;
  totpSecret: Uint8Array;
  issuer: IssuerFileView;
  codes: { fresh: string; used: string; revoked: string };
  ids: { cleaner: string; bob: string; cleanerPin: string };
}

/**
 * A source hub: the cleaner has a PIN on the front door; Bob has a PIN and an authenticator app (Dual);
 * the owner is a guest-code issuer with three window codes: one fresh, one used once as a one-time code,
 * one revoked. Exported as version 2 with a cheap scrypt cost.
 */
async function populated(): Promise<Source> {
  const h = hub();
  const hb = h.hub;
  const cleaner = hb.addUser(h.owner, { name: "Cleaner", role: Role.Guest });
  const bob = hb.addUser(h.owner, { name: "Bob", role: Role.Member });
  const cleanerPin = hb.setPin(h.owner, cleaner.id, "480613", { locks: ["front-door"] });
  hb.setPin(h.owner, bob.id, "731904");
  const enrolment = hb.addTotp(h.owner, bob.id);
  hb.addCard(h.owner, bob.id, { uid: "04a1b2c3" });
  const issuer = hb.enrolIssuer(h.owner, "front-door");
  const key = fromHex(issuer.keyHex);
  const window = { from: localAt(h, -1), to: localAt(h, 4) };
  const fresh = issueGuestCode(nodeCrypto, key, { kind: "window", ...window }, { digits: issuer.digits });
  const used = issueGuestCode(nodeCrypto, key, { kind: "oneTime", ...window }, { digits: issuer.digits });
  const revoked = issueGuestCode(
    nodeCrypto,
    key,
    { kind: "window", from: window.from, to: localAt(h, 5) },
    { digits: issuer.digits },
  );
  const rt = hb.lock("front-door");
  expect((await settle(h, rt.keypadEntry(used.code))).feedback).toBe("granted");
  expect((await settle(h, rt.keypadEntry(used.code))).feedback).not.toBe("granted");
  hb.revokeGuestCode(h.owner, "front-door", {
    issuerId: issuer.issuerId,
    epoch: issuer.epoch,
    codeId: revoked.codeId,
    dropAfter: 0xffffffff,
  });
  expect((await settle(h, rt.keypadEntry(revoked.code))).feedback).not.toBe("granted");
  const doc = JSON.parse(JSON.stringify(await exportWithSecrets(hb, h.owner, PASS, FAST)));
  return {
    h,
    doc,
    pin: "480613",
    totpSecret: parseOtpauthUri(enrolment.otpauthUri).secret,
    issuer,
    codes: { fresh: fresh.code, used: used.code, revoked: revoked.code },
    ids: { cleaner: cleaner.id, bob: bob.id, cleanerPin: cleanerPin.id },
  };
}

const keypad = async (h: Harness, digits: string) =>
  (await settle(h, h.hub.lock("front-door").keypadEntry(digits))).feedback;

describe("passphrase box", () => {
  it("round-trips any bytes, and refuses any single flipped bit of its JSON text", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 200 }),
        fc.string({ minLength: 12, maxLength: 40 }),
        fc.nat(),
        fc.nat({ max: 7 }),
        async (plain, pass, at, bit) => {
          fc.pre([...pass.normalize("NFC")].length >= 12);
          const box = await sealWithPassphrase("test-kind", plain, pass, FAST);
          expect(await openWithPassphrase("test-kind", box, pass, FAST)).toEqual(plain);
          const text = Buffer.from(JSON.stringify(box), "utf8");
          const i = at % text.length;
          text[i] = text[i]! ^ (1 << bit);
          const err = await codeOf(() => openWithPassphrase("test-kind", text.toString("utf8"), pass, FAST));
          expect(["LK_PASSPHRASE_WRONG", "LK_PASSPHRASE_BOX_MALFORMED"]).toContain(err.code);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("refuses any single flipped bit of the salt, nonce or ciphertext bytes as a wrong passphrase", async () => {
    const box = await sealWithPassphrase("test-kind", Buffer.from("the secret"), PASS, FAST);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("salt", "nonce", "ciphertext"),
        fc.nat(),
        fc.nat({ max: 7 }),
        async (f, at, bit) => {
          const get = (b: typeof box) =>
            f === "salt" ? b.kdf.salt : f === "nonce" ? b.aead.nonce : b.ciphertext;
          const bytes = Buffer.from(get(box), "base64url");
          const i = at % bytes.length;
          bytes[i] = bytes[i]! ^ (1 << bit);
          const v = bytes.toString("base64url");
          const t =
            f === "salt"
              ? { ...box, kdf: { ...box.kdf, salt: v } }
              : f === "nonce"
                ? { ...box, aead: { ...box.aead, nonce: v } }
                : { ...box, ciphertext: v };
          expect((await codeOf(() => openWithPassphrase("test-kind", t, PASS, FAST))).code).toBe(
            "LK_PASSPHRASE_WRONG",
          );
        },
      ),
      { numRuns: 40 },
    );
  });

  it("binds the kind, refuses weak passphrases, a wrong one, weak and hostile costs; the default is recorded", async () => {
    const box = await sealWithPassphrase("kind-a", Buffer.from("x"), PASS, FAST);
    expect((await codeOf(() => openWithPassphrase("kind-b", box, PASS, FAST))).code).toBe(
      "LK_PASSPHRASE_BOX_MALFORMED",
    );
    // Relabelled: the AAD no longer matches.
    expect(
      (await codeOf(() => openWithPassphrase("kind-b", { ...box, kind: "kind-b" }, PASS, FAST))).code,
    ).toBe("LK_PASSPHRASE_WRONG");
    expect((await codeOf(() => openWithPassphrase("kind-a", box, `${PASS}!`, FAST))).code).toBe(
      "LK_PASSPHRASE_WRONG",
    );
    expect(
      (await codeOf(() => sealWithPassphrase("kind-a", Buffer.from("x"), "short pass", FAST))).code,
    ).toBe("LK_PASSPHRASE_WEAK");
    // Without the test-only option a cheap box is refused, and a hostile cost is refused before any work.
    expect((await codeOf(() => openWithPassphrase("kind-a", box, PASS))).code).toBe(
      "LK_PASSPHRASE_BOX_MALFORMED",
    );
    const hostile = { ...box, kdf: { ...box.kdf, N: 2 ** 24 } };
    const t0 = Date.now();
    expect((await codeOf(() => openWithPassphrase("kind-a", hostile, PASS, FAST))).code).toBe(
      "LK_PASSPHRASE_BOX_MALFORMED",
    );
    expect(Date.now() - t0).toBeLessThan(100);
    expect((await codeOf(() => openWithPassphrase("kind-a", { ...box, extra: 1 }, PASS, FAST))).code).toBe(
      "LK_PASSPHRASE_BOX_MALFORMED",
    );
    // NFC: the same passphrase typed with a combining accent opens it.
    const nfc = await sealWithPassphrase("kind-a", Buffer.from("y"), "caf\u00e9 au lait please", FAST);
    expect(
      Buffer.from(await openWithPassphrase("kind-a", nfc, "cafe\u0301 au lait please", FAST)).toString(),
    ).toBe("y");
    // The real default: recorded in the box (and opened once, at full cost).
    const real = await sealWithPassphrase("kind-a", Buffer.from("z"), PASS);
    expect(real.kdf).toMatchObject({ alg: "scrypt", ...DEFAULT_SCRYPT });
    expect(Buffer.from(await openWithPassphrase("kind-a", real, PASS)).toString()).toBe("z");
  });
});

describe("passphrase box test vectors", () => {
  it("opens the committed vectors, built independently by scripts/gen-passphrase-box-vectors.ts", async () => {
    const { vectors } = JSON.parse(readFileSync("docs/formats/passphrase-box-vectors.json", "utf8"));
    expect(vectors.length).toBeGreaterThan(0);
    for (const v of vectors) {
      const { ciphertext: _c, ...header } = v.box;
      expect(canonicalJson(header)).toBe(v.aad);
      const plain = await openWithPassphrase(v.box.kind, v.box, v.passphrase);
      expect(Buffer.from(plain).toString("utf8")).toBe(v.plaintextUtf8);
    }
  });
});

describe("export version 2", () => {
  it("holds no secret in clear, and GET-style exports stay version 1", async () => {
    const { h, doc } = await populated();
    expect(doc).toMatchObject({ format: "latchkey-export", version: 2, secretsIncluded: true });
    expect(h.hub.exportData(h.owner)).toMatchObject({ version: 1, secretsIncluded: false });
    // It has exactly the members of the committed JSON Schema's version-2 branch.
    const committed = JSON.parse(readFileSync("docs/formats/export.schema.json", "utf8"));
    const v2 = committed.oneOf[1];
    expect(v2.properties.version.const).toBe(2);
    expect(Object.keys(doc).sort()).toEqual(Object.keys(v2.properties).sort());
    for (const key of v2.required as string[]) expect(doc).toHaveProperty(key);
    expect(Object.keys(doc.secrets as object).sort()).toEqual(
      Object.keys(v2.properties.secrets.properties).sort(),
    );
    const text = JSON.stringify(doc);
    const m = h.hub.exportSecretMaterial(h.owner);
    for (const secret of [m.pinKey, m.guestCodeKey, ...m.totp.map((t) => t.secret)]) {
      expect(text).not.toContain(Buffer.from(secret).toString("base64url"));
      expect(text).not.toContain(Buffer.from(secret).toString("hex"));
    }
    for (const p of m.pins) expect(text).not.toContain(p.digest);
    expect(text).not.toContain("480613");
    // Only an owner exports secrets.
    const admin = h.hub.addUser(h.owner, { name: "Ada", role: Role.Admin });
    expect(
      (await codeOf(() => exportWithSecrets(h.hub, { userId: admin.id, role: Role.Admin }, PASS, FAST))).code,
    ).toBe("LK_FORBIDDEN");
  });

  it("round trip: on a new hub the PINs, the authenticator app and the issuer key work without re-enrolment", async () => {
    const src = await populated();
    const dst = hub();
    const plan = await planImportWithPassphrase(dst.hub, src.doc, PASS, { actor: dst.owner, box: FAST });
    expect(plan.secrets).toEqual({ sealed: true, opened: true, pinKey: "adopt", guestCodeKey: "adopt" });
    expect(plan.reEnrol).toEqual([]);
    expect(plan.counts).toMatchObject({
      usersAdded: 2,
      credentialsAdded: 1,
      credentialsRestored: 3,
      issuersRestored: 1,
    });
    expect(plan.notImported).toEqual({ guestCodeIssuers: 0, guestCodes: 0, phoneKeys: 0 });
    // The plan names no secret.
    const shown = JSON.stringify(plan.steps);
    expect(shown).not.toContain(src.doc.secrets as never);
    expect(shown).not.toMatch(/[0-9a-f]{64}/);
    const result = applyImport(dst.hub, dst.owner, plan);
    expect(result.applied).toBe(plan.steps.length);

    // The cleaner's PIN, Bob's PIN then his authenticator code (Dual: the PIN alone no longer opens).
    expect(await keypad(dst, src.pin)).toBe("granted");
    const code = totpAt(nodeCrypto, src.totpSecret, EpochMs(dst.hub.lock("front-door").readClock().now));
    expect(await keypad(dst, `731904${code}`)).toBe("granted");
    expect(await keypad(dst, "731904")).not.toBe("granted");
    // The issuer's key opens with a code issued before; a code used or revoked there is refused here.
    expect(await keypad(dst, src.codes.fresh)).toBe("granted");
    expect(await keypad(dst, src.codes.used)).not.toBe("granted");
    expect(await keypad(dst, src.codes.revoked)).not.toBe("granted");
    // The issuer file handed out by the new hub is the same key.
    const again = dst.hub.enrolIssuer(dst.owner, "front-door");
    expect(again).toMatchObject({ issuerId: src.issuer.issuerId, keyHex: src.issuer.keyHex });
    // ... and everything survives a restart (the adopted keys are in secrets/).
    dst.restart();
    expect(await keypad(dst, src.pin)).toBe("granted");
    // Importing the same file again changes nothing.
    const twice = await planImportWithPassphrase(dst.hub, src.doc, PASS, { actor: dst.owner, box: FAST });
    expect(twice.steps).toEqual([]);
  });

  it("without the passphrase it imports like version 1 and names who must re-enrol", async () => {
    const src = await populated();
    const dst = hub();
    const plan = planImport(dst.hub, src.doc, { actor: dst.owner });
    expect(plan.secrets).toMatchObject({ sealed: true, opened: false });
    expect(plan.reEnrol).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: "Cleaner", needs: ["pin"], reason: "noPassphrase" }),
        expect.objectContaining({ name: "Bob", needs: ["pin", "totp"], reason: "noPassphrase" }),
      ]),
    );
    expect(plan.notImported.guestCodeIssuers).toBe(1);
    applyImport(dst.hub, dst.owner, plan);
    expect(await keypad(dst, src.pin)).not.toBe("granted");
  });

  it("a hub with PINs under its own key restores the authenticator app and lists the PINs for re-enrolment", async () => {
    const src = await populated();
    const dst = hub();
    dst.hub.setPin(dst.owner, dst.owner.userId, "275031");
    const plan = await planImportWithPassphrase(dst.hub, src.doc, PASS, { actor: dst.owner, box: FAST });
    expect(plan.secrets.pinKey).toBe("differs");
    expect(plan.reEnrol.map((u) => [u.name, u.needs, u.reason]).sort()).toEqual([
      ["Bob", ["pin"], "pinKeyDiffers"],
      ["Cleaner", ["pin"], "pinKeyDiffers"],
    ]);
    expect(plan.steps.filter((s) => s.op === "totp.restore")).toHaveLength(1);
  });

  it("only an owner restores secrets", async () => {
    const src = await populated();
    const dst = hub();
    const admin = dst.hub.addUser(dst.owner, { name: "Ada", role: Role.Admin });
    const e = await codeOf(() =>
      planImportWithPassphrase(dst.hub, src.doc, PASS, {
        actor: { userId: admin.id, role: Role.Admin },
        box: FAST,
      }),
    );
    expect(e.code).toBe("LK_FORBIDDEN");
  });
});

describe("tampered and stale version-2 exports change nothing", () => {
  // biome-ignore lint/suspicious/noExplicitAny: a tampered document can be any shape
  const cases: [string, (d: any) => unknown, ErrorCode][] = [
    [
      "one byte of the box's ciphertext modified",
      (d) => {
        const b = Buffer.from(d.secrets.ciphertext, "base64url");
        b[5] = b[5]! ^ 0x01;
        d.secrets.ciphertext = b.toString("base64url");
      },
      "LK_PASSPHRASE_WRONG",
    ],
    [
      "the box's salt modified",
      (d) => {
        const b = Buffer.from(d.secrets.kdf.salt, "base64url");
        b[0] = b[0]! ^ 0x80;
        d.secrets.kdf.salt = b.toString("base64url");
      },
      "LK_PASSPHRASE_WRONG",
    ],
    [
      "the box's kind changed",
      (d) => {
        d.secrets.kind = "latchkey-audit-export";
      },
      "LK_PASSPHRASE_BOX_MALFORMED",
    ],
    [
      "a user's name changed in the plain part",
      (d) => {
        d.users.find((u: { name: string }) => u.name === "Bob").name = "Mallory";
      },
      "LK_EXPORT_MODIFIED",
    ],
    [
      "a PIN moved to another user in the plain part",
      (d) => {
        const pin = d.credentials.find((c: { type: string }) => c.type === "pin");
        pin.userId = d.users.find((u: { id: string }) => u.id !== pin.userId).id;
      },
      "LK_EXPORT_MODIFIED",
    ],
    [
      "the version lowered to 1",
      (d) => {
        d.version = 1;
      },
      "LK_INVALID_INPUT",
    ],
  ];
  for (const [what, tamper, code] of cases) {
    it(`${what}: ${code}`, async () => {
      const src = await populated();
      const dst = hub();
      const d = structuredClone(src.doc);
      tamper(d);
      const before = snapshot(dst);
      const err = await codeOf(async () =>
        applyImport(
          dst.hub,
          dst.owner,
          await planImportWithPassphrase(dst.hub, d, PASS, { actor: dst.owner, box: FAST }),
        ),
      );
      expect(err.code).toBe(code);
      expect(snapshot(dst)).toEqual(before);
    });
  }

  it("truncated JSON and a wrong passphrase", async () => {
    const src = await populated();
    const dst = hub();
    const before = snapshot(dst);
    const text = JSON.stringify(src.doc);
    for (const cut of [text.length - 1, Math.floor(text.length / 2), 10]) {
      expect(
        (await codeOf(() => planImportWithPassphrase(dst.hub, text.slice(0, cut), PASS, { box: FAST }))).code,
      ).toBe("LK_INVALID_INPUT");
    }
    expect(
      (await codeOf(() => planImportWithPassphrase(dst.hub, src.doc, "not the passphrase", { box: FAST })))
        .code,
    ).toBe("LK_PASSPHRASE_WRONG");
    // Secrets opened for one document are refused with another.
    const secrets = await openExportSecrets(src.doc, PASS, FAST);
    const other = structuredClone(src.doc) as { note: string };
    other.note = "changed";
    expect((await codeOf(() => planImport(dst.hub, other, { secrets }))).code).toBe("LK_EXPORT_MODIFIED");
    expect(snapshot(dst)).toEqual(before);
  });

  it("same hub: an export older than a PIN's removal or an issuer's removal never brings it back", async () => {
    const src = await populated();
    const h = src.h;
    expect((await planImportWithPassphrase(h.hub, src.doc, PASS, { box: FAST })).steps).toEqual([]);
    h.hub.removeCredential(h.owner, src.ids.cleanerPin);
    const afterPin = snapshot(h);
    const e1 = await codeOf(() =>
      planImportWithPassphrase(h.hub, src.doc, PASS, { box: FAST, mode: "merge" }),
    );
    expect(e1.code).toBe("LK_IMPORT_STALE");
    expect(snapshot(h)).toEqual(afterPin);
    expect(await keypad(h, src.pin)).not.toBe("granted");

    // An issuer removed after the export: its key does not come back either.
    const fresh = await populated();
    fresh.h.hub.removeIssuer(fresh.h.owner, "front-door", fresh.issuer.issuerId);
    const e2 = await codeOf(() => planImportWithPassphrase(fresh.h.hub, fresh.doc, PASS, { box: FAST }));
    expect(e2.code).toBe("LK_IMPORT_STALE");
    expect(await keypad(fresh.h, fresh.codes.fresh)).not.toBe("granted");
  });

  it("new hub: a PIN restored there and then removed does not come back from the same old export", async () => {
    const src = await populated();
    const dst = hub();
    const r = applyImport(
      dst.hub,
      dst.owner,
      await planImportWithPassphrase(dst.hub, src.doc, PASS, { actor: dst.owner, box: FAST }),
    );
    const restoredPin = r.credentials[src.ids.cleanerPin]!;
    expect(restoredPin).toMatch(/^cred_/);
    dst.hub.removeCredential(dst.owner, restoredPin);
    const before = snapshot(dst);
    const e = await codeOf(() =>
      planImportWithPassphrase(dst.hub, src.doc, PASS, { actor: dst.owner, box: FAST, mode: "merge" }),
    );
    expect(e.code).toBe("LK_IMPORT_STALE");
    expect(snapshot(dst)).toEqual(before);
    expect(await keypad(dst, src.pin)).not.toBe("granted");
  });

  it("a failure while restoring puts the keys back and leaves nothing", async () => {
    const src = await populated();
    const dst = hub();
    const before = snapshot(dst);
    const plan = await planImportWithPassphrase(dst.hub, src.doc, PASS, { actor: dst.owner, box: FAST });
    const insert = dst.hub.store.upsertGuestCodeIssuer.bind(dst.hub.store);
    dst.hub.store.upsertGuestCodeIssuer = () => {
      throw new Error("disk on fire");
    };
    expect(() => applyImport(dst.hub, dst.owner, plan)).toThrow("disk on fire");
    dst.hub.store.upsertGuestCodeIssuer = insert;
    const after = snapshot(dst) as { rest: { locks: unknown } };
    expect(after).toEqual(before);
    expect(await keypad(dst, src.pin)).not.toBe("granted");
  });
});
