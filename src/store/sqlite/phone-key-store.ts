/**
 * The SQLite tables of phone keys (migration 004): the owner's root key and the hub's delegation link,
 * the keys the hub issued, the revocation lists (the hub's published one and each lock's applied one) and
 * the events wallets synced. Binary columns hold the exact signed bytes; chains are CBOR arrays.
 */
import type { Database } from "better-sqlite3";
import { decodeStrict, encodeDeterministic } from "../../core/envelope/cbor.ts";
import type { CoseAlg } from "../../core/envelope/cose-sign1.ts";
import { LatchkeyError } from "../../core/errors.ts";
import type { PublicKey } from "../../core/keys/digital-key.ts";
import { EpochMs } from "../../core/units.ts";

/** The owner's root key and the link it signed for the hub's signing key. */
export interface KeyAuthorityRecord {
  readonly root: PublicKey;
  /** COSE_Sign1 key, owner → hub: the hub's signer chain (one link). */
  readonly hubLink: Uint8Array;
  readonly registeredAt: EpochMs;
  readonly registeredBy: string;
}

/** A key the hub issued (registered so the lock can name its user and the hub can list and revoke it). */
export interface PhoneKeyRecord {
  readonly serial: string;
  readonly userId: string | null;
  readonly name: string;
  readonly holderKeyId: string;
  /** `lock:<id>` or `site:<id>`. */
  readonly scope: string;
  readonly rights: number;
  /** NumericDate, seconds. */
  readonly nbf: number;
  readonly exp: number;
  readonly leaseSeconds: number | null;
  /** The links, root first (the last is this key). */
  readonly chain: readonly Uint8Array[];
  readonly issuedBy: string;
  readonly issuedAt: EpochMs;
  readonly revokedAt: EpochMs | null;
}

/** A stored revocation list: its signed bytes and its signer's chain. */
export interface StoredRevocationList {
  readonly scope: string;
  readonly version: number;
  /** NumericDate, seconds. */
  readonly issuedAt: number;
  readonly list: Uint8Array;
  readonly signerChain: readonly Uint8Array[];
}

/** One event a wallet queued and synced. */
export interface WalletEventRecord {
  readonly holderKeyId: string;
  readonly eventId: string;
  /** ms, the phone's clock. */
  readonly at: EpochMs;
  readonly lockId: string;
  readonly action: string;
  readonly accepted: boolean;
  readonly code: string | null;
  readonly serial: string | null;
  readonly receivedAt: EpochMs;
}

type Row = Record<string, unknown>;

function chainToBlob(chain: readonly Uint8Array[]): Uint8Array {
  return encodeDeterministic([...chain]);
}

function chainFromBlob(b: unknown): Uint8Array[] {
  const v = decodeStrict(new Uint8Array(b as Buffer));
  if (!Array.isArray(v) || !v.every((x) => x instanceof Uint8Array)) {
    throw new LatchkeyError("LK_STORE_FAILED", "a stored key chain is corrupt");
  }
  return v as Uint8Array[];
}

function keyFromRow(r: Row): PhoneKeyRecord {
  return {
    serial: r.serial as string,
    userId: (r.user_id as string | null) ?? null,
    name: r.name as string,
    holderKeyId: r.holder_key_id as string,
    scope: r.scope as string,
    rights: r.rights as number,
    nbf: r.nbf as number,
    exp: r.exp as number,
    leaseSeconds: (r.lease as number | null) ?? null,
    chain: chainFromBlob(r.chain),
    issuedBy: r.issued_by as string,
    issuedAt: EpochMs(r.issued_at as number),
    revokedAt: r.revoked_at === null ? null : EpochMs(r.revoked_at as number),
  };
}

/** Holder of the hub's own published lists in `revocation_lists`. */
export const HUB_LISTS = "hub";

export class PhoneKeyTables {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  authority(): KeyAuthorityRecord | null {
    const r = this.#db.prepare("SELECT * FROM key_authority WHERE id = 1").get() as Row | undefined;
    if (!r) return null;
    return {
      root: { alg: r.root_alg as CoseAlg, key: new Uint8Array(r.root_key as Buffer) },
      hubLink: new Uint8Array(r.hub_link as Buffer),
      registeredAt: EpochMs(r.registered_at as number),
      registeredBy: r.registered_by as string,
    };
  }

  setAuthority(a: KeyAuthorityRecord): void {
    this.#db
      .prepare(
        `INSERT INTO key_authority (id, root_alg, root_key, hub_link, registered_at, registered_by)
         VALUES (1, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET root_alg = excluded.root_alg, root_key = excluded.root_key,
           hub_link = excluded.hub_link, registered_at = excluded.registered_at, registered_by = excluded.registered_by`,
      )
      .run(a.root.alg, a.root.key, a.hubLink, a.registeredAt, a.registeredBy);
  }

  /** Raise the counter kept in meta under `key` and return its new value (1, 2, ...). Call in a transaction. */
  nextCounter(key: string): number {
    const r = this.#db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as Row | undefined;
    const next = (r ? Number(r.value) : 0) + 1;
    if (!Number.isSafeInteger(next)) throw new LatchkeyError("LK_STORE_FAILED", `counter ${key} is corrupt`);
    this.#db
      .prepare(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      )
      .run(key, String(next));
    return next;
  }

