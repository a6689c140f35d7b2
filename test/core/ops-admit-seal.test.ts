/**
 * Admission of signed operations (src/core/ops/admit.ts) and secrets sealed to a lock
 * (src/core/ops/seal.ts): keys learnt from the set itself in any order, refusals coded, drift bounded;
 * sealed boxes open only with the lock's key and only in their own context.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { toHex } from "../../src/core/crypto.ts";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import { isLatchkeyError } from "../../src/core/errors.ts";
import { keyId, type PublicKey } from "../../src/core/keys/digital-key.ts";
import {
  admitOps,
  decodeHeldOp,
  genesisFromJson,
  genesisToJson,
  keyDirectoryFrom,
} from "../../src/core/ops/admit.ts";
import { hlc } from "../../src/core/ops/hlc.ts";
import { genesisOf } from "../../src/core/ops/merge.ts";
import { type OperationBody, signOperation } from "../../src/core/ops/operation.ts";
import {
  openSealed,
  SEALED_BOX_BYTES,
  SealedKind,
  sealContext,
  sealToLock,
} from "../../src/core/ops/seal.ts";
import { nodeCrypto as c } from "../../src/platform/node-crypto.ts";

const T0 = 1_767_225_600_000;
const NODE = "00000000000000a1";

function signer(n: number) {
  const seed = Uint8Array.from({ length: 32 }, (_, i) => (n * 17 + i) & 0xff);
  const key: PublicKey = { alg: CoseAlg.EdDSA, key: c.ed25519PublicKey(seed) };
  const kid = keyId(c, key);
  return { key, id: toHex(kid), sign: { alg: CoseAlg.EdDSA, kid, privateKey: seed } };
}
const owner = signer(1);
const admin = signer(2);
const stranger = signer(3);
const G = genesisOf(c, [owner.key]);

function signed(
  by: ReturnType<typeof signer>,
  wall: number,
  body: Pick<OperationBody, "kind" | "target" | "payload">,
) {
  return signOperation(c, by.sign, {
    ...body,
    hlc: hlc(T0 + wall, 0, NODE),
    actor: by.id,
    scope: { kind: "site", id: "hub_0123456789abcdef" },
  } as OperationBody);
}

describe("admitOps", () => {
  const grant = signed(owner, 0, {
    kind: "role.set",
    target: admin.id,
    payload: { role: "admin", key: admin.key },
  });
  const byAdmin = signed(admin, 1, {
    kind: "user.upsert",
    target: "usr_a",
    payload: { name: "Ana", role: "member" },
  });

  it("learns a key from a grant in the same batch, whatever the order", () => {
    for (const batch of [
      [grant, byAdmin],
      [byAdmin, grant],
    ]) {
      const dir = keyDirectoryFrom(G, []);
      const r = admitOps(c, dir, batch, { nowMs: T0 });
      expect(r.refused).toEqual([]);
      expect(r.accepted.map((a) => a.op.kind).sort()).toEqual(["role.set", "user.upsert"]);
      expect(dir.get(admin.id)).not.toBeNull();
    }
  });

  it("refuses an unknown signer, a future stamp, garbage and a forged signature, each with its code", () => {
    const dir = keyDirectoryFrom(G, []);
    const future = signed(owner, 10 * 60_000, { kind: "user.remove", target: "usr_b", payload: {} });
    const forged = byAdmin.slice();
    forged[forged.length - 1]! ^= 1;
    const r = admitOps(c, dir, [byAdmin, future, new Uint8Array([1, 2, 3]), grant, forged], { nowMs: T0 });
    expect(r.accepted.map((a) => a.op.kind)).toEqual(["role.set", "user.upsert"]);
    expect(r.refused).toEqual([
      { index: 1, code: "LK_OP_CLOCK_DRIFT" },
      { index: 2, code: "LK_ENVELOPE_MALFORMED" },
      { index: 4, code: "LK_ENVELOPE_SIGNATURE" },
    ]);
    const alone = admitOps(
      c,
      keyDirectoryFrom(G, []),
      [signed(stranger, 0, { kind: "user.remove", target: "x", payload: {} })],
      {
        nowMs: T0,
      },
    );
    expect(alone.refused).toEqual([{ index: 0, code: "LK_OP_UNKNOWN_SIGNER" }]);
  });

  it("accepts a duplicate once, and held bytes decode to the same operation", () => {
    const dir = keyDirectoryFrom(G, []);
    const r = admitOps(c, dir, [grant, grant], { nowMs: T0 });
    expect(r.accepted).toHaveLength(1);
    expect(decodeHeldOp(c, grant).id).toBe(r.accepted[0]!.op.id);
  });

  it("genesis round-trips through JSON and refuses bad keys", () => {
    const json = genesisToJson(G);
    expect([...genesisFromJson(c, json).owners.keys()]).toEqual([...G.owners.keys()]);
    for (const bad of [
      null,
      [{}],
      [{ alg: -8, publicKey: "zz" }],
      [{ alg: 1, publicKey: "00".repeat(32) }],
    ]) {
      expect(() => genesisFromJson(c, bad)).toThrow(/LK_INVALID_INPUT|LK_ENVELOPE_ALG/);
    }
  });

  it("never throws on random bytes (fuzz)", () => {
    const dir = keyDirectoryFrom(G, []);
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 5 }), (batch) => {
        const r = admitOps(c, dir, batch, { nowMs: T0 });
        expect(r.accepted.length + r.refused.length).toBeLessThanOrEqual(batch.length);
      }),
      { numRuns: 2000, seed: 7 },
    );
  });
});

describe("sealToLock / openSealed", () => {
  const lockPriv = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
  const lockPub = c.x25519PublicKey(lockPriv);
  const ctx = sealContext("hub_0123456789abcdef", "cred_1");

  it("round-trips a PIN, a TOTP secret and the held marker; every box has the same size", () => {
    const pin = sealToLock(c, lockPub, { kind: SealedKind.Pin, pin: "482913" }, ctx);
    const longPin = sealToLock(c, lockPub, { kind: SealedKind.Pin, pin: "482913482913" }, ctx);
    expect(pin.length).toBe(SEALED_BOX_BYTES);
    expect(longPin.length).toBe(SEALED_BOX_BYTES);
    expect(openSealed(c, lockPriv, pin, ctx)).toEqual({ kind: SealedKind.Pin, pin: "482913" });
    const secret = Uint8Array.from({ length: 20 }, (_, i) => i);
    expect(
      openSealed(c, lockPriv, sealToLock(c, lockPub, { kind: SealedKind.TotpSecret, secret }, ctx), ctx),
    ).toEqual({
      kind: SealedKind.TotpSecret,
      secret,
    });
    expect(openSealed(c, lockPriv, sealToLock(c, lockPub, { kind: SealedKind.Held }, ctx), ctx)).toEqual({
      kind: SealedKind.Held,
    });
    // Fresh ephemeral key each time: the same PIN never gives the same box.
    expect(toHex(sealToLock(c, lockPub, { kind: SealedKind.Pin, pin: "482913" }, ctx))).not.toBe(toHex(pin));
    expect(Buffer.from(pin).includes(Buffer.from("482913"))).toBe(false);
  });

  it("does not open with another key, in another context, or after any byte changes", () => {
    const box = sealToLock(c, lockPub, { kind: SealedKind.Pin, pin: "482913" }, ctx);
    const other = Uint8Array.from({ length: 32 }, (_, i) => 200 - i);
    expect(() => openSealed(c, other, box, ctx)).toThrow(/LK_SEAL_INVALID/);
    expect(() => openSealed(c, lockPriv, box, sealContext("hub_0123456789abcdef", "cred_2"))).toThrow(
      /LK_SEAL_INVALID/,
    );
    let refused = 0;
    for (let i = 0; i < box.length; i++) {
      const t = box.slice();
      t[i]! ^= 0x01;
      try {
        openSealed(c, lockPriv, t, ctx);
      } catch (e) {
        if (isLatchkeyError(e, "LK_SEAL_INVALID")) refused++;
      }
    }
    expect(refused).toBe(box.length);
    expect(() => sealToLock(c, lockPub, { kind: SealedKind.Pin, pin: "12a4" }, ctx)).toThrow(/LK_PIN_FORMAT/);
    expect(() => sealToLock(c, new Uint8Array(32), { kind: SealedKind.Pin, pin: "482913" }, ctx)).toThrow(
      /LK_SEAL_INVALID/,
    );
  });
});
