/**
 * The phone wallet (src/wallet/wallet.ts) against a real lock and a small stand-in for the hub's sync
 * endpoint: the holder key and its text form, importing keys, unlocking through the lock's phone gate
 * (carrying revocation lists and time tickets), the signed sync request and its answer, offline status,
 * and the state file.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { toHex } from "../../src/core/crypto.ts";
import { encodeDeterministic } from "../../src/core/envelope/cbor.ts";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import { NumericDate } from "../../src/core/envelope/cwt.ts";
import { LatchkeyError } from "../../src/core/errors.ts";
import { issueKey, KeyRight, type KeyScope, keyId, type PublicKey } from "../../src/core/keys/digital-key.ts";
import { signRevocationList } from "../../src/core/keys/revocation.ts";
import { signTimeTicket } from "../../src/core/keys/tickets.ts";
import { Milliseconds, MonotonicMs } from "../../src/core/units.ts";
import { PhoneGate } from "../../src/device/phone-gate.ts";
import { memoryTransportPair } from "../../src/link/memory-transport.ts";
import { MessageLink } from "../../src/link/message-link.ts";
import { nodeCrypto as c, generateP256 } from "../../src/platform/node-crypto.ts";
import type { StoredRevocationList } from "../../src/store/sqlite/phone-key-store.ts";
import type { SecureKeyStore } from "../../src/wallet/secure-key-store.ts";
import {
  keyText,
  parseKeyText,
  parsePublicKeyText,
  SYNC_PATH,
  SYNC_SIGNATURE_LABEL,
  type SyncRequest,
  type UnlockOptions,
  Wallet,
} from "../../src/wallet/wallet.ts";
import { type Harness, makeHub } from "../support/hub-harness.ts";
import { ed, type Party } from "../support/link-fixtures.ts";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 5, 9, 0); // the harness's fake clock starts here
const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64url");
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, "base64url"));
const hexToB64 = (h: string) => Buffer.from(h, "hex").toString("base64url");

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "lk-wallet-"));
  dirs.push(d);
  return d;
}
const harnesses: Harness[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0)) await f();
  for (const h of harnesses.splice(0)) h.cleanup();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The SecureKeyStore port in memory (the file adapter's scrypt costs ~100 ms per open). */