  insertKey(k: PhoneKeyRecord): void {
    this.#db
      .prepare(
        `INSERT INTO phone_keys (serial, user_id, name, holder_key_id, scope, rights, nbf, exp, lease, chain,
           issued_by, issued_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        k.serial,
        k.userId,
        k.name,
        k.holderKeyId,
        k.scope,
        k.rights,
        k.nbf,
        k.exp,
        k.leaseSeconds,
        chainToBlob(k.chain),
        k.issuedBy,
        k.issuedAt,
        k.revokedAt,
      );
  }

  key(serial: string): PhoneKeyRecord | null {
    const r = this.#db.prepare("SELECT * FROM phone_keys WHERE serial = ?").get(serial) as Row | undefined;
    return r ? keyFromRow(r) : null;
  }

  keys(): PhoneKeyRecord[] {
    return (this.#db.prepare("SELECT * FROM phone_keys ORDER BY issued_at, serial").all() as Row[]).map(
      keyFromRow,
    );
  }

  keysOfHolder(holderKeyId: string): PhoneKeyRecord[] {
    return (
      this.#db
        .prepare("SELECT * FROM phone_keys WHERE holder_key_id = ? ORDER BY issued_at, serial")
        .all(holderKeyId) as Row[]
    ).map(keyFromRow);
  }

  /** The user a registered key (leaf serial, hex) was issued to; null for none. */
  keyUser(serial: string): string | null {
    const r = this.#db.prepare("SELECT user_id FROM phone_keys WHERE serial = ?").get(serial) as
      | Row
      | undefined;
    return (r?.user_id as string | null | undefined) ?? null;
  }

  /** serial → user id of every key that has a user (what the locks look up on each unlock). */
  keyUsers(): Map<string, string> {
    const rows = this.#db
      .prepare("SELECT serial, user_id FROM phone_keys WHERE user_id IS NOT NULL")
      .all() as Row[];
    return new Map(rows.map((r) => [r.serial as string, r.user_id as string]));
  }

  markRevoked(serials: readonly string[], at: EpochMs): void {
    const st = this.#db.prepare(
      "UPDATE phone_keys SET revoked_at = ? WHERE serial = ? AND revoked_at IS NULL",
    );
    for (const s of serials) st.run(at, s);
  }

  /** Forget keys past their exp (seconds) by more than `graceSeconds`; returns how many. */
  pruneExpired(nowSeconds: number, graceSeconds: number): number {
    return this.#db.prepare("DELETE FROM phone_keys WHERE exp < ?").run(nowSeconds - graceSeconds).changes;
  }

  revocationLists(holder: string): StoredRevocationList[] {
    return (
      this.#db.prepare("SELECT * FROM revocation_lists WHERE holder = ? ORDER BY scope").all(holder) as Row[]
    ).map((r) => ({
      scope: r.scope as string,
      version: r.version as number,
      issuedAt: r.issued_at as number,
      list: new Uint8Array(r.list as Buffer),
      signerChain: chainFromBlob(r.signer_chain),
    }));
  }

  putRevocationList(holder: string, l: StoredRevocationList): void {
    this.#db
      .prepare(
        `INSERT INTO revocation_lists (holder, scope, version, issued_at, list, signer_chain) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (holder, scope) DO UPDATE SET version = excluded.version, issued_at = excluded.issued_at,
           list = excluded.list, signer_chain = excluded.signer_chain`,
      )
      .run(holder, l.scope, l.version, l.issuedAt, l.list, chainToBlob(l.signerChain));
  }

  /** Drop every list (the root key changed: lists of the old root no longer verify). */
  clearRevocationLists(): void {
    this.#db.prepare("DELETE FROM revocation_lists").run();
  }

  /** Insert events, skipping ones already received; returns how many were new. */
  insertWalletEvents(events: readonly WalletEventRecord[]): number {
    const st = this.#db.prepare(
      `INSERT OR IGNORE INTO wallet_events (holder_key_id, event_id, at, lock_id, action, accepted, code, serial,
         received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    let n = 0;
    for (const e of events) {
      n += st.run(
        e.holderKeyId,
        e.eventId,
        e.at,
        e.lockId,
        e.action,
        e.accepted ? 1 : 0,
        e.code,
        e.serial,
        e.receivedAt,
      ).changes;
    }
    return n;
  }

  walletEvents(limit = 1000): WalletEventRecord[] {
    return (
      this.#db
        .prepare("SELECT * FROM wallet_events ORDER BY received_at DESC, at DESC LIMIT ?")
        .all(limit) as Row[]
    ).map((r) => ({
      holderKeyId: r.holder_key_id as string,
      eventId: r.event_id as string,
      at: EpochMs(r.at as number),
      lockId: r.lock_id as string,
      action: r.action as string,
      accepted: r.accepted === 1,
      code: (r.code as string | null) ?? null,
      serial: (r.serial as string | null) ?? null,
      receivedAt: EpochMs(r.received_at as number),
    }));
  }
}
