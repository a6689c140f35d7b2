/**
 * The hub as a replica of its site's management operations (src/hub/replica.ts, src/hub/materialize.ts):
 * local changes become signed operations once the owner grants the hub's key; operations signed
 * elsewhere (the cloud's key) are admitted and the hub's tables follow the fold — a PIN set elsewhere
 * arrives sealed and opens at the keypad; removal wins over a concurrent change; another replica that
 * holds the same operations folds to the same state.
 */
import { afterEach, describe, expect, it } from "vitest";
import { toHex } from "../../src/core/crypto.ts";
import { NumericDate } from "../../src/core/envelope/cwt.ts";
import { ALL_KEY_RIGHTS, issueKey, keyId } from "../../src/core/keys/digital-key.ts";
import { decodeHeldOp } from "../../src/core/ops/admit.ts";
import { hlc } from "../../src/core/ops/hlc.ts";
import { encodeReplicaState, foldOps } from "../../src/core/ops/merge.ts";
import { type OperationBody, signOperation } from "../../src/core/ops/operation.ts";
import { SealedKind, sealContext, sealToLock } from "../../src/core/ops/seal.ts";
import { type Harness, makeHub, settle } from "../support/hub-harness.ts";
import { c, ed, type Party } from "../support/link-fixtures.ts";

let h: Harness;
afterEach(() => h?.cleanup());

function sign(
  by: Party,
  wallMs: number,
  node: string,
  body: Pick<OperationBody, "kind" | "target" | "payload">,
) {
  const kid = keyId(c, by.pk);
  return signOperation(c, { alg: by.alg, kid, privateKey: by.privateKey }, {
    ...body,
    hlc: hlc(wallMs, 0, node),
    actor: toHex(kid),
    scope: { kind: "site", id: h.hub.deviceId },
  } as OperationBody);
}

/** A hub whose owner registered a root and granted the hub's key (and a cloud key) the admin role. */
function setup(): { root: Party; cloud: Party } {
  h = makeHub();
  const root = ed();
  const cloud = ed();
  const nowS = Math.floor(h.clock.now() / 1000);
  h.hub.keys.register(
    h.owner,
    root.pk,
    issueKey(c, root, {
      serial: c.randomBytes(16),
      holder: h.hub.keys.signerKey,
      scope: { kind: "site", id: h.hub.deviceId },
      nbf: NumericDate(nowS - 60),
      exp: NumericDate(nowS + 3650 * 86_400),
      rights: ALL_KEY_RIGHTS,
      schedule: null,
      leaseSeconds: null,
    }),
  );
  const t = h.clock.now();
  const r = h.hub.applyOps(
    h.owner,
    [
      sign(root, t, "00000000000000f0", {
        kind: "role.set",
        target: h.hub.replica.hubKeyId,
        payload: { role: "admin", key: h.hub.replica.hubKey },
      }),
      sign(root, t + 1, "00000000000000f0", {
        kind: "role.set",
        target: toHex(keyId(c, cloud.pk)),
        payload: { role: "admin", key: cloud.pk },
      }),
    ],
    false,
  );
  expect(r.refused).toEqual([]);
  return { root, cloud };
}

const cloudNode = "00000000000000c1";

