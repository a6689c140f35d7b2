/**
 * Phone keys at the hub and its locks, end to end in one process (docs/protocol/digital-keys.md, link.md):
 * the owner's root and hub link, keys issued and revoked, the handshake over the hub's link bridge into
 * decide() and the audit log, revocation lists and time tickets carried by phones, lease keys.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AuditKind } from "../../src/core/audit/chain.ts";
import { toHex } from "../../src/core/crypto.ts";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import { NumericDate } from "../../src/core/envelope/cwt.ts";
import { ALL_KEY_RIGHTS, issueKey, KeyRight } from "../../src/core/keys/digital-key.ts";
import { signTimeTicket } from "../../src/core/keys/tickets.ts";
import type { Carry, ResultBody } from "../../src/core/link/messages.ts";
import { encodeSelect, IntentKind, LinkAction } from "../../src/core/link/messages.ts";
import { EpochMs, type Milliseconds, MonotonicMs } from "../../src/core/units.ts";
import { PhoneGate } from "../../src/device/phone-gate.ts";
import { memoryTransportPair } from "../../src/link/memory-transport.ts";
import { MessageLink } from "../../src/link/message-link.ts";
import { phoneUnlock } from "../../src/link/unlock.ts";
import type { StoredRevocationList } from "../../src/store/sqlite/phone-key-store.ts";
import { HUB_LISTS } from "../../src/store/sqlite/phone-key-store.ts";
import { Wallet } from "../../src/wallet/wallet.ts";
import { unverifiedKey } from "../../src/wallet/wallet-state.ts";
import { type Harness, makeHub } from "../support/hub-harness.ts";
import { c, ed, type Party, p256 } from "../support/link-fixtures.ts";

const DAY = 86_400_000;
let h: Harness;
afterEach(() => h?.cleanup());

/** Set up a hub whose owner registered a root key (Ed25519) and the hub link. */
function setup(): { root: Party } {
  h = makeHub();
  const root = ed();
  const nowS = Math.floor(h.clock.now() / 1000);
  const hubLink = issueKey(c, root, {
    serial: c.randomBytes(16),
    holder: h.hub.keys.signerKey,
    scope: { kind: "site", id: h.hub.deviceId },
    nbf: NumericDate(nowS - 60),
    exp: NumericDate(nowS + 3650 * 86_400),
    rights: ALL_KEY_RIGHTS,
    schedule: null,
    leaseSeconds: null,
  });
  h.hub.keys.register(h.owner, root.pk, hubLink);
  return { root };
}

/** Let real ticks run (the memory transport) and the fake clock move (the motor) until `p` settles. */
async function pump<T>(p: Promise<T>): Promise<T> {
  let done = false;
  const q = p.finally(() => {
    done = true;
  });
  q.catch(() => {}); // observed by the caller once the loop ends; not an unhandled rejection meanwhile
  for (let i = 0; i < 400 && !done; i++) {
    await new Promise((r) => setImmediate(r));
    if (i % 4 === 3) await h.clock.advance(20);
  }
  return q;
}

interface Try {
  chain: readonly Uint8Array[];
  phone: Party;
  action?: "unlock" | "lock";
  carry?: Carry | null;
  /** A gate of its own (a lock the hub does not reach); default the hub's bridge. */
  gate?: PhoneGate;
  /** One-way delay of every frame, ms of the fake monotonic clock (a relay). */
  relayMs?: number;
}

async function attempt(t: Try): Promise<ResultBody> {
  const [lockEnd, phoneEnd] = memoryTransportPair({ frameSize: 20 });
  const mono = () => MonotonicMs(h.hub.monotonic() + (t.relayMs ?? 0));
  const lockLink = new MessageLink(lockEnd, { now: mono, limits: { maxMessageBytes: 16_384 } });
  const phoneLink = new MessageLink(phoneEnd, { limits: { maxMessageBytes: 16_384 } });
  const served: Promise<unknown> = t.gate ? t.gate.serve(lockLink) : h.hub.serveLink(lockLink);
  if (!t.gate) phoneLink.send(encodeSelect("front-door"));
  const r = await pump(
    phoneUnlock(c, phoneLink, {
      chain: t.chain,
      holder: { alg: t.phone.alg, privateKey: t.phone.privateKey },
      action: t.action === "lock" ? LinkAction.Lock : LinkAction.Unlock,
      intent: { kind: IntentKind.UserAction, ageMs: 0 as Milliseconds },
      expectLockId: "front-door",
      carry: t.carry ?? null,
      maxMessageBytes: 16_384,
    }),
  );
  await pump(served);
  lockEnd.close();
  return r.result;
}

