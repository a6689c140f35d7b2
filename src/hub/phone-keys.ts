/**
 * The hub's side of phone keys (docs/protocol/digital-keys.md, docs/protocol/wallet-sync.md):
 *
 * - the **key authority**: the owner's root key (registered when the hub is claimed, or later by an owner)
 *   and the link the owner signed for the hub's signing key (`secrets/key-signer`), which lets the hub
 *   issue keys, sign revocation lists and tickets as a delegate;
 * - **issuing** keys to a phone's holder key (admins; rights above unlock/lock only by owners), each
 *   registered with the user it is for, and **revoking** them: a new signed revocation list, pushed to the
 *   hub's own locks at once and handed to every wallet that syncs, which carries it to locks it meets;
 * - **wallet sync**: a request signed by the phone's holder key gets the holder's keys, the latest lists,
 *   a status ticket (lease keys), a time ticket and tickets answering locks' time challenges, and uploads
 *   the events the wallet queued offline.
 */
import type { JsonValue } from "../core/audit/canonical.ts";
import type { Clock } from "../core/clock.ts";
import { type CryptoPort, toHex } from "../core/crypto.ts";
import { encodeDeterministic } from "../core/envelope/cbor.ts";
import { CoseAlg, verifySign1 } from "../core/envelope/cose-sign1.ts";
import type { NumericDate } from "../core/envelope/cwt.ts";
import { decodeClaims } from "../core/envelope/cwt.ts";
import { LatchkeyError } from "../core/errors.ts";
import { type Issuer, scopeToText } from "../core/keys/authority.ts";
import {
  ALL_KEY_RIGHTS,
  assertUsablePublicKey,
  type DigitalKey,
  issueKey,
  KeyRight,
  type KeyScope,
  type KeyWindow,
  keyId,
  MAX_KEY_WINDOWS,
  type PublicKey,
  verifyKeyChain,
} from "../core/keys/digital-key.ts";
import {
  mergeRanges,
  rangesFromSerials,
  revocationListFromClaims,
  signRevocationList,
} from "../core/keys/revocation.ts";
import { signStatusTicket, signTimeTicket } from "../core/keys/tickets.ts";
import { Role, type User, UserStatus } from "../core/model.ts";
import type { EpochMs, Seconds } from "../core/units.ts";
import type { PhoneGate } from "../device/phone-gate.ts";
import {
  HUB_LISTS,
  type KeyAuthorityRecord,
  type PhoneKeyRecord,
  type PhoneKeyTables,
  type StoredRevocationList,
} from "../store/sqlite/phone-key-store.ts";
import type { LocalChange } from "./replica.ts";

/** The role a caller has, as the hub resolved it. */
interface Actor {
  readonly userId: string;
  readonly role: Role;
}

/** What this module needs from the hub. */
export interface PhoneKeyHost {
  readonly crypto: CryptoPort;
  readonly clock: Clock;
  readonly tables: PhoneKeyTables;
  /** The site id (the hub's device id). */
  readonly siteId: string;
  /** Seed of the hub's Ed25519 signing key. */
  readonly signerSeed: Uint8Array;
  lockIds(): string[];
  user(id: string): User;
  requireRole(actor: Actor, min: Role): void;
  /** Audit an admin change and apply it in one durable transaction. */
  adminCommit(
    actor: Actor | null,
    data: Record<string, JsonValue>,
    apply: () => void,
    lockId?: string | null,
    changes?: () => LocalChange[],
  ): void;
  gates(): PhoneGate[];
}

/** A key as the API shows it (the links are the key itself: handing them to the phone is the point). */
export interface PhoneKeyView {
  readonly serial: string;
  readonly name: string;
  readonly userId: string | null;
  readonly holderKeyId: string;
  readonly scope: string;
  readonly rights: string[];
  readonly nbf: number;
  readonly exp: number;
  readonly lease: number | null;
  readonly issuedBy: string;
  readonly issuedAt: number;
  readonly revokedAt: number | null;
}