describe("the hub's operation log", () => {
  it("is inactive before the owner grants the hub's key, then snapshots everything once", () => {
    h = makeHub();
    const u = h.hub.addUser(h.owner, { name: "Ana" });
    h.hub.setPin(h.owner, u.id, "480613");
    expect(h.hub.opsStatus()).toMatchObject({ enabled: false, active: false, total: 0 });
    h.cleanup();
    setup();
    const st = h.hub.opsStatus();
    expect(st.active).toBe(true);
    // 2 grants + the snapshot: the owner user (upsert + schedules) and the default lock's mode.
    expect(st.total).toBeGreaterThanOrEqual(5);
    const state = h.hub.replica.state()!;
    expect(state.users.get(h.owner.userId)?.name).toBe("Olivia Owner");
    expect(state.modes.get("front-door")).toBe("normal");
  });

  it("records local changes as signed operations; another replica folds them to the same state", () => {
    setup();
    const u = h.hub.addUser(h.owner, { name: "Ben" });
    h.hub.setPin(h.owner, u.id, "480613");
    h.hub.addCard(h.owner, u.id, { uid: "04a1b2c3d4e5f6" });
    h.hub.updateUser(h.owner, u.id, { userStatus: "occupiedDisabled" });
    h.hub.setOperatingMode(h.owner, "front-door", "vacation");
    const rows = h.hub.store.ops.all();
    const ops = rows.map((r) => decodeHeldOp(c, r.cose));
    const kinds = ops.map((o) => o.kind);
    expect(kinds).toContain("credential.upsert");
    expect(kinds).toContain("mode.set");
    // No PIN in any operation: only a sealed box.
    for (const r of rows) expect(Buffer.from(r.cose).includes(Buffer.from("480613"))).toBe(false);
    const other = foldOps(h.hub.replica.log()!.genesis, [...ops].reverse());
    expect(toHex(encodeReplicaState(other))).toBe(toHex(encodeReplicaState(h.hub.replica.state()!)));
    expect(other.users.get(u.id)?.userStatus).toBe("occupiedDisabled");
  });

  it("applies a user and a sealed PIN made by the cloud's key: the PIN opens at the keypad", async () => {
    const { cloud } = setup();
    const t = h.clock.now();
    const box = sealToLock(
      c,
      h.hub.sealPublicKey,
      { kind: SealedKind.Pin, pin: "731904" },
      sealContext(h.hub.deviceId, "cred_cloud1"),
    );
    const r = h.hub.applyOps(
      null,
      [
        sign(cloud, t + 5, cloudNode, {
          kind: "user.upsert",
          target: "usr_cloud1",
          payload: { name: "Chloe", role: "member" },
        }),
        sign(cloud, t + 6, cloudNode, {
          kind: "credential.upsert",
          target: "cred_cloud1",
          payload: {
            userId: "usr_cloud1",
            type: "pin",
            locks: "all",
            label: null,
            sealed: box,
            duress: false,
          },
        }),
      ],
      true,
    );
    expect(r).toMatchObject({ fresh: 2, refused: [] });
    expect(r.changed).toMatchObject({ usersWritten: ["usr_cloud1"], credentialsWritten: ["cred_cloud1"] });
    expect(h.hub.user("usr_cloud1").name).toBe("Chloe");
    const res = await settle(h, h.hub.lock("front-door").keypadEntry("731904"));
    expect(res.decision).toMatchObject({
      outcome: "grant",
      userId: "usr_cloud1",
      credentialId: "cred_cloud1",
    });
    // Applying the same operations again changes nothing.
    expect(h.hub.applyOps(null, [], true).fresh).toBe(0);
  });

  it("holds a PIN set elsewhere to the hub's own rules: no shared codes, the lock's minimum length", async () => {
    const { cloud } = setup();
    const sam = h.hub.addUser(h.owner, { name: "Sam" });
    h.hub.setPin(h.owner, sam.id, "480613");
    h.hub.updateLockSettings(h.owner, "front-door", { pinMinLength: 8 });
    const t = h.clock.now();
    const box = (id: string, pin: string) =>
      sealToLock(c, h.hub.sealPublicKey, { kind: SealedKind.Pin, pin }, sealContext(h.hub.deviceId, id));
    const pin = (id: string, digits: string, i: number) =>
      sign(cloud, t + 10 + i, cloudNode, {
        kind: "credential.upsert",
        target: id,
        payload: {
          userId: "usr_x",
          type: "pin",
          locks: "all",
          label: null,
          sealed: box(id, digits),
          duress: false,
        },
      });
    const r = h.hub.applyOps(
      null,
      [
        sign(cloud, t + 9, cloudNode, { kind: "user.upsert", target: "usr_x", payload: { name: "Xavier" } }),
        pin("cred_shared", "48061300", 0),
        pin("cred_short", "5830", 1),
        pin("cred_dup", "480613", 2),
        pin("cred_ok", "73190482", 3),
      ],
      true,
    );
    expect(r.changed?.credentialsRefused).toEqual([
      { id: "cred_short", code: "LK_PIN_TOO_SHORT" },
      { id: "cred_dup", code: "LK_PIN_TOO_SHORT" },
    ]);
    expect(r.changed?.credentialsWritten).toEqual(["cred_shared", "cred_ok"]);
    // Sam's 480613 still opens as Sam's; the too-short PIN does not open at all.
    expect((await settle(h, h.hub.lock("front-door").keypadEntry("480613"))).decision).toMatchObject({
      userId: sam.id,
    });
    expect((await settle(h, h.hub.lock("front-door").keypadEntry("5830"))).decision?.outcome).not.toBe(
      "grant",
    );
    // The same PIN twice from elsewhere: the second is refused as shared.
    const again = h.hub.applyOps(null, [pin("cred_twin", "73190482", 4)], true);
    expect(again.changed?.credentialsRefused).toContainEqual({ id: "cred_twin", code: "LK_PIN_IN_USE" });
  });

  it("removal wins: a user removed at the hub stays removed when an older cloud edit of it arrives later", () => {
    const { cloud } = setup();
    const u = h.hub.addUser(h.owner, { name: "Dan" });
    h.hub.setPin(h.owner, u.id, "480613");
    const t = h.clock.now();
    h.clock.set?.(t);
    h.hub.removeUser(h.owner, u.id);
    // The cloud, offline, renamed Dan a minute later by its clock and gave him a card.
    const r = h.hub.applyOps(
      null,
      [
        sign(cloud, t + 60_000, cloudNode, {
          kind: "user.upsert",
          target: u.id,
          payload: { name: "Daniel" },
        }),
        sign(cloud, t + 60_001, cloudNode, {
          kind: "credential.upsert",
          target: "cred_dan_card",
          payload: { userId: u.id, type: "rfid", locks: "all", label: null, cardId: "uid:04a1b2c3d4e5f6" },
        }),
      ],
      true,
    );
    expect(r.refused).toEqual([]);
    expect(() => h.hub.user(u.id)).toThrow(/LK_NOT_FOUND/);
    expect(h.hub.credentialViews().some((x) => x.id === "cred_dan_card")).toBe(false);
    const skipped = [...h.hub.replica.state()!.skipped.values()];
    expect(skipped).toContain("removed");
  });

  it("refuses operations by an unknown key or tampered bytes, and changes nothing", () => {
    setup();
    const stranger = ed();
    const before = h.hub.store.ops.counts().total;
    const good = sign(stranger, h.clock.now(), cloudNode, {
      kind: "user.remove",
      target: h.owner.userId,
      payload: {},
    });
    const r = h.hub.applyOps(null, [good, new Uint8Array([0xd2, 0x84])], true);
    expect(r.refused.map((x) => x.code)).toEqual(["LK_OP_UNKNOWN_SIGNER", "LK_ENVELOPE_MALFORMED"]);
    expect(h.hub.store.ops.counts().total).toBe(before);
    expect(h.hub.user(h.owner.userId)).toBeTruthy();
  });

  it("records phone keys issued and revoked; a key revoked in the cloud is revoked at the hub's locks", () => {
    const { cloud } = setup();
    const phone = ed();
    const { record } = h.hub.keys.issue(h.owner, {
      holder: phone.pk,
      name: "Sam's phone",
      rights: ["unlock"],
      until: h.clock.now() + 86_400_000,
    });
    const state = h.hub.replica.state()!;
    expect(state.keys.get(record.serial)).toMatchObject({ rights: 1 });
    const listBefore = h.hub.status("front-door").phoneKeys;
    const r = h.hub.applyOps(
      null,
      [sign(cloud, h.clock.now() + 5, cloudNode, { kind: "key.revoke", target: record.serial, payload: {} })],
      true,
    );
    expect(r.refused).toEqual([]);
    expect(h.hub.store.phoneKeys.keys().find((k) => k.serial === record.serial)?.revokedAt).not.toBeNull();
    expect(h.hub.status("front-door").phoneKeys).not.toEqual(listBefore);
    // Revoked once: the hub did not record its own key.revoke for a revocation that came as one.
    const revokes = h.hub.store.ops
      .all()
      .map((o) => decodeHeldOp(c, o.cose))
      .filter((o) => o.kind === "key.revoke");
    expect(revokes).toHaveLength(1);
  });

  it("records guest-code revocations, and applies one made elsewhere at the issuer's lock", () => {
    const { cloud } = setup();
    const issuer = h.hub.enrolIssuer(h.owner, "front-door");
    const dropAfter = 40_000_000;
    h.hub.revokeGuestCode(h.owner, "front-door", {
      issuerId: issuer.issuerId,
      epoch: issuer.epoch,
      codeId: "00000000000000a1",
      dropAfter,
    });
    const kinds = h.hub.store.ops.all().map((o) => decodeHeldOp(c, o.cose).kind);
    expect(kinds).toContain("guestcode.revoke");
    const r = h.hub.applyOps(
      null,
      [
        sign(cloud, h.clock.now() + 5, cloudNode, {
          kind: "guestcode.revoke",
          target: "00000000000000b2",
          payload: { issuerId: issuer.issuerId, epoch: issuer.epoch, dropAfter },
        }),
      ],
      true,
    );
    expect(r.refused).toEqual([]);
    expect(
      h.hub.lock("front-door").guestCodeState(issuer.issuerId, issuer.epoch, "00000000000000b2")?.revoked,
    ).toBe(true);
  });

  it("survives a restart: the log reloads and keeps stamping after what it held", () => {
    setup();
    h.hub.addUser(h.owner, { name: "Eve" });
    const before = h.hub.replica.state()!;
    h.restart();
    expect(toHex(encodeReplicaState(h.hub.replica.state()!))).toBe(toHex(encodeReplicaState(before)));
    h.hub.addUser(h.owner, { name: "Fay" });
    expect(h.hub.replica.state()!.users.size).toBe(before.users.size + 1);
  });
});
