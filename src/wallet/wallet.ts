/**
 * The phone wallet (issue 4): the SDK a phone app builds on. A {@link Wallet} keeps
 *
 * - the holder key, behind the {@link SecureKeyStore} port under the alias `holder` (ES256 by default, as
 *   phone secure hardware holds only P-256 keys; EdDSA on request). Default store: {@link FileKeyStore}
 *   at `<dir>/holder-key`, sealed with a passphrase;
 * - its keys (chains of COSE_Sign1 links, root first), the latest revocation lists, status ticket and time
 *   tickets from the hub, the time challenges locks asked it to get answered, and a queue of its own
 *   unlock events: all in `<dir>/wallet.json` (src/wallet/wallet-state.ts).
 *
 * It unlocks over any transport ({@link MessageLink}) with the link protocol (docs/protocol/link.md),
 * carrying its lists and tickets to the lock, and syncs with the hub over HTTP when online:
 * `POST {hubUrl}/api/v1/phone/sync` (see {@link Wallet.sync}).
 *
 * Text forms for handing things over out of band: a holder public key is `lkpk1.<es256|eddsa>.<b64url key>`
 * ({@link parsePublicKeyText}, which the hub's `latchkey key issue --to` uses), a key chain is
 * `lkkey1.<b64url of the CBOR array of links>` ({@link keyText}, {@link parseKeyText}).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import type { CryptoPort } from "../core/crypto.ts";
import { toHex, utf8 } from "../core/crypto.ts";
import { decodeStrict, encodeDeterministic } from "../core/envelope/cbor.ts";
import { CoseAlg } from "../core/envelope/cose-sign1.ts";
import type { CwtClaims, NumericDate } from "../core/envelope/cwt.ts";
import { type ErrorCode, ErrorCodes, isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import { scopeToText } from "../core/keys/authority.ts";
import {
  assertUsablePublicKey,
  issueKeyExternal,
  KeyRight,
  type KeyWindow,
  keyId,
  MAX_CHAIN_LINKS,
  type PublicKey,
} from "../core/keys/digital-key.ts";
import {
  type Carry,
  type Intent,
  IntentKind,
  LinkAction,
  MAX_CARRIED_LISTS,
  type ResultBody,
} from "../core/link/messages.ts";
import { Milliseconds } from "../core/units.ts";
import type { MessageLink } from "../link/message-link.ts";
import { phoneUnlock } from "../link/unlock.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";
import { FileKeyStore } from "./file-key-store.ts";
import type { SecureKeyStore } from "./secure-key-store.ts";
import {
  B64,
  CarriedText,
  carriedFromText,
  fromB64,
  Id,
  readState,
  ScopeText,
  SerialHex,
  type StoredKey,
  toB64,
  unverifiedClaims,
  unverifiedKey,
  WALLET_FILE,
  type WalletEvent,
  type WalletState,
  writeState,
} from "./wallet-state.ts";

export type { StoredKey, WalletEvent } from "./wallet-state.ts";

/** The key-store alias of the holder key. */
export const HOLDER_ALIAS = "holder";
/** The hub's sync endpoint, under the hub URL. */
export const SYNC_PATH = "/api/v1/phone/sync";
/** Domain-separation label of the sync signature: the holder signs `CBOR["LK-WALLET-1 sync", requestBytes]`. */
export const SYNC_SIGNATURE_LABEL = "LK-WALLET-1 sync";
/** Most events one sync sends (the oldest first). */
export const MAX_SYNC_EVENTS = 500;
/** Most time challenges one sync sends. */
export const MAX_SYNC_CHALLENGES = 8;
/** Most events the wallet queues; past it the oldest are dropped. */
export const MAX_QUEUED_EVENTS = 10_000;
/** The wallet counts as online when its last successful sync is at most this old. */
export const ONLINE_WINDOW_MS = 24 * 60 * 60 * 1000;
/** Largest link message of an unlock (answers carrying revocation lists are large). */
export const UNLOCK_MAX_MESSAGE_BYTES = 16 * 1024;
/** How long a sync waits for the hub by default. */
export const DEFAULT_SYNC_TIMEOUT = Milliseconds(15_000);
/** A key not yet valid by at most this much at the wallet's clock is still offered (the lock's skew). */
const NBF_SKEW_MS = 60_000;
/** Largest sync answer read. */
const MAX_SYNC_ANSWER_BYTES = 8 * 1024 * 1024;

const PK_TEXT_RE = /^lkpk1\.(es256|eddsa)\.([A-Za-z0-9_-]+)$/;
const KEY_TEXT_RE = /^lkkey1\.([A-Za-z0-9_-]+)$/;

// ------------------------------------------------------------------ text forms

/** The shareable text form of a holder public key: `lkpk1.<es256|eddsa>.<base64url raw key>`. */
export function formatPublicKeyText(pk: PublicKey): string {
  assertUsablePublicKey(pk);
  return `lkpk1.${pk.alg === CoseAlg.EdDSA ? "eddsa" : "es256"}.${toB64(pk.key)}`;
}