class MemoryKeyStore implements SecureKeyStore {
  readonly #keys = new Map<string, { alg: CoseAlg; priv: Uint8Array; pub: Uint8Array }>();
  async generate(alias: string, alg: CoseAlg = CoseAlg.ES256): Promise<PublicKey> {
    if (this.#keys.has(alias)) throw new LatchkeyError("LK_CONFLICT", "exists");
    let e: { alg: CoseAlg; priv: Uint8Array; pub: Uint8Array };
    if (alg === CoseAlg.EdDSA) {
      const seed = c.randomBytes(32);
      e = { alg, priv: seed, pub: c.ed25519PublicKey(seed) };
    } else {
      const k = generateP256();
      e = { alg, priv: k.privateKeyPkcs8Der, pub: k.publicKeySec1 };
    }
    this.#keys.set(alias, e);
    return { alg, key: e.pub };
  }
  async publicKey(alias: string): Promise<PublicKey | null> {
    const e = this.#keys.get(alias);
    return e ? { alg: e.alg, key: e.pub } : null;
  }
  async sign(alias: string, data: Uint8Array): Promise<Uint8Array> {
    const e = this.#keys.get(alias);
    if (!e) throw new LatchkeyError("LK_NOT_FOUND", "no key");
    return e.alg === CoseAlg.EdDSA ? c.ed25519Sign(e.priv, data) : c.p256Sign(e.priv, data);
  }
  async delete(alias: string): Promise<void> {
    this.#keys.delete(alias);
  }
  async list(): Promise<string[]> {
    return [...this.#keys.keys()].sort();
  }
}

async function newWallet(now: () => number = () => T0, alg?: CoseAlg): Promise<Wallet> {
  const w = await Wallet.open(tempDir(), { keyStore: new MemoryKeyStore(), now });
  await w.init(alg);
  return w;
}

interface IssuedKey {
  readonly chain: Uint8Array[];
  readonly serial: string;
  readonly scope: string;
  readonly rights: number;
  readonly nbf: number;
  readonly exp: number;
}

let serialCounter = 1;
/** A one-link key from the owner to `holder`. */
function issue(
  owner: Party,
  holder: PublicKey,
  over: { scope?: KeyScope; rights?: number; nbf?: number; exp?: number } = {},
): IssuedKey {
  const serial = new Uint8Array(8);
  new DataView(serial.buffer).setUint32(4, serialCounter++);
  const scope = over.scope ?? { kind: "lock", id: "front-door" };
  const body = {
    serial,
    holder,
    scope,
    nbf: NumericDate(Math.floor((over.nbf ?? T0 - DAY) / 1000)),
    exp: NumericDate(Math.floor((over.exp ?? T0 + 30 * DAY) / 1000)),
    rights: over.rights ?? KeyRight.Unlock | KeyRight.Lock,
    schedule: null,
    leaseSeconds: null,
  };
  return {
    chain: [issueKey(c, owner, body)],
    serial: toHex(serial),
    scope: `${scope.kind}:${scope.id}`,
    rights: body.rights,
    nbf: body.nbf,
    exp: body.exp,
  };
}

// ------------------------------------------------------------------ a real lock

interface Door {
  h: Harness;
  owner: Party;
  gate: PhoneGate;
  applied: Map<string, StoredRevocationList>;
}

/** The harness's hub and its simulated front door, with a phone-key gate rooted at a fresh owner key. */
function door(): Door {
  const h = makeHub();
  harnesses.push(h);
  const owner = ed();
  const applied = new Map<string, StoredRevocationList>();
  const gate = new PhoneGate(
    c,
    h.hub.lock("front-door"),
    {
      root: () => owner.pk,
      appliedLists: () => [...applied.values()],
      putAppliedList: (_lockId, list) => {
        applied.set(list.scope, list);
      },
      keyUser: () => null,
    },
    { siteId: "home" },
  );
  return { h, owner, gate, applied };
}

/** Run the fake clock in small steps until `p` settles (the motor runs on it; so do the link's arrival times). */
async function drive<T>(h: Harness, p: Promise<T>): Promise<T> {
  let done = false;
  p.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  for (let i = 0; i < 200 && !done; i++) await h.clock.advance(20);
  return p;
}

/** One exchange between the wallet and the door over an in-memory link. */
async function unlockAt(d: Door, w: Wallet, opts: Partial<UnlockOptions> = {}) {
  const [phoneEnd, lockEnd] = memoryTransportPair({ frameSize: 244 });
  const mono = () => MonotonicMs(d.h.hub.lock("front-door").monotonicNow());
  const phone = new MessageLink(phoneEnd, { now: mono });
  const lock = new MessageLink(lockEnd, { now: mono, limits: { maxMessageBytes: 16 * 1024 } });
  try {
    const [outcome, served] = await drive(
      d.h,
      Promise.all([w.unlock(phone, { lockId: "front-door", ...opts }), d.gate.serve(lock)]),
    );
    return { outcome, served };
  } finally {
    phone.close();
  }
}

// ------------------------------------------------------------------ a stand-in for the hub's sync endpoint

interface SyncCall {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly requestBytes: Uint8Array;
  readonly signature: Uint8Array;
  readonly request: SyncRequest;
}

type Answer = { status: number; body: unknown };

/** An HTTP server on 127.0.0.1 that records each sync call and answers with `answer(call)`. */
async function syncServer(answer: (call: SyncCall) => Answer): Promise<{ url: string; calls: SyncCall[] }> {
  const calls: SyncCall[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        request: string;
        signature: string;
      };
      const requestBytes = unb64(body.request);
      const call: SyncCall = {
        path: req.url ?? "",
        headers: req.headers,
        requestBytes,
        signature: unb64(body.signature),
        request: JSON.parse(Buffer.from(requestBytes).toString("utf8")) as SyncRequest,
      };
      calls.push(call);
      const a = answer(call);
      res.writeHead(a.status, { "content-type": "application/json" });
      res.end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls };
}

/** Does the call's signature verify with the holder key it names, over CBOR["LK-WALLET-1 sync", bytes]? */
function signatureVerifies(call: SyncCall): boolean {
  const tbs = encodeDeterministic([SYNC_SIGNATURE_LABEL, call.requestBytes]);
  const key = unb64(call.request.holder.key);
  return call.request.holder.alg === CoseAlg.EdDSA
    ? c.ed25519Verify(key, tbs, call.signature)
    : c.p256Verify(key, tbs, call.signature);
}

interface HubData {
  keys?: (IssuedKey & { name?: string; revoked?: boolean })[];
  lists?: Uint8Array[];
  timeTicket?: Uint8Array | null;
  timeTickets?: { lockId: string; ticket: Uint8Array }[];
}

/** A 200 answer in the contract's shape, from real signed objects (owner-signed: empty signer chains). */
function ok(call: SyncCall, d: HubData): Answer {
  const carried = (o: Uint8Array) => ({ signerChain: [], object: b64(o) });
  return {
    status: 200,
    body: {
      ok: true,
      data: {
        siteId: "home",
        serverTime: call.request.at + 1500,
        keys: (d.keys ?? []).map((k) => ({
          serial: k.serial,
          name: k.name ?? "",
          scope: k.scope,
          rights: k.rights,
          nbf: k.nbf,
          exp: k.exp,
          lease: null,
          chain: k.chain.map(b64),
          revoked: k.revoked ?? false,
        })),
        lists: (d.lists ?? []).map(carried),
        statusTicket: null,
        timeTicket: d.timeTicket ? carried(d.timeTicket) : null,
        timeTickets: (d.timeTickets ?? []).map((t) => ({ lockId: t.lockId, ticket: carried(t.ticket) })),
        eventsAccepted: call.request.events.length,
      },
    },
  };
}

const ownerIssuer = (p: Party) => ({ alg: p.alg, privateKey: p.privateKey, publicKey: p.publicKey });

// ------------------------------------------------------------------ tests

describe("the holder key", () => {
  it("init is idempotent, survives reopening, and its text form round-trips", async () => {
    const dir = tempDir();
    const w = await Wallet.open(dir, { passphrase: "correct horse battery" });
    expect(() => w.holderKeyId()).toThrow(/LK_NOT_FOUND/);
    const pk = await w.init();
    expect(pk.alg).toBe(CoseAlg.ES256);
    expect(await w.init(CoseAlg.EdDSA)).toEqual(pk);
    expect(w.holderKeyId()).toBe(toHex(keyId(c, pk)));
    const text = await w.publicKeyText();
    expect(text).toMatch(/^lkpk1\.es256\.[A-Za-z0-9_-]{87}$/);
    expect(parsePublicKeyText(text)).toEqual(pk);

    const again = await Wallet.open(dir, { passphrase: "correct horse battery" });
    expect(await again.holder()).toEqual(pk);
    expect(statSync(join(dir, "wallet.json")).mode & 0o777).toBe(0o600);

    const soft = await newWallet(undefined, CoseAlg.EdDSA);
    const softText = await soft.publicKeyText();
    expect(softText).toMatch(/^lkpk1\.eddsa\./);
    expect(parsePublicKeyText(softText)).toEqual(await soft.holder());
  });

  it("parsePublicKeyText refuses anything but a well-formed key", () => {
    const p = generateP256().publicKeySec1;
    for (const bad of [
      "",
      "lkpk1.es256.",
      `lkpk2.es256.${b64(p)}`,
      `lkpk1.rsa.${b64(p)}`,
      `lkpk1.eddsa.${b64(p)}`, // a P-256 point is not an Ed25519 key
      `lkpk1.es256.${b64(p.subarray(1))}`,
      `lkpk1.es256.${b64(p)}==`,
    ]) {
      expect(() => parsePublicKeyText(bad), bad).toThrow(/LK_INVALID_INPUT/);
    }
  });
});

describe("importing keys", () => {
  it("stores a key for this holder, by chain or text, and refuses one for another holder", async () => {
    const w = await newWallet();
    const owner = ed();
    const mine = issue(owner, await w.holder());
    const text = keyText(mine.chain);
    expect(text).toMatch(/^lkkey1\./);
    expect(parseKeyText(text)).toEqual(mine.chain);

    const stored = w.addKey(text, "Front door");
    expect(stored).toMatchObject({
      serial: mine.serial,
      name: "Front door",
      scope: "lock:front-door",
      rights: 3,
      revoked: false,
      origin: "imported",
    });
    expect(w.addKey(mine.chain)).toEqual(stored); // again: nothing changes
    expect(w.keys()).toHaveLength(1);

    const theirs = issue(owner, ed().pk);
    expect(() => w.addKey(theirs.chain)).toThrow(/LK_INVALID_INPUT.*another holder/);
    expect(() => w.addKey("lkkey1.AAAA")).toThrow(/LK_INVALID_INPUT/);
    expect(() => w.addKey([Uint8Array.of(1, 2, 3)])).toThrow(/LK_INVALID_INPUT/);
    expect(w.keys()).toHaveLength(1);
  });
});

describe("unlocking at a real lock", () => {
  it("opens the door with the best key and queues the event", async () => {
    const d = door();
    const w = await newWallet(() => d.h.clock.now());
    const holder = await w.holder();
    const site = issue(d.owner, holder, { scope: { kind: "site", id: "home" }, exp: T0 + 60 * DAY });
    const lock = issue(d.owner, holder);
    w.addKey(site.chain);
    w.addKey(lock.chain);
    expect(d.h.hub.status("front-door").lockState).toBe("locked");

    const { outcome, served } = await unlockAt(d, w);
    expect(outcome).toEqual({ accepted: true, needsTimeTicket: false, serial: lock.serial }); // lock key first
    expect(served.ok).toBe(true);
    expect(d.h.hub.status("front-door").lockState).toBe("unlocked");

    const events = w.events();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      lockId: "front-door",
      action: "unlock",
      accepted: true,
      code: null,
      serial: lock.serial,
    });
    expect(events[0]!.id).toMatch(/^[0-9a-f]{32}$/);
    expect(w.status().queuedEvents).toBe(1);
  });