/** What `issue` takes. Times are ms since the epoch. */
export interface IssueKeyRequest {
  readonly holder: PublicKey;
  readonly name: string;
  readonly userId?: string | undefined;
  /** A lock id, or undefined for the whole site. */
  readonly lockId?: string | undefined;
  readonly rights: readonly RightName[];
  readonly from?: number | undefined;
  readonly until: number;
  /** Lease: the key needs a status ticket no older than this (seconds). */
  readonly leaseSeconds?: number | undefined;
  readonly schedule?: readonly KeyWindow[] | undefined;
}

export type RightName = "unlock" | "lock" | "manageUsers" | "issueKeys";
const RIGHT_BITS: Record<RightName, number> = {
  unlock: KeyRight.Unlock,
  lock: KeyRight.Lock,
  manageUsers: KeyRight.ManageUsers,
  issueKeys: KeyRight.IssueKeys,
};

/** The names of the KeyRight bits set in `bits` (digital-keys.md § "Key"), in bit order. */
export function rightNames(bits: number): RightName[] {
  return (Object.keys(RIGHT_BITS) as RightName[]).filter((n) => (bits & RIGHT_BITS[n]) !== 0);
}

/** A carried object in the API's JSON form (base64url). */
export interface CarriedJson {
  readonly signerChain: string[];
  readonly object: string;
}

/** The signed part of a wallet's sync request (docs/protocol/wallet-sync.md). */
export interface SyncRequest {
  readonly v: 1;
  readonly holder: { readonly alg: number; readonly key: string };
  readonly at: number;
  readonly nonce: string;
  readonly timeChallenges: readonly { readonly lockId: string; readonly challenge: string }[];
  readonly site?: string | undefined;
  readonly events: readonly {
    readonly id: string;
    readonly at: number;
    readonly lockId: string;
    readonly action: "unlock" | "lock";
    readonly accepted: boolean;
    readonly code: string | null;
    readonly serial: string | null;
  }[];
}

export interface SyncResponse {
  readonly siteId: string;
  readonly serverTime: number;
  readonly keys: {
    serial: string;
    name: string;
    scope: string;
    rights: number;
    nbf: number;
    exp: number;
    lease: number | null;
    chain: string[];
    revoked: boolean;
  }[];
  readonly lists: CarriedJson[];
  readonly statusTicket: CarriedJson | null;
  readonly timeTicket: CarriedJson | null;
  readonly timeTickets: { lockId: string; ticket: CarriedJson }[];
  readonly eventsAccepted: number;
}

/** The label the holder signs a sync request under. */
export const SYNC_LABEL = "LK-WALLET-1 sync";
/** A sync request's `at` may differ from the hub's clock by this much. */
export const SYNC_WINDOW_MS = 5 * 60_000;
/** Keys a hub issues are valid for at most this long (the hub link's own validity bounds it too). */
export const MAX_KEY_VALIDITY_S = 5 * 366 * 86_400;

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64url");
/** base64url (RFC 4648 § 5) to bytes; the API's schemas have checked the alphabet. */
export const fromB64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "base64url"));

function carried(signerChain: readonly Uint8Array[], object: Uint8Array): CarriedJson {
  return { signerChain: signerChain.map(b64), object: b64(object) };
}

/** The text of the serial counter's next value in meta. */
const NEXT_SERIAL = "keys.next_serial";

export class HubKeys {
  readonly #h: PhoneKeyHost;
  readonly #issuer: Issuer;
  /** Sync nonces seen inside the window (replay of a captured request), with their expiry. */
  readonly #seenNonces = new Map<string, number>();