/**
 * Parse `lkpk1.<es256|eddsa>.<base64url key>` (a 65-byte uncompressed P-256 point, or a 32-byte Ed25519 key).
 * @throws LatchkeyError `LK_INVALID_INPUT` for anything else
 */
export function parsePublicKeyText(text: string): PublicKey {
  const m = typeof text === "string" ? PK_TEXT_RE.exec(text.trim()) : null;
  if (!m) throw new LatchkeyError("LK_INVALID_INPUT", "a public key is lkpk1.<es256|eddsa>.<base64url key>");
  const pk: PublicKey = {
    alg: m[1] === "eddsa" ? CoseAlg.EdDSA : CoseAlg.ES256,
    key: fromB64(m[2]!, "the public key"),
  };
  try {
    assertUsablePublicKey(pk);
  } catch {
    throw new LatchkeyError("LK_INVALID_INPUT", `the public key does not fit ${m[1]}`);
  }
  return pk;
}

/** The text form of a key chain (root first): `lkkey1.<base64url of the deterministic CBOR array of links>`. */
export function keyText(chain: readonly Uint8Array[]): string {
  checkChainShape(chain);
  return `lkkey1.${toB64(encodeDeterministic([...chain]))}`;
}

/** Parse the `lkkey1.` text form of a key chain. @throws LatchkeyError `LK_INVALID_INPUT` */
export function parseKeyText(text: string): Uint8Array[] {
  const m = typeof text === "string" ? KEY_TEXT_RE.exec(text.trim()) : null;
  if (!m) throw new LatchkeyError("LK_INVALID_INPUT", "a key is lkkey1.<base64url>");
  let v: unknown;
  try {
    v = decodeStrict(fromB64(m[1]!, "the key"), { maxBytes: 64 * 1024 });
  } catch {
    throw new LatchkeyError("LK_INVALID_INPUT", "the key text is not a CBOR array of links");
  }
  if (!Array.isArray(v)) throw new LatchkeyError("LK_INVALID_INPUT", "the key text is not an array of links");
  checkChainShape(v);
  return v as Uint8Array[];
}

function checkChainShape(chain: readonly unknown[]): asserts chain is readonly Uint8Array[] {
  if (
    !Array.isArray(chain) ||
    chain.length < 1 ||
    chain.length > MAX_CHAIN_LINKS ||
    !chain.every((l) => l instanceof Uint8Array && l.length > 0)
  ) {
    throw new LatchkeyError("LK_INVALID_INPUT", `a key chain is 1 to ${MAX_CHAIN_LINKS} links`);
  }
}

function sameKey(a: PublicKey, b: PublicKey): boolean {
  return a.alg === b.alg && a.key.length === b.key.length && a.key.every((x, i) => x === b.key[i]);
}

/**
 * What the wallet stores for a chain, read from the links themselves (unverified: the lock verifies).
 * The leaf's holder must be `holder`. @throws LatchkeyError `LK_INVALID_INPUT`
 */
function describeChain(
  chain: readonly Uint8Array[],
  holder: PublicKey,
  meta: { name: string; revoked: boolean; origin: StoredKey["origin"] },
): StoredKey {
  checkChainShape(chain);
  const links = chain.map((l) => unverifiedKey(l));
  const leaf = links[links.length - 1]!;
  if (!sameKey(leaf.holder, holder)) {
    throw new LatchkeyError("LK_INVALID_INPUT", "the key is issued to another holder key, not this wallet's");
  }
  const leases = links.map((k) => k.leaseSeconds).filter((s): s is number => s !== null);
  const scope = scopeToText(leaf.scope);
  return {
    serial: toHex(leaf.serial),
    name: meta.name || scope,
    scope,
    rights: leaf.rights,
    nbf: leaf.nbf,
    exp: leaf.exp,
    lease: leases.length > 0 ? Math.min(...leases) : null,
    chain: chain.map(toB64),
    revoked: meta.revoked,
    origin: meta.origin,
  };
}

// ------------------------------------------------------------------ the sync contract

/** The signed body of a sync (JSON, base64url-encoded into the request). */
export interface SyncRequest {
  readonly v: 1;
  readonly holder: { readonly alg: CoseAlg; readonly key: string };
  /** Wallet clock, ms since the epoch. */
  readonly at: number;
  /** 16 random bytes, base64url. */
  readonly nonce: string;
  readonly timeChallenges: readonly { readonly lockId: string; readonly challenge: string }[];
  readonly events: readonly WalletEvent[];
  /** The site this wallet belongs to (after its first sync): a hub of another site refuses the sync. */
  readonly site?: string;
}

const SyncKey = z.object({
  serial: SerialHex,
  name: z.string().max(200),
  scope: ScopeText,
  rights: z.number().int().min(1).max(15),
  nbf: z.number().int().min(0),
  exp: z.number().int().min(0),
  lease: z.number().int().min(0).nullable(),
  chain: z.array(B64).min(1).max(MAX_CHAIN_LINKS),
  revoked: z.boolean(),
});