  it("refuses to try without a usable key: expired, wrong lock, missing right, or revoked by the hub", async () => {
    const owner = ed();
    const w = await newWallet();
    const holder = await w.holder();
    w.addKey(issue(owner, holder, { nbf: T0 - 10 * DAY, exp: T0 - DAY }).chain); // expired
    w.addKey(issue(owner, holder, { scope: { kind: "lock", id: "back-door" } }).chain);
    w.addKey(issue(owner, holder, { rights: KeyRight.Lock }).chain); // lock only
    const [phoneEnd] = memoryTransportPair();
    const link = new MessageLink(phoneEnd);
    await expect(w.unlock(link, { lockId: "front-door" })).rejects.toMatchObject({
      code: "LK_NOT_FOUND",
      message: expect.stringContaining("no key for lock front-door"),
    });
    expect(w.events()).toHaveLength(0); // nothing reached a lock

    // The hub marks its key revoked: a revoked key is never offered, even the lock-scoped one.
    const revoked = issue(owner, holder);
    const hub = await syncServer((call) => ok(call, { keys: [{ ...revoked, revoked: true }] }));
    await w.sync(hub.url);
    expect(w.keys().find((k) => k.serial === revoked.serial)?.revoked).toBe(true);
    await expect(w.unlock(link, { lockId: "front-door" })).rejects.toMatchObject({ code: "LK_NOT_FOUND" });
    const st = w.status();
    expect(st.keys.find((k) => k.serial === revoked.serial)).toMatchObject({ revoked: true, expired: false });
    expect(st.keys.filter((k) => k.expired)).toHaveLength(1);
    link.close();
  });