function issue(phone: Party, over: Partial<Parameters<Harness["hub"]["keys"]["issue"]>[1]> = {}) {
  return h.hub.keys.issue(h.owner, {
    holder: phone.pk,
    name: "Sam's phone",
    rights: ["unlock", "lock"],
    until: h.clock.now() + 30 * DAY,
    ...over,
  }).record;
}

const lastAccess = () =>
  h.hub.store
    .query({ limit: 50, descending: true })
    .filter((e) => e.kind === AuditKind.AccessGranted || e.kind === AuditKind.AccessDenied)
    .at(0);

const hubListCarry = (): Carry => ({
  lists: h.hub.store.phoneKeys
    .revocationLists(HUB_LISTS)
    .map((l) => ({ signerChain: l.signerChain, object: l.list })),
  status: null,
  time: null,
});

describe("phone keys through the hub", () => {
  it("a key issued to a user opens the door; the audit names the user and the serial", async () => {
    setup();
    const sam = h.hub.addUser(h.owner, { name: "Sam" });
    const phone = p256();
    const k = issue(phone, { userId: sam.id });
    expect(await attempt({ chain: k.chain, phone })).toEqual({ accepted: true });
    expect(h.hub.status("front-door").lockState).toBe("unlocked");
    const e = lastAccess()!;
    expect(e.kind).toBe(AuditKind.AccessGranted);
    expect(e.data).toMatchObject({
      source: "phone",
      userId: sam.id,
      serial: k.serial,
      credentialType: "phoneKey",
    });

    // Lock with the same key (the Lock right), and a key without it cannot.
    expect(await attempt({ chain: k.chain, phone, action: "lock" })).toEqual({ accepted: true });
    expect(h.hub.status("front-door").lockState).toBe("locked");
    const onlyUnlock = issue(phone, { rights: ["unlock"] });
    expect(await attempt({ chain: onlyUnlock.chain, phone, action: "lock" })).toEqual({
      accepted: false,
      code: "LK_ACCESS_DENIED",
    });
    expect(lastAccess()!.data).toMatchObject({ reason: "key_right_missing" });
  });

  it("decide() applies to the key's user: a disabled user is refused, a removed user's keys are revoked", async () => {
    setup();
    const sam = h.hub.addUser(h.owner, { name: "Sam" });
    const phone = ed();
    const k = issue(phone, { userId: sam.id });
    h.hub.updateUser(h.owner, sam.id, { userStatus: "occupiedDisabled" });
    expect(await attempt({ chain: k.chain, phone })).toMatchObject({
      accepted: false,
      code: "LK_ACCESS_DENIED",
    });
    expect(lastAccess()!.data).toMatchObject({ reason: "user_disabled" });
    h.hub.removeUser(h.owner, sam.id);
    expect(h.hub.keys.keys(h.owner)[0]!.revokedAt).not.toBeNull();
    expect(await attempt({ chain: k.chain, phone })).toMatchObject({
      accepted: false,
      code: "LK_LINK_REVOKED",
    });
  });

  it("keys are refused with distinct codes: expired, not yet valid, revoked, wrong lock, lease stale", async () => {
    setup();
    const phone = p256();
    const now = h.clock.now();
    const expired = issue(phone, { until: now + 60 * 60_000 });
    const later = issue(phone, { from: now + DAY, until: now + 2 * DAY });
    const revoked = issue(phone);
    h.hub.keys.revoke(h.owner, revoked.serial);
    h.hub.addLock(h.owner, { id: "garage" });
    const garage = issue(phone, { lockId: "garage" });
    const lease = issue(phone, { leaseSeconds: 7200 });
    await h.clock.advance(2 * 60 * 60_000); // the first key has expired
    const codes = {
      expired: (await attempt({ chain: expired.chain, phone })) as { code: string },
      notYetValid: (await attempt({ chain: later.chain, phone })) as { code: string },
      revoked: (await attempt({ chain: revoked.chain, phone })) as { code: string },
      wrongLock: (await attempt({ chain: garage.chain, phone })) as { code: string },
      leaseStale: (await attempt({ chain: lease.chain, phone })) as { code: string },
    };
    expect(Object.fromEntries(Object.entries(codes).map(([k, v]) => [k, v.code]))).toEqual({
      expired: "LK_LINK_KEY_EXPIRED",
      notYetValid: "LK_LINK_KEY_EXPIRED",
      revoked: "LK_LINK_REVOKED",
      wrongLock: "LK_LINK_WRONG_LOCK",
      leaseStale: "LK_LINK_LEASE_STALE",
    });
    const reasons = h.hub.store
      .query({ limit: 20, descending: true })
      .filter((e) => e.kind === AuditKind.AccessDenied)
      .slice(0, 5)
      .map((e) => e.data.reason)
      .reverse();
    expect(reasons).toEqual(["expired", "not_yet_valid", "revoked", "wrong_lock", "lease_stale"]);
    console.log(`distinct refusals: ${JSON.stringify(reasons)}`);
  });

  it("a lease key opens with a fresh status ticket from a sync, and not once the ticket is older than the lease", async () => {
    setup();
    const phone = ed();
    const k = issue(phone, { leaseSeconds: 2 * 3600 });
    const reqBytes = new TextEncoder().encode(
      JSON.stringify({
        v: 1,
        holder: { alg: phone.alg, key: Buffer.from(phone.publicKey).toString("base64url") },
        at: h.clock.now(),
        nonce: Buffer.from(c.randomBytes(16)).toString("base64url"),
        timeChallenges: [],
        events: [],
      }),
    );
    const { encodeDeterministic } = await import("../../src/core/envelope/cbor.ts");
    const sig = c.ed25519Sign(phone.privateKey, encodeDeterministic(["LK-WALLET-1 sync", reqBytes]));
    const sync = h.hub.keys.sync(reqBytes, sig, JSON.parse(new TextDecoder().decode(reqBytes)));
    expect(sync.statusTicket).not.toBeNull();
    const b = (s: string) => new Uint8Array(Buffer.from(s, "base64url"));
    const status = {
      signerChain: sync.statusTicket!.signerChain.map(b),
      object: b(sync.statusTicket!.object),
    };
    const carry: Carry = { lists: [], status, time: null };
    expect(await attempt({ chain: k.chain, phone, carry })).toEqual({ accepted: true });
    // The same signed request again: refused (single-use nonce).
    expect(() => h.hub.keys.sync(reqBytes, sig, JSON.parse(new TextDecoder().decode(reqBytes)))).toThrow(
      /LK_UNAUTHENTICATED/,
    );
    await h.clock.advance(2 * 3600_000 + 120_000);
    expect(await attempt({ chain: k.chain, phone, carry })).toMatchObject({ code: "LK_LINK_LEASE_STALE" });
  });

  it("a revocation list travels with a phone to a lock the hub does not reach", async () => {
    const { root } = setup();
    const phone = p256();
    const stolen = issue(phone);
    const good = issue(phone);
    // A second lock of the site that keeps its own lists (as a lock on its own board would).
    const lists = new Map<string, StoredRevocationList>();
    const remote = new PhoneGate(
      c,
      h.hub.lock("front-door"),
      {
        root: () => root.pk,
        appliedLists: () => [...lists.values()],
        putAppliedList: (_l, list) => lists.set(list.scope, list),
        keyUser: () => null,
      },
      { siteId: h.hub.deviceId },
    );
    h.hub.keys.revoke(h.owner, stolen.serial);
    // Before any phone brought the list, the remote lock still opens for the stolen key...
    expect(remote.status().revocationHorizon).toBeNull();
    expect(await attempt({ chain: stolen.chain, phone, gate: remote })).toEqual({ accepted: true });
    // ... until a phone (any phone: here the good one) carries the hub's list to it.
    expect(await attempt({ chain: good.chain, phone, gate: remote, carry: hubListCarry() })).toEqual({
      accepted: true,
    });
    expect(remote.status().lists).toHaveLength(1);
    expect(remote.status().revocationHorizon).toBeGreaterThanOrEqual(0);
    expect(await attempt({ chain: stolen.chain, phone, gate: remote })).toMatchObject({
      code: "LK_LINK_REVOKED",
    });
    // An older list never replaces a newer one; the same list again is a no-op.
    expect(remote.applyList(hubListCarry().lists[0]!)).toBe(false);
  });

  it("an admin's phone delegates a guest key offline: a 3-link chain opens, naming no user", async () => {
    setup();
    const wdir = mkdtempSync(join(tmpdir(), "latchkey-wallet-"));
    try {
      const admin = await Wallet.open(wdir, {
        passphrase: "admin phone passphrase",
        now: () => h.clock.now(),
      });
      const adminPk = await admin.init(CoseAlg.EdDSA);
      const adminKey = h.hub.keys.issue(h.owner, {
        holder: adminPk,
        name: "Ada's phone",
        rights: ["unlock", "lock", "issueKeys"],
        until: h.clock.now() + 30 * DAY,
      }).record;
      admin.addKey(adminKey.chain);
      const guest = p256();
      const exp = Math.floor((h.clock.now() + DAY) / 1000);
      const chain = await admin.delegate(adminKey.serial, {
        holder: guest.pk,
        lockId: "front-door",
        rights: KeyRight.Unlock,
        exp,
      });
      expect(chain).toHaveLength(3);
      expect(await attempt({ chain, phone: guest })).toEqual({ accepted: true });
      const e = lastAccess()!;
      expect(e.data).toMatchObject({ source: "phone", links: 3 });
      expect(e.data.userId).toBeUndefined();
      // Widening is refused before signing; the guest's key cannot lock (no Lock right).
      await expect(
        admin.delegate(adminKey.serial, { holder: guest.pk, rights: KeyRight.ManageUsers, exp }),
      ).rejects.toThrow(/LK_INVALID_INPUT/);
      await expect(
        admin.delegate(adminKey.serial, {
          holder: guest.pk,
          rights: KeyRight.Unlock,
          exp: exp + 60 * 86_400,
        }),
      ).rejects.toThrow(/LK_INVALID_INPUT/);
      expect(await attempt({ chain, phone: guest, action: "lock" })).toMatchObject({
        code: "LK_ACCESS_DENIED",
      });
      // The hub can revoke the delegated key alone by its serial (it never registered it)...
      const guestSerial = toHex(unverifiedKey(chain[2]!).serial);
      expect(h.hub.keys.revoke(h.owner, guestSerial)).toMatchObject({ serial: guestSerial });
      expect(await attempt({ chain, phone: guest })).toMatchObject({ code: "LK_LINK_REVOKED" });
      const again = await admin.delegate(adminKey.serial, { holder: guest.pk, rights: KeyRight.Unlock, exp });
      expect(await attempt({ chain: again, phone: guest })).toEqual({ accepted: true });
      // ... and revoking the admin's key cuts off everything delegated under it.
      h.hub.keys.revoke(h.owner, adminKey.serial);
      expect(await attempt({ chain: again, phone: guest })).toMatchObject({ code: "LK_LINK_REVOKED" });
    } finally {
      rmSync(wdir, { recursive: true, force: true });
    }
  });

  it("replacing the root key cuts off every key issued under the old one; the same root is refused", async () => {
    const { root } = setup();
    const phone = ed();
    const k = issue(phone);
    expect(await attempt({ chain: k.chain, phone })).toEqual({ accepted: true });
    const link = (r: Party) =>
      issueKey(c, r, {
        serial: c.randomBytes(16),
        holder: h.hub.keys.signerKey,
        scope: { kind: "site", id: h.hub.deviceId },
        nbf: NumericDate(Math.floor(h.clock.now() / 1000) - 60),
        exp: NumericDate(Math.floor(h.clock.now() / 1000) + 3650 * 86_400),
        rights: ALL_KEY_RIGHTS,
        schedule: null,
        leaseSeconds: null,
      });
    expect(() => h.hub.keys.register(h.owner, root.pk, link(root), true)).toThrow(/LK_CONFLICT/);
    const next = ed();
    expect(() => h.hub.keys.register(h.owner, next.pk, link(next))).toThrow(/LK_CONFLICT/);
    h.hub.keys.register(h.owner, next.pk, link(next), true);
    expect(await attempt({ chain: k.chain, phone })).toMatchObject({ code: "LK_LINK_KEY_INVALID" });
    expect(h.hub.keys.keys(h.owner)[0]!.revokedAt).not.toBeNull();
    const fresh = issue(phone);
    expect(await attempt({ chain: fresh.chain, phone })).toEqual({ accepted: true });
  });

  it("an answer relayed past the round-trip bound is refused and audited", async () => {
    setup();
    const phone = ed();
    const k = issue(phone);
    expect(await attempt({ chain: k.chain, phone, relayMs: 1600 })).toMatchObject({
      code: "LK_LINK_TOO_LATE",
    });
    expect(lastAccess()!.data).toMatchObject({ code: "LK_LINK_TOO_LATE", source: "phone" });
    expect(h.hub.status("front-door").lockState).toBe("locked");
  });

  it("a lock whose RTC was set back refuses keys until a signed time ticket answers its challenge", async () => {
    setup();
    const phone = p256();
    const k = issue(phone);
    const sim = h.hub.simulator("front-door");
    const real = h.clock.now();
    sim.setRtc(EpochMs(real - 40 * DAY));
    const r1 = await attempt({ chain: k.chain, phone });
    expect(r1).toMatchObject({ accepted: false, code: "LK_CLOCK_UNTRUSTED" });
    const challenge = (r1 as { timeChallenge?: Uint8Array }).timeChallenge!;
    expect(challenge).toHaveLength(16);
    expect(lastAccess()!.data).toMatchObject({ reason: "clock_untrusted" });

    // A ticket without the challenge only raises the floor: still refused.
    const signerChain = [h.hub.store.phoneKeys.authority()!.hubLink];
    const hubSign = (time: number, ch: Uint8Array | null) =>
      signTimeTicket(
        c,
        {
          alg: h.hub.keys.signerKey.alg,
          privateKey: readSignerSeed(),
          publicKey: h.hub.keys.signerKey.key,
        },
        {
          scope: { kind: "lock", id: "front-door" },
          time: NumericDate(Math.floor(time / 1000)),
          challenge: ch,
        },
      );
    const plain: Carry = { lists: [], status: null, time: { signerChain, object: hubSign(real, null) } };
    const r2 = await attempt({ chain: k.chain, phone, carry: plain });
    expect(r2).toMatchObject({ code: "LK_CLOCK_UNTRUSTED" });
    const challenge2 = (r2 as { timeChallenge?: Uint8Array }).timeChallenge!;
    // A ticket answering an old challenge: refused; the current one: the clock is trusted again.
    const stale: Carry = { lists: [], status: null, time: { signerChain, object: hubSign(real, challenge) } };
    expect(await attempt({ chain: k.chain, phone, carry: stale })).toMatchObject({
      code: "LK_CLOCK_UNTRUSTED",
    });
    const r3 = await attempt({ chain: k.chain, phone, carry: stale });
    const challenge3 = (r3 as { timeChallenge?: Uint8Array }).timeChallenge!;
    expect(toHex(challenge3)).not.toBe(toHex(challenge2));
    const fresh: Carry = {
      lists: [],
      status: null,
      time: { signerChain, object: hubSign(h.clock.now(), challenge3) },
    };
    expect(await attempt({ chain: k.chain, phone, carry: fresh })).toEqual({ accepted: true });
    expect(h.hub.status("front-door").clock.trusted).toBe(true);
    const set = h.hub.store
      .query({ limit: 30, descending: true })
      .find((e) => e.kind === AuditKind.ClockSet)!;
    expect(set.data).toMatchObject({ source: "timeTicket", signer: "delegate" });
  });

  it("a fractional monotonic clock (performance.now) never makes a fractional event time", async () => {
    h = makeHub({ monotonic: () => performance.now() });
    const sim = h.hub.simulator("front-door");
    h.hub.status("front-door");
    await new Promise((r) => setTimeout(r, 3));
    sim.cutRtcPower();
    expect(h.hub.status("front-door").clock.trusted).toBe(false);
    await pump(h.hub.lock("front-door").keypadEntry("123456"));
    expect(h.fatal).toEqual([]);
    for (const e of h.hub.store.query({ limit: 50 })) expect(Number.isInteger(e.at)).toBe(true);
  });

  it("without a registered root, the bridge answers LK_KEYS_NOT_SET_UP and issuing is refused", async () => {
    h = makeHub();
    const phone = ed();
    expect(() =>
      h.hub.keys.issue(h.owner, {
        holder: phone.pk,
        name: "x",
        rights: ["unlock"],
        until: h.clock.now() + DAY,
      }),
    ).toThrow(/LK_KEYS_NOT_SET_UP/);
    const fake = issueKey(c, phone, {
      serial: Uint8Array.of(1),
      holder: phone.pk,
      scope: { kind: "lock", id: "front-door" },
      nbf: NumericDate(0),
      exp: NumericDate(Math.floor(h.clock.now() / 1000) + 3600),
      rights: KeyRight.Unlock,
      schedule: null,
      leaseSeconds: null,
    });
    await expect(attempt({ chain: [fake], phone })).rejects.toThrow(/LK_KEYS_NOT_SET_UP/);
  });
});