const SyncAnswer = z.object({
  ok: z.literal(true),
  data: z.object({
    siteId: Id,
    serverTime: z.number().int().min(0),
    keys: z.array(SyncKey).max(1024),
    lists: z.array(CarriedText).max(64),
    statusTicket: CarriedText.nullable(),
    timeTicket: CarriedText.nullable(),
    timeTickets: z.array(z.object({ lockId: Id, ticket: CarriedText })).max(64),
    eventsAccepted: z.number().int().min(0),
  }),
});

const ErrorAnswer = z.object({
  ok: z.literal(false),
  error: z.object({ code: z.string().max(64), message: z.string() }),
});

// ------------------------------------------------------------------ the wallet

/** How to open a wallet. */
export interface WalletOptions {
  /** Passphrase of the default key store (`<dir>/holder-key`, at least 8 characters). */
  readonly passphrase?: string;
  /** Any key store (the phone's secure hardware); takes precedence over `passphrase`. */
  readonly keyStore?: SecureKeyStore;
  /** Crypto primitives. Default: node:crypto. */
  readonly crypto?: CryptoPort;
  /** The wallet's clock, ms since the epoch. Default `Date.now`. */
  readonly now?: () => number;
  /** HTTP client for {@link Wallet.sync}. Default the global `fetch`. */
  readonly fetch?: typeof fetch;
  /** How long a sync waits for the hub. Default 15 s. */
  readonly syncTimeout?: Milliseconds;
}

/** How to run one unlock. */
export interface UnlockOptions {
  /** The lock expected at the other end: the wallet refuses a challenge from any other. */
  readonly lockId: string;
  /** Default "unlock". */
  readonly action?: "unlock" | "lock";
  /**
   * How the user expressed intent, collected before connecting (docs/protocol/link.md § "Intent"). Default
   * a user action just now: `{ kind: IntentKind.UserAction, ageMs: 0 }`.
   */
  readonly intent?: Intent;
  /** How long to wait for each of the lock's messages. Default 10 s. */
  readonly timeout?: Milliseconds;
}

/** What an unlock came to. */
export interface UnlockOutcome {
  readonly accepted: boolean;
  /** The lock's refusal code, when refused. */
  readonly code?: ErrorCode;
  /** The lock's clock is not trusted: sync (it sends the lock's time challenge) and try again within 2 min. */
  readonly needsTimeTicket: boolean;
  /** The serial (hex) of the key used. */
  readonly serial: string;
}

/** One key as {@link Wallet.status} shows it. */
export interface KeyStatus {
  readonly serial: string;
  readonly name: string;
  readonly scope: string;
  readonly rights: number;
  /** NumericDate (seconds). */
  readonly exp: number;
  readonly expired: boolean;
  /**
   * For a lease key: ms until it needs a fresher status ticket than the wallet holds (0: stale now, or no
   * ticket). Null for a key without a lease.
   */
  readonly leaseStaleInMs: number | null;
  readonly revoked: boolean;
}

/** The wallet's offline status. */
export interface WalletStatus {
  /** Hex key id of the holder key; null before {@link Wallet.init}. */
  readonly holderKeyId: string | null;
  /** The last successful sync is at most 24 h old. */
  readonly online: boolean;
  /** Wallet clock, ms; null before the first successful sync. */
  readonly lastSyncAt: number | null;
  /** The error of the last failed sync ("LK_…: detail"); null after a successful one. */
  readonly lastSyncError: string | null;
  readonly queuedEvents: number;
  readonly keys: readonly KeyStatus[];
  /** ms since the newest carried revocation list was issued; null with none. */
  readonly revocationListAge: number | null;
}

/** What a successful sync changed. */
export interface SyncSummary {
  readonly siteId: string;
  /** Keys the wallet holds now (from the hub and imported). */
  readonly keys: number;
  /** Keys new to the wallet. */
  readonly added: number;
  /** Keys from the hub that it no longer lists (dropped). */
  readonly removed: number;
  readonly lists: number;
  readonly eventsSent: number;
  readonly eventsAccepted: number;
  /** Time tickets that answer a lock's challenge. */
  readonly timeTickets: number;
  /** The hub's clock minus the wallet's at the request, ms (positive: the wallet is behind). */
  readonly clockOffsetMs: number;
}

export class Wallet {
  /** The wallet's directory. */
  readonly dir: string;
  readonly #path: string;
  readonly #store: SecureKeyStore;
  readonly #crypto: CryptoPort;
  readonly #now: () => number;
  readonly #fetch: typeof fetch;
  readonly #syncTimeout: Milliseconds;
  #state: WalletState;
  #holder: PublicKey | null;