  it("hands the lock the revocation list from the last sync: a revoked key is refused there", async () => {
    const d = door();
    const w = await newWallet(() => d.h.clock.now());
    const key = issue(d.owner, await w.holder(), { scope: { kind: "site", id: "home" } });
    const iat = NumericDate(Math.floor(d.h.clock.now() / 1000) - 60);
    const list = signRevocationList(c, ownerIssuer(d.owner), {
      scope: { kind: "site", id: "home" },
      version: 1,
      issuedAt: iat,
      ranges: [{ first: unb64(hexToB64(key.serial)), last: unb64(hexToB64(key.serial)) }],
    });
    const hub = await syncServer((call) => ok(call, { keys: [key], lists: [list] }));
    await w.sync(hub.url);
    expect(w.status().revocationListAge).toBe(d.h.clock.now() - iat * 1000);

    const { outcome, served } = await unlockAt(d, w);
    expect(outcome).toEqual({
      accepted: false,
      code: "LK_LINK_REVOKED",
      needsTimeTicket: false,
      serial: key.serial,
    });
    expect(served.ok).toBe(false);
    expect(d.gate.status().lists).toEqual([{ scope: "site:home", version: 1, issuedAt: iat }]);
    expect(d.applied.has("site:home")).toBe(true);
    expect(d.h.hub.status("front-door").lockState).toBe("locked");
    expect(w.events()[0]).toMatchObject({ accepted: false, code: "LK_LINK_REVOKED", serial: key.serial });
  });