describe("wallet sync vectors (test/vectors/wallet-sync.json)", () => {
  const v = JSON.parse(readFileSync(new URL("../vectors/wallet-sync.json", import.meta.url), "utf8")) as {
    holderSeedHex: string;
    holderPublicKeyHex: string;
    requestJson: string;
    toBeSignedHex: string;
    signatureHex: string;
    body: { request: string; signature: string };
  };
  const hex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));

  it("the signature input and signature are reproduced, and the hub accepts the request once", async () => {
    const requestBytes = new TextEncoder().encode(v.requestJson);
    const { encodeDeterministic } = await import("../../src/core/envelope/cbor.ts");
    const tbs = encodeDeterministic(["LK-WALLET-1 sync", requestBytes]);
    expect(toHex(tbs)).toBe(v.toBeSignedHex);
    expect(toHex(c.ed25519Sign(hex(v.holderSeedHex), tbs))).toBe(v.signatureHex);
    expect(Buffer.from(v.body.request, "base64url").toString("utf8")).toBe(v.requestJson);

    setup();
    const req = JSON.parse(v.requestJson) as { at: number };
    h.clock.set(req.at);
    const holder = ed(hex(v.holderSeedHex));
    issue(holder, { until: req.at + DAY });
    const { SyncRequestJson } = await import("../../src/hub/schemas.ts");
    const parsed = SyncRequestJson.parse(req);
    const r = h.hub.keys.sync(requestBytes, hex(v.signatureHex), parsed);
    expect(r).toMatchObject({ siteId: h.hub.deviceId, eventsAccepted: 1, keys: [{ revoked: false }] });
    expect(r.timeTickets).toHaveLength(1);
    // One flipped byte of the request or signature: refused.
    const bad = requestBytes.slice();
    bad[10]! ^= 1;
    expect(() => h.hub.keys.sync(bad, hex(v.signatureHex), parsed)).toThrow(/LK_UNAUTHENTICATED/);
  });
});

function readSignerSeed(): Uint8Array {
  // The test reads the hub's signer secret from its data directory, as only the hub itself would.
  return new Uint8Array(readFileSync(`${h.dir}/secrets/key-signer`));
}