  constructor(host: PhoneKeyHost) {
    this.#h = host;
    this.#issuer = {
      alg: CoseAlg.EdDSA,
      privateKey: host.signerSeed,
      publicKey: host.crypto.ed25519PublicKey(host.signerSeed),
    };
  }

  /** The hub's signing key: the holder the owner's hub link must name. */
  get signerKey(): PublicKey {
    return { alg: this.#issuer.alg, key: this.#issuer.publicKey };
  }

  get #site(): KeyScope {
    return { kind: "site", id: this.#h.siteId };
  }

  #nowS(): number {
    return Math.floor(this.#h.clock.now() / 1000);
  }

  authority(): KeyAuthorityRecord | null {
    return this.#h.tables.authority();
  }

  #requireAuthority(): KeyAuthorityRecord {
    const a = this.authority();
    if (a === null) {
      throw new LatchkeyError(
        "LK_KEYS_NOT_SET_UP",
        "no owner root key is registered: run `latchkey key setup` as the owner",
      );
    }
    return a;
  }

  /** The decoded hub link (verified against the root now). */
  #hubLink(a: KeyAuthorityRecord): DigitalKey {
    const r = verifyKeyChain(this.#h.crypto, a.root, [a.hubLink], {
      lockId: "-",
      siteId: this.#h.siteId,
      now: this.#h.clock.now(),
      skew: 60 as Seconds,
    });
    if (!r.ok) {
      throw new LatchkeyError(
        "LK_KEYS_NOT_SET_UP",
        `the owner's link for this hub is refused (${r.reason}): register the root again`,
      );
    }
    return r.key;
  }

  /**
   * Check a root key and the link it signed for this hub: the link verifies under the root, names the
   * hub's signing key as holder, covers the whole site with every right and has no lease.
   * @throws LatchkeyError LK_INVALID_INPUT
   */
  checkAuthority(root: PublicKey, hubLink: Uint8Array): void {
    try {
      assertUsablePublicKey(root);
    } catch {
      throw new LatchkeyError("LK_INVALID_INPUT", "the root key is not a valid ES256 or EdDSA public key");
    }
    const r = verifyKeyChain(this.#h.crypto, root, [hubLink], {
      lockId: "-",
      siteId: this.#h.siteId,
      now: this.#h.clock.now(),
      skew: 60 as Seconds,
    });
    if (!r.ok) throw new LatchkeyError("LK_INVALID_INPUT", `the hub link is refused: ${r.reason}`);
    const k = r.key;
    const holderOk =
      k.holder.alg === this.#issuer.alg &&
      k.holder.key.length === this.#issuer.publicKey.length &&
      k.holder.key.every((b, i) => b === this.#issuer.publicKey[i]);
    if (!holderOk)
      throw new LatchkeyError("LK_INVALID_INPUT", "the hub link names another key than this hub's");
    if (k.scope.kind !== "site" || k.scope.id !== this.#h.siteId)
      throw new LatchkeyError("LK_INVALID_INPUT", `the hub link must be for site:${this.#h.siteId}`);
    if (k.rights !== ALL_KEY_RIGHTS || k.leaseSeconds !== null || k.schedule !== null)
      throw new LatchkeyError("LK_INVALID_INPUT", "the hub link needs every right, no lease and no schedule");
  }

  /**
   * Register the owner's root key and the hub link (in the claim's transaction, or later by an owner).
   * Replacing a root (`replace`) invalidates every key issued under the old one: they are marked revoked,
   * and the locks drop the old lists. Throws LK_CONFLICT when a root exists and `replace` is not set,
   * or when the replacement is the registered root itself; LK_INVALID_INPUT for a bad root or hub link;
   * LK_FORBIDDEN for anyone but an owner.
   */
  register(actor: Actor, root: PublicKey, hubLink: Uint8Array, replace = false, inClaim = false): void {
    if (!inClaim) this.#h.requireRole(actor, Role.Owner);
    this.checkAuthority(root, hubLink);
    const existing = this.authority();
    if (existing !== null && !replace) {
      throw new LatchkeyError(
        "LK_CONFLICT",
        "a root key is registered already; replace it explicitly (CLI: latchkey key setup --replace)",
      );
    }
    if (existing !== null && existing.root.alg === root.alg && toHex(existing.root.key) === toHex(root.key)) {
      // Re-registering the same root would un-revoke nothing and clear the locks' lists: refuse.
      throw new LatchkeyError(
        "LK_CONFLICT",
        "that is the registered root key: a replacement must be a new key",
      );
    }
    const rootKeyId = toHex(keyId(this.#h.crypto, root));
    const apply = () => {
      if (existing !== null) {
        this.#h.tables.markRevoked(
          this.#h.tables.keys().map((k) => k.serial),
          this.#h.clock.now(),
        );
        this.#h.tables.clearRevocationLists();
      }
      this.#h.tables.setAuthority({
        root,
        hubLink,
        registeredAt: this.#h.clock.now(),
        registeredBy: actor.userId,
      });
    };
    if (inClaim) apply();
    else this.#h.adminCommit(actor, { action: "keys.root", rootKeyId, replaced: existing !== null }, apply);
    for (const g of this.#h.gates()) g.reload();
  }

  #nextSerial(): Uint8Array {
    // 8-byte big-endian counter: consecutive serials merge into ranges in revocation lists.
    const raw = this.#h.tables.nextCounter(NEXT_SERIAL);
    const out = new Uint8Array(8);
    let v = BigInt(raw);
    for (let i = 7; i >= 0; i--) {
      out[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    return out;
  }

  /**
   * Issue a key to a phone's holder key, signed by the hub under the owner's hub link, and register it.
   * Admins issue unlock/lock keys; only owners grant manageUsers or issueKeys. A key for a user needs that
   * user to exist (owners' and admins' keys only by an owner).
   * @throws LatchkeyError LK_KEYS_NOT_SET_UP / LK_FORBIDDEN / LK_INVALID_INPUT / LK_NOT_FOUND
   */
  issue(actor: Actor, req: IssueKeyRequest): { record: PhoneKeyRecord; view: PhoneKeyView } {
    this.#h.requireRole(actor, Role.Admin);
    const a = this.#requireAuthority();
    const hubLink = this.#hubLink(a);
    try {
      assertUsablePublicKey(req.holder);
    } catch {
      throw new LatchkeyError("LK_INVALID_INPUT", "the holder key is not a valid ES256 or EdDSA public key");
    }
    let rights = 0;
    for (const r of req.rights) rights |= RIGHT_BITS[r];
    if (rights === 0) throw new LatchkeyError("LK_INVALID_INPUT", "a key needs at least one right");
    if ((rights & (KeyRight.ManageUsers | KeyRight.IssueKeys)) !== 0 && actor.role !== Role.Owner) {
      throw new LatchkeyError("LK_FORBIDDEN", "only an owner grants manageUsers or issueKeys");
    }
    if (req.userId !== undefined) {
      const u = this.#h.user(req.userId);
      if (actor.role !== Role.Owner && (u.role === Role.Owner || u.role === Role.Admin)) {
        throw new LatchkeyError("LK_FORBIDDEN", "only an owner issues keys to owners and admins");
      }
    }
    let scope: KeyScope = this.#site;
    if (req.lockId !== undefined) {
      if (!this.#h.lockIds().includes(req.lockId))
        throw new LatchkeyError("LK_NOT_FOUND", `no lock ${req.lockId}`);
      scope = { kind: "lock", id: req.lockId };
    }
    const nowS = this.#nowS();
    const nbf = Math.floor((req.from ?? this.#h.clock.now()) / 1000);
    const exp = Math.floor(req.until / 1000);
    if (!Number.isSafeInteger(nbf) || !Number.isSafeInteger(exp) || exp <= nbf || exp <= nowS) {
      throw new LatchkeyError("LK_INVALID_INPUT", "the key must end after it starts, and in the future");
    }
    if (exp - nbf > MAX_KEY_VALIDITY_S) {
      throw new LatchkeyError("LK_INVALID_INPUT", "a key is valid for at most 5 years");
    }
    if (nbf < hubLink.nbf || exp > hubLink.exp) {
      throw new LatchkeyError(
        "LK_INVALID_INPUT",
        `the hub may issue keys only inside its own link's validity (until ${new Date(hubLink.exp * 1000).toISOString()})`,
      );
    }
    const lease = req.leaseSeconds ?? null;
    if (lease !== null && (!Number.isInteger(lease) || lease < 60 || lease > 366 * 86_400)) {
      throw new LatchkeyError("LK_INVALID_INPUT", "a lease is 60 s to 366 days");
    }
    const schedule = req.schedule && req.schedule.length > 0 ? req.schedule : null;
    if (schedule !== null && schedule.length > MAX_KEY_WINDOWS) {
      throw new LatchkeyError("LK_INVALID_INPUT", `at most ${MAX_KEY_WINDOWS} windows`);
    }
    const name = req.name.trim();
    if (name.length < 1 || name.length > 100 || /[\p{Cc}\p{Cf}]/u.test(name)) {
      throw new LatchkeyError("LK_INVALID_INPUT", "a key name is 1-100 printable characters");
    }
    let record: PhoneKeyRecord | null = null;
    // Drawn first so the audit event names it (a failed commit only skips a number).
    const serial = this.#nextSerial();
    const holderKeyId = toHex(keyId(this.#h.crypto, req.holder));
    const audit: Record<string, JsonValue> = {
      action: "keys.issue",
      serial: toHex(serial),
      name,
      scope: scopeToText(scope),
      rights: rightNames(rights).join(","),
      from: new Date(nbf * 1000).toISOString(),
      until: new Date(exp * 1000).toISOString(),
      holderKeyId,
    };
    if (req.userId !== undefined) audit.userId = req.userId;
    if (lease !== null) audit.leaseSeconds = lease;
    this.#h.adminCommit(
      actor,
      audit,
      () => {
        const leaf = issueKey(this.#h.crypto, this.#issuer, {
          serial,
          holder: req.holder,
          scope,
          nbf: nbf as NumericDate,
          exp: exp as NumericDate,
          rights,
          schedule,
          leaseSeconds: lease,
        });
        record = {
          serial: toHex(serial),
          userId: req.userId ?? null,
          name,
          holderKeyId,
          scope: scopeToText(scope),
          rights,
          nbf,
          exp,
          leaseSeconds: lease,
          chain: [a.hubLink, leaf],
          issuedBy: actor.userId,
          issuedAt: this.#h.clock.now(),
          revokedAt: null,
        };
        this.#h.tables.insertKey(record);
      },
      null,
      // The same key as an operation (docs/protocol/operations.md `key.issue`): the cloud lists it.
      () => [
        {
          kind: "key.issue",
          target: toHex(serial),
          payload: { holder: holderKeyId, rights, nbf, exp },
        } as LocalChange,
      ],
    );
    const r = record as unknown as PhoneKeyRecord;
    return { record: r, view: view(r) };
  }

  keys(actor: Actor): PhoneKeyView[] {
    this.#h.requireRole(actor, Role.Admin);
    return this.#h.tables.keys().map(view);
  }

  /**
   * Revoke a key: mark it, sign a revocation list of everything revoked (a superset of the last one),
   * apply it at the hub's locks now; wallets carry it to other locks. Idempotent for a revoked key.
   * @throws LatchkeyError LK_NOT_FOUND / LK_FORBIDDEN / LK_KEYS_NOT_SET_UP
   */
  revoke(actor: Actor, serial: string): { serial: string; listVersion: number } {
    this.#h.requireRole(actor, Role.Admin);
    const k = this.#h.tables.key(serial);
    if (k === null) {
      // A key the hub did not issue (delegated offline by a phone): its serial goes on the list all the same.
      if (!/^(?:[0-9a-f]{2}){1,64}$/.test(serial))
        throw new LatchkeyError("LK_INVALID_INPUT", "a serial is 1-64 bytes of hex");
      return this.revokeSerials(actor, [], "keys.revoke", [serial]);
    }
    if (k.revokedAt !== null) {
      const current = this.#h.tables
        .revocationLists(HUB_LISTS)
        .find((l) => l.scope === scopeToText(this.#site));
      return { serial, listVersion: current?.version ?? 0 };
    }
    if (k.userId !== null && actor.role !== Role.Owner) {
      const u = this.#h.user(k.userId);
      if (u.role === Role.Owner || u.role === Role.Admin)
        throw new LatchkeyError("LK_FORBIDDEN", "only an owner revokes owners' and admins' keys");
    }
    return this.revokeSerials(actor, [serial], "keys.revoke");
  }

  /** Revoke every key of a user (when the user is removed or suspended for good). */
  revokeUserKeys(actor: Actor | null, userId: string): void {
    const serials = this.#h.tables
      .keys()
      .filter((k) => k.userId === userId && k.revokedAt === null)
      .map((k) => k.serial);
    if (serials.length > 0 && this.authority() !== null)
      this.revokeSerials(actor, serials, "keys.revoke_user");
  }

  revokeSerials(
    actor: Actor | null,
    serials: readonly string[],
    action: string,
    unregistered: readonly string[] = [],
    record = true,
  ): { serial: string; listVersion: number } {
    const a = this.#requireAuthority();
    this.#hubLink(a);
    const current = this.#h.tables
      .revocationLists(HUB_LISTS)
      .find((l) => l.scope === scopeToText(this.#site));
    let stored: StoredRevocationList | null = null;
    const data: Record<string, JsonValue> = { action, serials: [...serials, ...unregistered] };
    if (unregistered.length > 0) data.unregistered = true;
    this.#h.adminCommit(
      actor,
      data,
      () => {
        this.#h.tables.markRevoked(serials, this.#h.clock.now());
        const revoked = this.#h.tables
          .keys()
          .filter((k) => k.revokedAt !== null)
          .map((k) => hexBytes(k.serial));
        for (const u of unregistered) revoked.push(hexBytes(u));
        const previous = current ? decodeListRanges(this.#h.crypto, this.#issuer, current) : [];
        const ranges = mergeRanges(previous, rangesFromSerials(revoked));
        const nowS = this.#nowS();
        const version = Math.max(nowS, (current?.version ?? 0) + 1);
        const issuedAt = Math.max(nowS, version) as NumericDate;
        const list = signRevocationList(this.#h.crypto, this.#issuer, {
          scope: this.#site,
          version,
          issuedAt,
          ranges,
        });
        stored = { scope: scopeToText(this.#site), version, issuedAt, list, signerChain: [a.hubLink] };
        this.#h.tables.putRevocationList(HUB_LISTS, stored);
      },
      null,
      // Revocation as operations: it wins everywhere, and the cloud shows it.
      // (Not for a revocation that arrived as an operation: it is in the log already.)
      () =>
        record
          ? [...serials, ...unregistered].map(
              (serial) => ({ kind: "key.revoke", target: serial.toLowerCase(), payload: {} }) as LocalChange,
            )
          : [],
    );
    const s = stored as unknown as StoredRevocationList;
    for (const g of this.#h.gates()) {
      try {
        g.applyList({ signerChain: s.signerChain, object: s.list });
      } catch {
        // A lock whose clock is far behind refuses a list "from the future": a phone brings it later.
      }
    }
    return { serial: serials[0] ?? unregistered[0] ?? "", listVersion: s.version };
  }

  /** The events wallets synced, newest first. */
  walletEvents(actor: Actor, limit = 200): ReturnType<PhoneKeyTables["walletEvents"]> {
    this.#h.requireRole(actor, Role.Admin);
    return this.#h.tables.walletEvents(limit);
  }

  /**
   * A wallet's sync (docs/protocol/wallet-sync.md): verify the holder's signature over the request bytes,
   * its time (± 5 min) and nonce (once), then answer with the holder's keys, lists and tickets, and store
   * the events it uploaded. A holder the hub issued no key to is refused (LK_FORBIDDEN).
   * @throws LatchkeyError LK_INVALID_INPUT / LK_UNAUTHENTICATED / LK_FORBIDDEN / LK_KEYS_NOT_SET_UP
   */
  sync(requestBytes: Uint8Array, signature: Uint8Array, req: SyncRequest): SyncResponse {
    const a = this.#requireAuthority();
    const holder: PublicKey = { alg: req.holder.alg as CoseAlg, key: fromB64(req.holder.key) };
    try {
      assertUsablePublicKey(holder);
    } catch {
      throw new LatchkeyError("LK_INVALID_INPUT", "the holder key is not a valid ES256 or EdDSA public key");
    }
    const tbs = encodeDeterministic([SYNC_LABEL, requestBytes]);
    const c = this.#h.crypto;
    const ok =
      signature.length === 64 &&
      (holder.alg === CoseAlg.EdDSA
        ? c.ed25519Verify(holder.key, tbs, signature)
        : c.p256Verify(holder.key, tbs, signature));
    if (!ok) throw new LatchkeyError("LK_UNAUTHENTICATED", "the sync request's signature does not verify");
    const now = this.#h.clock.now();
    if (Math.abs(now - req.at) > SYNC_WINDOW_MS) {
      throw new LatchkeyError(
        "LK_UNAUTHENTICATED",
        `the sync request is more than 5 minutes from the hub's time (${new Date(now).toISOString()}): check the phone's clock`,
      );
    }
    for (const [n, exp] of this.#seenNonces) if (exp < now) this.#seenNonces.delete(n);
    if (this.#seenNonces.has(req.nonce))
      throw new LatchkeyError("LK_UNAUTHENTICATED", "a replayed sync request");
    if (this.#seenNonces.size >= 100_000)
      throw new LatchkeyError("LK_LOCK_BUSY", "too many sync requests; retry later");
    if (req.site !== undefined && req.site !== this.#h.siteId) {
      throw new LatchkeyError(
        "LK_CONFLICT",
        `the wallet belongs to site ${req.site}; this hub is site ${this.#h.siteId}`,
      );
    }
    const holderKeyId = toHex(keyId(c, holder));
    const keys = this.#h.tables.keysOfHolder(holderKeyId);
    if (keys.length === 0) throw new LatchkeyError("LK_FORBIDDEN", "no key is issued to this holder");
    this.#seenNonces.set(req.nonce, now + 2 * SYNC_WINDOW_MS);

    const accepted = this.#h.tables.insertWalletEvents(
      req.events.map((e) => ({
        holderKeyId,
        eventId: e.id,
        at: e.at as EpochMs,
        lockId: e.lockId,
        action: e.action,
        accepted: e.accepted,
        code: e.code,
        serial: e.serial,
        receivedAt: now as EpochMs,
      })),
    );
    const nowS = this.#nowS();
    const signerChain = [a.hubLink];
    // A status ticket only for a holder in good standing: a live key and an enabled user.
    const live = keys.filter((k) => k.revokedAt === null && k.exp > nowS);
    const standing = live.some((k) => k.userId === null || this.#userEnabled(k.userId));
    const statusTicket =
      live.some((k) => k.leaseSeconds !== null) && standing
        ? carried(
            signerChain,
            signStatusTicket(c, this.#issuer, { scope: this.#site, holder, issuedAt: nowS as NumericDate }),
          )
        : null;
    const timeTicket = carried(
      signerChain,
      signTimeTicket(c, this.#issuer, { scope: this.#site, time: nowS as NumericDate, challenge: null }),
    );
    const lockIds = new Set(this.#h.lockIds());
    const timeTickets = req.timeChallenges
      .filter((t) => lockIds.has(t.lockId))
      .map((t) => ({
        lockId: t.lockId,
        ticket: carried(
          signerChain,
          signTimeTicket(c, this.#issuer, {
            scope: { kind: "lock", id: t.lockId },
            time: nowS as NumericDate,
            challenge: fromB64(t.challenge),
          }),
        ),
      }));
    return {
      siteId: this.#h.siteId,
      serverTime: now,
      keys: keys.map((k) => ({
        serial: k.serial,
        name: k.name,
        scope: k.scope,
        rights: k.rights,
        nbf: k.nbf,
        exp: k.exp,
        lease: k.leaseSeconds,
        chain: k.chain.map(b64),
        revoked: k.revokedAt !== null,
      })),
      lists: this.#h.tables.revocationLists(HUB_LISTS).map((l) => carried(l.signerChain, l.list)),
      statusTicket,
      timeTicket,
      timeTickets,
      eventsAccepted: accepted,
    };
  }

  #userEnabled(userId: string): boolean {
    try {
      return this.#h.user(userId).userStatus === UserStatus.OccupiedEnabled;
    } catch {
      return false;
    }
  }
}

function view(k: PhoneKeyRecord): PhoneKeyView {
  return {
    serial: k.serial,
    name: k.name,
    userId: k.userId,
    holderKeyId: k.holderKeyId,
    scope: k.scope,
    rights: rightNames(k.rights),
    nbf: k.nbf,
    exp: k.exp,
    lease: k.leaseSeconds,
    issuedBy: k.issuedBy,
    issuedAt: k.issuedAt,
    revokedAt: k.revokedAt,
  };
}

function hexBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** The ranges of a list the hub signed itself (checked with the hub's own signing key). */
function decodeListRanges(crypto: CryptoPort, issuer: Issuer, l: StoredRevocationList) {
  const { payload } = verifySign1(crypto, l.list, (_kid, alg) =>
    alg === issuer.alg ? { alg, publicKey: issuer.publicKey } : null,
  );
  return revocationListFromClaims(decodeClaims(payload)).ranges;
}