  it("a lock with an untrusted clock sends a time challenge; the next sync gets it answered and the door opens", async () => {
    const d = door();
    const w = await newWallet(() => d.h.clock.now());
    const key = issue(d.owner, await w.holder());
    w.addKey(key.chain);
    d.h.hub.simulator("front-door").cutRtcPower();

    const first = await unlockAt(d, w);
    expect(first.outcome).toMatchObject({
      accepted: false,
      code: "LK_CLOCK_UNTRUSTED",
      needsTimeTicket: true,
    });
    expect(first.served.result).toMatchObject({ accepted: false, code: "LK_CLOCK_UNTRUSTED" });
    const lockChallenge = (first.served.result as { timeChallenge: Uint8Array }).timeChallenge;

    await d.h.clock.advance(5000); // a ticket is signed in whole seconds: past the lock's floor
    const hub = await syncServer((call) => {
      const answered = call.request.timeChallenges.map((t) => ({
        lockId: t.lockId,
        ticket: signTimeTicket(c, ownerIssuer(d.owner), {
          scope: { kind: "lock", id: t.lockId },
          time: NumericDate(Math.floor(d.h.clock.now() / 1000)),
          challenge: unb64(t.challenge),
        }),
      }));
      return ok(call, { keys: [key], timeTickets: answered });
    });
    const summary = await w.sync(hub.url);
    expect(hub.calls[0]!.request.timeChallenges).toEqual([
      { lockId: "front-door", challenge: b64(lockChallenge) },
    ]);
    expect(summary.timeTickets).toBe(1);

    const second = await unlockAt(d, w);
    expect(second.outcome).toEqual({ accepted: true, needsTimeTicket: false, serial: key.serial });
    expect(d.h.hub.status("front-door").lockState).toBe("unlocked");
    // The ticket was single use and the challenge is answered: the next sync sends none.
    await w.sync();
    expect(hub.calls[1]!.request.timeChallenges).toEqual([]);
  });
});