  private constructor(
    dir: string,
    store: SecureKeyStore,
    opts: WalletOptions,
    state: WalletState,
    holder: PublicKey | null,
  ) {
    this.dir = dir;
    this.#path = join(dir, WALLET_FILE);
    this.#store = store;
    this.#crypto = opts.crypto ?? nodeCrypto;
    this.#now = opts.now ?? Date.now;
    this.#fetch = opts.fetch ?? globalThis.fetch;
    this.#syncTimeout = opts.syncTimeout ?? DEFAULT_SYNC_TIMEOUT;
    this.#state = state;
    this.#holder = holder;
  }

  /**
   * Open the wallet in `dir` (created, mode 0700, if absent). The key store is `opts.keyStore`, or a
   * {@link FileKeyStore} at `<dir>/holder-key` sealed with `opts.passphrase`.
   * @throws LatchkeyError `LK_INVALID_INPUT` (no key store and no passphrase, a short passphrase, a damaged
   *   wallet.json), `LK_DATA_DIR_INVALID` (wrong passphrase or damaged key file)
   */
  static async open(dir: string, opts: WalletOptions = {}): Promise<Wallet> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    let store = opts.keyStore;
    const state = readState(join(dir, WALLET_FILE)); // a damaged state fails before the key store opens
    if (store === undefined) {
      if (opts.passphrase === undefined) {
        throw new LatchkeyError("LK_INVALID_INPUT", "a wallet needs a key store or a passphrase");
      }
      store = FileKeyStore.open(join(dir, "holder-key"), opts.passphrase);
    }
    const holder = await store.publicKey(HOLDER_ALIAS);
    return new Wallet(dir, store, opts, state, holder);
  }

  /**
   * Create the holder key if there is none (ES256 by default; EdDSA for a software key). Idempotent: with a
   * key present it returns that key, whatever `alg` says.
   * @throws LatchkeyError `LK_ENVELOPE_ALG` (another algorithm), or the key store's errors
   */
  async init(alg: CoseAlg = CoseAlg.ES256): Promise<PublicKey> {
    let pk = await this.#store.publicKey(HOLDER_ALIAS);
    if (pk === null) {
      try {
        pk = await this.#store.generate(HOLDER_ALIAS, alg);
      } catch (e) {
        // Another process created it meanwhile: use that one.
        pk = isLatchkeyError(e, "LK_CONFLICT") ? await this.#store.publicKey(HOLDER_ALIAS) : null;
        if (pk === null) throw e;
      }
    }
    this.#holder = pk;
    this.#persist();
    return pk;
  }

  /** The holder public key. @throws LatchkeyError `LK_NOT_FOUND` before {@link init} */
  async holder(): Promise<PublicKey> {
    const pk = this.#holder ?? (await this.#store.publicKey(HOLDER_ALIAS));
    if (pk === null) throw notInitialized();
    this.#holder = pk;
    return pk;
  }

  /** Hex key id of the holder key (digital-keys.md § "Key"). @throws LatchkeyError `LK_NOT_FOUND` before {@link init} */
  holderKeyId(): string {
    if (this.#holder === null) throw notInitialized();
    return toHex(keyId(this.#crypto, this.#holder));
  }

  /** The holder public key as text to hand to an issuer: `lkpk1.<es256|eddsa>.<b64url>`. @throws `LK_NOT_FOUND` */
  async publicKeyText(): Promise<string> {
    return formatPublicKeyText(await this.holder());
  }

  /**
   * Import a key handed over out of band: its chain (root first), or its `lkkey1.` text. The leaf must be
   * issued to this wallet's holder key. Importing the same chain again changes nothing; a name is kept.
   * Returns the stored key (origin "imported", unless the hub already listed it).
   * @throws LatchkeyError `LK_INVALID_INPUT` (not a key chain, another holder), `LK_NOT_FOUND` (before
   *   {@link init}), `LK_CONFLICT` (another key with the same serial)
   */
  addKey(chain: readonly Uint8Array[] | string, name = ""): StoredKey {
    if (this.#holder === null) throw notInitialized();
    const links = typeof chain === "string" ? parseKeyText(chain) : chain;
    const key = describeChain(links, this.#holder, { name, revoked: false, origin: "imported" });
    const i = this.#state.keys.findIndex((k) => k.serial === key.serial);
    if (i >= 0) {
      const existing = this.#state.keys[i]!;
      if (existing.chain.join(".") !== key.chain.join(".")) {
        throw new LatchkeyError("LK_CONFLICT", `the wallet holds another key with serial ${key.serial}`);
      }
      if (name === "" || name === existing.name) return { ...existing };
      this.#state.keys[i] = { ...existing, name };
    } else this.#state.keys.push(key);
    this.#persist();
    return { ...this.#state.keys.find((k) => k.serial === key.serial)! };
  }

  /**
   * Delegate offline (docs/protocol/digital-keys.md § "Chain rules"): sign a key for another phone's
   * holder key with this wallet's holder key, under one of its keys that has the issue-keys right. The
   * new key only narrows its parent: rights ⊆ the parent's, validity inside the parent's, scope the
   * parent's lock or (under a site key) one lock of the site, the parent's week-day windows and lease
   * kept unless narrower ones are given. Returns the new chain (root first), for `addKey` on the other
   * phone. Needs no network; the hub never learns of the key (the lock's audit names no user for it).
   * Times are NumericDate (seconds).
   * @throws LatchkeyError LK_NOT_FOUND (no such key) / LK_FORBIDDEN (no issue-keys right, revoked,
   *   expired, chain full) / LK_INVALID_INPUT (widening, bad holder key)
   */
  async delegate(
    parentSerial: string,
    req: {
      readonly holder: PublicKey;
      readonly lockId?: string;
      readonly rights: number;
      readonly nbf?: number;
      readonly exp: number;
      readonly schedule?: readonly KeyWindow[] | null;
      readonly leaseSeconds?: number | null;
    },
  ): Promise<Uint8Array[]> {
    if (this.#holder === null) throw notInitialized();
    const stored = this.#state.keys.find((k) => k.serial === parentSerial);
    if (!stored) throw new LatchkeyError("LK_NOT_FOUND", `the wallet holds no key ${parentSerial}`);
    const chain = stored.chain.map((l) => new Uint8Array(Buffer.from(l, "base64url")));
    const parent = unverifiedKey(chain[chain.length - 1]!);
    const nowS = Math.floor(this.#now() / 1000);
    if (stored.revoked || parent.exp <= nowS)
      throw new LatchkeyError("LK_FORBIDDEN", "that key is revoked or expired");
    if ((parent.rights & KeyRight.IssueKeys) === 0)
      throw new LatchkeyError("LK_FORBIDDEN", "that key has no issue-keys right");
    if (chain.length >= MAX_CHAIN_LINKS)
      throw new LatchkeyError("LK_FORBIDDEN", `a chain has at most ${MAX_CHAIN_LINKS} links`);
    try {
      assertUsablePublicKey(req.holder);
    } catch {
      throw new LatchkeyError("LK_INVALID_INPUT", "the holder key is not a valid ES256 or EdDSA public key");
    }
    const nbf = req.nbf ?? Math.max(parent.nbf, nowS - 60);
    if ((req.rights & ~parent.rights) !== 0 || req.rights === 0)
      throw new LatchkeyError("LK_INVALID_INPUT", "rights must be a non-empty subset of the parent key's");
    if (nbf < parent.nbf || req.exp > parent.exp || req.exp <= nbf)
      throw new LatchkeyError("LK_INVALID_INPUT", "the validity must lie inside the parent key's");
    let scope = parent.scope;
    if (req.lockId !== undefined) {
      if (parent.scope.kind === "lock" && parent.scope.id !== req.lockId)
        throw new LatchkeyError(
          "LK_INVALID_INPUT",
          `the parent key is for ${scopeToText(parent.scope)} only`,
        );
      scope = { kind: "lock", id: req.lockId };
    }
    const schedule = req.schedule === undefined ? parent.schedule : req.schedule;
    const leaseSeconds = req.leaseSeconds === undefined ? parent.leaseSeconds : req.leaseSeconds;
    const link = await issueKeyExternal(
      this.#crypto,
      { alg: this.#holder.alg, publicKey: this.#holder.key, sign: (d) => this.#store.sign(HOLDER_ALIAS, d) },
      {
        serial: this.#crypto.randomBytes(16),
        holder: req.holder,
        scope,
        nbf: nbf as NumericDate,
        exp: req.exp as NumericDate,
        rights: req.rights,
        schedule: schedule === null || schedule.length === 0 ? null : [...schedule],
        leaseSeconds,
      },
    );
    return [...chain, link];
  }

  /** The keys the wallet holds (copies). */
  keys(): StoredKey[] {
    return this.#state.keys.map((k) => ({ ...k, chain: [...k.chain] }));
  }

  /** The hub URL the wallet syncs with, if known. */
  get hubUrl(): string | null {
    return this.#state.hubUrl ?? null;
  }

  /** The site the wallet's hub runs, if known (from a sync). */
  get siteId(): string | null {
    return this.#state.siteId ?? null;
  }

  /** The queued events, oldest first (copies). */
  events(): WalletEvent[] {
    return this.#state.events.map((e) => ({ ...e }));
  }

  /** The wallet's offline status at `now` (ms; default the wallet's clock). */
  status(now: number = this.#now()): WalletStatus {
    const s = this.#state;
    const statusIat = s.statusTicket ? claimsOf(s.statusTicket)?.iat : undefined;
    let newestList: number | null = null;
    for (const l of s.lists) {
      const iat = claimsOf(l)?.iat;
      if (iat !== undefined) newestList = Math.max(newestList ?? 0, iat);
    }
    return {
      holderKeyId: this.#holder === null ? null : this.holderKeyId(),
      online: s.lastSyncAt !== null && now - s.lastSyncAt <= ONLINE_WINDOW_MS,
      lastSyncAt: s.lastSyncAt,
      lastSyncError: s.lastSyncError,
      queuedEvents: s.events.length,
      keys: s.keys.map((k) => ({
        serial: k.serial,
        name: k.name,
        scope: k.scope,
        rights: k.rights,
        exp: k.exp,
        expired: k.exp * 1000 <= now,
        leaseStaleInMs:
          k.lease === null ? null : Math.max(0, ((statusIat ?? -Infinity) + k.lease) * 1000 - now),
        revoked: k.revoked,
      })),
      revocationListAge: newestList === null ? null : Math.max(0, now - newestList * 1000),
    };
  }

  /**
   * Run one unlock (or lock) with the lock at the other end of `link`: pick the best key for `lockId`, answer
   * the lock's challenge (refusing one from any other lock) with the lists and tickets the wallet carries,
   * read the verdict. Every attempt that used a key is queued as an event for the hub. A lock with an
   * untrusted clock answers LK_CLOCK_UNTRUSTED with a time challenge: the wallet keeps it for the next sync
   * and reports `needsTimeTicket`. The link stays open (the caller's to close).
   *
   * Key choice: not marked revoked, not expired at the wallet's clock (nor more than 60 s before its start),
   * holding the right for the action, scoped to `lock:<lockId>` or to the wallet's site (any site key while
   * the site is unknown, before the first sync); lock keys first, then the latest expiry.
   * @throws LatchkeyError `LK_NOT_FOUND` (no usable key; nothing is queued), `LK_INVALID_INPUT` (bad lock id),
   *   and the link's errors (`LK_LINK_TIMEOUT`, `LK_LINK_CLOSED`, `LK_LINK_WRONG_LOCK`, framing), queued too
   */
  async unlock(link: MessageLink, opts: UnlockOptions): Promise<UnlockOutcome> {
    const lockId = opts.lockId;
    if (!Id.safeParse(lockId).success) throw new LatchkeyError("LK_INVALID_INPUT", "bad lock id");
    const action = opts.action ?? "unlock";
    if (action !== "unlock" && action !== "lock") {
      throw new LatchkeyError("LK_INVALID_INPUT", 'action must be "unlock" or "lock"');
    }
    const holder = await this.holder();
    const now = this.#now();
    const key = this.#pickKey(lockId, action, now);
    if (key === null) throw new LatchkeyError("LK_NOT_FOUND", `no key for lock ${lockId}`);

    const s = this.#state;
    const lockTicket = s.timeTickets[lockId];
    const carry: Carry = {
      lists: this.#listsFor(lockId).map(carriedFromText),
      status: s.statusTicket ? carriedFromText(s.statusTicket) : null,
      time: lockTicket ? carriedFromText(lockTicket) : s.timeTicket ? carriedFromText(s.timeTicket) : null,
    };
    let result: ResultBody;
    try {
      const r = await phoneUnlock(this.#crypto, link, {
        chain: key.chain.map((l) => fromB64(l, "a key link")),
        holder: { alg: holder.alg, sign: (data) => this.#store.sign(HOLDER_ALIAS, data) },
        action: action === "lock" ? LinkAction.Lock : LinkAction.Unlock,
        intent: opts.intent ?? { kind: IntentKind.UserAction, ageMs: Milliseconds(0) },
        expectLockId: lockId,
        carry,
        maxMessageBytes: UNLOCK_MAX_MESSAGE_BYTES,
        ...(opts.timeout !== undefined ? { timeout: opts.timeout } : {}),
      });
      result = r.result;
    } catch (e) {
      const code: ErrorCode = isLatchkeyError(e) ? e.code : "LK_INTERNAL";
      this.#queue({ at: now, lockId, action, accepted: false, code, serial: key.serial });
      this.#persist();
      throw e;
    }
    // The lock has seen the ticket answering its challenge: it is spent (unless a sync brought a new one).
    if (lockTicket !== undefined && s.timeTickets[lockId] === lockTicket) delete s.timeTickets[lockId];
    const code = result.accepted ? null : result.code;
    if (result.accepted) delete s.pendingTimeChallenges[lockId];
    else if (result.timeChallenge !== undefined)
      s.pendingTimeChallenges[lockId] = toB64(result.timeChallenge);
    this.#queue({ at: now, lockId, action, accepted: result.accepted, code, serial: key.serial });
    this.#persist();
    return {
      accepted: result.accepted,
      ...(code !== null ? { code } : {}),
      needsTimeTicket: code === "LK_CLOCK_UNTRUSTED",
      serial: key.serial,
    };
  }

  /**
   * Sync with the hub at `hubUrl` (default: the last one used, which this call remembers). Sends the
   * holder-signed request (the oldest {@link MAX_SYNC_EVENTS} queued events, up to
   * {@link MAX_SYNC_CHALLENGES} pending time challenges) and takes the hub's answer:
   *
   * - keys: the hub's list replaces every key that came from the hub; imported keys stay (a key the hub
   *   lists becomes the hub's);
   * - revocation lists, the status ticket and the time ticket are replaced; tickets answering a lock's
   *   challenge are kept per lock (single use), and the challenges they answer are cleared;
   * - the events sent are dropped (the hub keeps them idempotently by holder and event id).
   *
   * HTTP: `POST {hubUrl}/api/v1/phone/sync`, JSON `{ request: b64url(UTF-8 JSON SyncRequest), signature }`,
   * signature by the holder key over `CBOR["LK-WALLET-1 sync", requestBytes]` (64 bytes, Ed25519 or ES256
   * r‖s); no Authorization header. Any failure is kept in `status().lastSyncError`.
   * @throws LatchkeyError `LK_HUB_UNREACHABLE` (network, timeout, or an answer that is not Latchkey's),
   *   `LK_INVALID_INPUT` (no or a bad hub URL; a malformed answer), the code of the hub's error envelope
   *   (`LK_INTERNAL` for a code this wallet does not know), `LK_NOT_FOUND` (before {@link init})
   */
  async sync(hubUrl?: string): Promise<SyncSummary> {
    const url = hubUrl ?? this.#state.hubUrl;
    if (url === undefined) throw new LatchkeyError("LK_INVALID_INPUT", "no hub URL: pass the hub's address");
    const endpoint = syncEndpoint(url);
    const holder = await this.holder();
    if (hubUrl !== undefined && this.#state.hubUrl !== hubUrl) {
      this.#state.hubUrl = hubUrl;
      this.#persist();
    }
    try {
      return await this.#sync(endpoint, holder);
    } catch (e) {
      const err = isLatchkeyError(e) ? e : new LatchkeyError("LK_INTERNAL", "the sync failed unexpectedly");
      this.#state.lastSyncError = err.message.slice(0, 1000);
      this.#persist();
      throw err;
    }
  }

  async #sync(endpoint: URL, holder: PublicKey): Promise<SyncSummary> {
    const s = this.#state;
    const at = this.#now();
    const events = s.events.slice(0, MAX_SYNC_EVENTS);
    const challenges = Object.entries(s.pendingTimeChallenges)
      .slice(0, MAX_SYNC_CHALLENGES)
      .map(([lockId, challenge]) => ({ lockId, challenge }));
    const request: SyncRequest = {
      v: 1,
      holder: { alg: holder.alg, key: toB64(holder.key) },
      at,
      nonce: toB64(this.#crypto.randomBytes(16)),
      timeChallenges: challenges,
      events,
      ...(s.siteId !== undefined ? { site: s.siteId } : {}),
    };
    const requestBytes = utf8(JSON.stringify(request));
    const signature = await this.#store.sign(
      HOLDER_ALIAS,
      encodeDeterministic([SYNC_SIGNATURE_LABEL, requestBytes]),
    );
    const body = JSON.stringify({ request: toB64(requestBytes), signature: toB64(signature) });

    let status: number;
    let text: string;
    try {
      const res = await this.#fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body,
        signal: AbortSignal.timeout(this.#syncTimeout),
      });
      status = res.status;
      text = await res.text();
    } catch {
      throw new LatchkeyError("LK_HUB_UNREACHABLE", `cannot reach the hub at ${endpoint.origin}`);
    }
    if (text.length > MAX_SYNC_ANSWER_BYTES) throw malformedAnswer();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (status < 200 || status > 299) throw hubError(json, status, endpoint);
    const parsed = SyncAnswer.safeParse(json);
    if (!parsed.success) throw malformedAnswer();
    const data = parsed.data.data;
    if (s.siteId !== undefined && data.siteId !== s.siteId) {
      throw new LatchkeyError(
        "LK_CONFLICT",
        `this wallet belongs to site ${s.siteId}, and the hub at ${endpoint.origin} is site ${data.siteId}`,
      );
    }

    let hubKeys: StoredKey[];
    try {
      hubKeys = data.keys.map((k) => {
        const links = k.chain.map((l) => fromB64(l, "a key link"));
        const key = describeChain(links, holder, { name: k.name, revoked: k.revoked, origin: "hub" });
        if (key.serial !== k.serial) throw malformedAnswer();
        return key;
      });
      for (const o of [
        ...data.lists,
        data.statusTicket,
        data.timeTicket,
        ...data.timeTickets.map((t) => t.ticket),
      ])
        if (o !== null) carriedFromText(o);
    } catch {
      throw malformedAnswer();
    }

    // Apply. Events queued while the request was out stay queued.
    const hubSerials = new Set(hubKeys.map((k) => k.serial));
    const before = new Set(s.keys.map((k) => k.serial));
    const kept = s.keys.filter((k) => k.origin === "imported" && !hubSerials.has(k.serial));
    const removed = s.keys.filter((k) => k.origin === "hub" && !hubSerials.has(k.serial)).length;
    s.keys = [...hubKeys, ...kept];
    s.lists = data.lists;
    s.statusTicket = data.statusTicket;
    s.timeTicket = data.timeTicket;
    for (const { lockId, ticket } of data.timeTickets) {
      s.timeTickets[lockId] = ticket;
      delete s.pendingTimeChallenges[lockId];
    }
    const sent = new Set(events.map((e) => e.id));
    s.events = s.events.filter((e) => !sent.has(e.id));
    s.siteId = data.siteId;
    s.lastSyncAt = at;
    s.lastSyncError = null;
    this.#persist();
    return {
      siteId: data.siteId,
      keys: s.keys.length,
      added: hubKeys.filter((k) => !before.has(k.serial)).length,
      removed,
      lists: data.lists.length,
      eventsSent: events.length,
      eventsAccepted: data.eventsAccepted,
      timeTickets: data.timeTickets.length,
      clockOffsetMs: data.serverTime - at,
    };
  }

  #pickKey(lockId: string, action: "unlock" | "lock", now: number): StoredKey | null {
    const right = action === "lock" ? KeyRight.Lock : KeyRight.Unlock;
    const lockScope = `lock:${lockId}`;
    const site = this.#state.siteId;
    const usable = this.#state.keys.filter(
      (k) =>
        !k.revoked &&
        k.exp * 1000 > now &&
        k.nbf * 1000 <= now + NBF_SKEW_MS &&
        (k.rights & right) !== 0 &&
        (k.scope === lockScope ||
          (site === undefined ? k.scope.startsWith("site:") : k.scope === `site:${site}`)),
    );
    // A lease key whose status ticket is too old would be refused: prefer any key that is not.
    const statusIat = this.#state.statusTicket ? (claimsOf(this.#state.statusTicket)?.iat ?? null) : null;
    const fresh = (k: StoredKey) =>
      k.lease === null || (statusIat !== null && (statusIat + k.lease) * 1000 > now);
    usable.sort(
      (a, b) =>
        Number(fresh(b)) - Number(fresh(a)) ||
        Number(b.scope === lockScope) - Number(a.scope === lockScope) ||
        b.exp - a.exp,
    );
    return usable[0] ?? null;
  }

  /** The lists worth carrying to `lockId`: its own and its site's (any site's while unknown), newest first. */
  #listsFor(lockId: string): CarriedText[] {
    const site = this.#state.siteId;
    const ranked: { list: CarriedText; iat: number }[] = [];
    for (const list of this.#state.lists) {
      const claims = claimsOf(list);
      const aud = claims?.aud;
      const here =
        aud === `lock:${lockId}` || (site === undefined ? aud?.startsWith("site:") : aud === `site:${site}`);
      if (here) ranked.push({ list, iat: claims?.iat ?? 0 });
    }
    ranked.sort((a, b) => b.iat - a.iat);
    return ranked.slice(0, MAX_CARRIED_LISTS).map((r) => r.list);
  }

  #queue(e: Omit<WalletEvent, "id">): void {
    const events = this.#state.events;
    events.push({ id: toHex(this.#crypto.randomBytes(16)), ...e });
    if (events.length > MAX_QUEUED_EVENTS) events.splice(0, events.length - MAX_QUEUED_EVENTS);
  }

  #persist(): void {
    writeState(this.#path, this.#state);
  }
}

/** The claims of a stored object, unverified; null when unreadable. */
function claimsOf(o: CarriedText): CwtClaims | null {
  try {
    return unverifiedClaims(fromB64(o.object));
  } catch {
    return null;
  }
}

function notInitialized(): LatchkeyError {
  return new LatchkeyError("LK_NOT_FOUND", "the wallet has no holder key yet: run init first");
}

function malformedAnswer(): LatchkeyError {
  return new LatchkeyError("LK_INVALID_INPUT", "the hub's sync answer is malformed");
}

/** `{hubUrl}/api/v1/phone/sync`. @throws LatchkeyError `LK_INVALID_INPUT` for a URL that is not http(s) */
function syncEndpoint(hubUrl: string): URL {
  let base: URL;
  try {
    base = new URL(hubUrl);
  } catch {
    throw new LatchkeyError("LK_INVALID_INPUT", "the hub URL is not a URL");
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new LatchkeyError("LK_INVALID_INPUT", "the hub URL must be http:// or https://");
  }
  return new URL(`${base.pathname.replace(/\/+$/, "")}${SYNC_PATH}`, base);
}

/** The error of a non-2xx answer: the envelope's code (LK_INTERNAL if unknown), or LK_HUB_UNREACHABLE. */
function hubError(json: unknown, status: number, endpoint: URL): LatchkeyError {
  const env = ErrorAnswer.safeParse(json);
  if (!env.success) {
    return new LatchkeyError(
      "LK_HUB_UNREACHABLE",
      `${endpoint.origin} answered HTTP ${status} without a Latchkey error (is it a Latchkey hub?)`,
    );
  }
  const { code, message } = env.data.error;
  const known = Object.hasOwn(ErrorCodes, code);
  const detail = `the hub refused the sync: ${message.slice(0, 300)}`;
  return new LatchkeyError(
    known ? (code as ErrorCode) : "LK_INTERNAL",
    known ? detail : `${detail} (${code.slice(0, 64)})`,
  );
}