describe("syncing with the hub", () => {
  it("sends a holder-signed request, takes the hub's keys and drops the events it sent", async () => {
    const owner = ed();
    let now = T0;
    const w = await newWallet(() => now);
    const holder = await w.holder();
    const imported = issue(owner, holder, { scope: { kind: "lock", id: "garage" } });
    w.addKey(imported.chain);
    // Two failed attempts queue two events (no lock answers).
    for (let i = 0; i < 2; i++) {
      const [phoneEnd] = memoryTransportPair();
      await expect(
        w.unlock(new MessageLink(phoneEnd), { lockId: "garage", timeout: Milliseconds(20) }),
      ).rejects.toMatchObject({ code: "LK_LINK_TIMEOUT" });
    }
    expect(w.events().map((e) => e.code)).toEqual(["LK_LINK_TIMEOUT", "LK_LINK_TIMEOUT"]);
    expect(w.status()).toMatchObject({ online: false, lastSyncAt: null, queuedEvents: 2 });

    const fromHub = issue(owner, holder);
    const hub = await syncServer((call) => ok(call, { keys: [{ ...fromHub, name: "Front door" }] }));
    const summary = await w.sync(`${hub.url}/`);
    expect(summary).toEqual({
      siteId: "home",
      keys: 2,
      added: 1,
      removed: 0,
      lists: 0,
      eventsSent: 2,
      eventsAccepted: 2,
      timeTickets: 0,
      clockOffsetMs: 1500,
    });

    const call = hub.calls[0]!;
    expect(call.path).toBe(SYNC_PATH);
    expect(call.headers.authorization).toBeUndefined();
    expect(signatureVerifies(call)).toBe(true);
    expect(call.request).toMatchObject({
      v: 1,
      holder: { alg: CoseAlg.ES256, key: b64(holder.key) },
      at: T0,
    });
    expect(unb64(call.request.nonce)).toHaveLength(16);
    expect(call.request.events.map((e) => e.code)).toEqual(["LK_LINK_TIMEOUT", "LK_LINK_TIMEOUT"]);
    expect(call.request.events[0]).toMatchObject({
      lockId: "garage",
      serial: imported.serial,
      accepted: false,
    });

    expect(w.status()).toMatchObject({ online: true, lastSyncAt: T0, lastSyncError: null, queuedEvents: 0 });
    expect(w.siteId).toBe("home");
    expect(w.keys().map((k) => [k.serial, k.origin, k.name])).toEqual([
      [fromHub.serial, "hub", "Front door"],
      [imported.serial, "imported", "lock:garage"], // no name given: the scope
    ]);

    // The hub stops listing its key: it goes; the imported one stays. A day later the wallet is offline.
    const hub2 = await syncServer((c2) => ok(c2, {}));
    now = T0 + 1000;
    expect(await w.sync(hub2.url)).toMatchObject({ keys: 1, added: 0, removed: 1, eventsSent: 0 });
    expect(w.keys().map((k) => k.serial)).toEqual([imported.serial]);
    expect(w.hubUrl).toBe(hub2.url);
    expect(w.status(T0 + 2 * DAY).online).toBe(false);
  });

  it("reports an unreachable hub, a hub error and a malformed answer, and keeps the events", async () => {
    const owner = ed();
    const w = await newWallet();
    w.addKey(issue(owner, await w.holder()).chain);
    const [phoneEnd] = memoryTransportPair();
    await expect(
      w.unlock(new MessageLink(phoneEnd), { lockId: "front-door", timeout: Milliseconds(20) }),
    ).rejects.toThrow();
    expect(w.status().queuedEvents).toBe(1);

    // A port nobody listens on.
    const gone = createServer();
    await new Promise<void>((resolve) => gone.listen(0, "127.0.0.1", resolve));
    const port = (gone.address() as AddressInfo).port;
    await new Promise<void>((resolve) => gone.close(() => resolve()));
    await expect(w.sync(`http://127.0.0.1:${port}`)).rejects.toMatchObject({ code: "LK_HUB_UNREACHABLE" });
    expect(w.status()).toMatchObject({ online: false, queuedEvents: 1 });
    expect(w.status().lastSyncError).toMatch(
      /^LK_HUB_UNREACHABLE: cannot reach the hub at http:\/\/127\.0\.0\.1/,
    );

    let answer: Answer = {
      status: 401,
      body: { ok: false, error: { code: "LK_UNAUTHENTICATED", message: "bad signature" } },
    };
    const hub = await syncServer(() => answer);
    await expect(w.sync(hub.url)).rejects.toMatchObject({ code: "LK_UNAUTHENTICATED" });
    answer = { status: 500, body: { ok: false, error: { code: "LK_SOMETHING_NEW", message: "?" } } };
    await expect(w.sync(hub.url)).rejects.toMatchObject({ code: "LK_INTERNAL" });
    answer = { status: 200, body: { ok: true, data: { siteId: "home" } } };
    await expect(w.sync(hub.url)).rejects.toThrow("LK_INVALID_INPUT: the hub's sync answer is malformed");
    // A key for another holder in the answer is malformed too.
    answer = ok(hub.calls[0]!, { keys: [issue(owner, ed().pk)] });
    await expect(w.sync(hub.url)).rejects.toMatchObject({ code: "LK_INVALID_INPUT" });
    expect(w.status()).toMatchObject({ queuedEvents: 1, lastSyncAt: null });
    expect(w.status().lastSyncError).toMatch(/^LK_INVALID_INPUT/);
    await expect(w.sync("ftp://hub")).rejects.toMatchObject({ code: "LK_INVALID_INPUT" });
  });
});

describe("the state file", () => {
  it("is 0600 and a damaged one is refused with LK_INVALID_INPUT", async () => {
    const dir = tempDir();
    const store = new MemoryKeyStore();
    const w = await Wallet.open(dir, { keyStore: store, now: () => T0 });
    await w.init();
    const path = join(dir, "wallet.json");
    expect(statSync(path).mode & 0o777).toBe(0o600);

    writeFileSync(path, "{ not json");
    await expect(Wallet.open(dir, { keyStore: store })).rejects.toMatchObject({ code: "LK_INVALID_INPUT" });
    writeFileSync(path, JSON.stringify({ v: 2, keys: [] }));
    await expect(Wallet.open(dir, { keyStore: store })).rejects.toThrow(/LK_INVALID_INPUT: .*damaged/);
    await expect(Wallet.open(tempDir(), {})).rejects.toMatchObject({ code: "LK_INVALID_INPUT" }); // no key store
  });
});
