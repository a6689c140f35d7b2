/**
 * The phone wallet's state file, `<dir>/wallet.json` (src/wallet/wallet.ts): the keys the wallet holds,
 * the objects it carries to locks (revocation lists, a status ticket, time tickets), the time challenges
 * locks asked it to get answered, and the queue of its own events for the hub. No secret lives here: the
 * holder's private key stays behind the {@link SecureKeyStore} port.
 *
 * JSON, mode 0600 in a 0700 directory, written atomically (temp file + rename). Every byte string is
 * base64url without padding. The file is validated with zod when read; anything else fails with
 * `LK_INVALID_INPUT`. Also here: the base64url helpers and reading keys and signed objects *without*
 * verifying them (the wallet only sorts and shows what it holds; the lock verifies everything).
 */
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { z } from "zod";
import { DEFAULT_MAX_BYTES, decodeStrict, Tagged } from "../core/envelope/cbor.ts";
import { COSE_SIGN1_TAG } from "../core/envelope/cose-sign1.ts";
import { type CwtClaims, decodeClaims } from "../core/envelope/cwt.ts";
import { LatchkeyError } from "../core/errors.ts";
import { type DigitalKey, keyFromClaims } from "../core/keys/digital-key.ts";
import { MAX_REVOCATION_LIST_BYTES } from "../core/keys/revocation.ts";
import type { CarriedObject } from "../core/link/messages.ts";

/** The state file's name inside the wallet directory. */
export const WALLET_FILE = "wallet.json";

const B64URL_RE = /^[A-Za-z0-9_-]+$/;
/** A non-empty base64url string (a revocation list may take up to 32 KiB, about 44,000 characters). */
export const B64 = z
  .string()
  .max(48 * 1024)
  .regex(B64URL_RE);
/** Key and site ids, the scope ids of keys: 1-64 of `A-Z a-z 0-9 _ -`. */
export const Id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
/** A serial in lowercase hex (1-64 bytes). */
export const SerialHex = z.string().regex(/^(?:[0-9a-f]{2}){1,64}$/);
/** `lock:<id>` or `site:<id>`. */
export const ScopeText = z.string().regex(/^(?:lock|site):[A-Za-z0-9_-]{1,64}$/);
const Seconds = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const EpochMsSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** A signed object and its signer's chain (empty: the owner signed it), as text. */
export const CarriedText = z.object({ signerChain: z.array(B64).max(4), object: B64 });
export type CarriedText = z.infer<typeof CarriedText>;

/** A key the wallet holds. Times are NumericDates (seconds); `lease` is the shortest lease in the chain. */
export const StoredKey = z.object({
  /** The leaf's serial, hex: the key's identity in the wallet, at the hub and in the lock's audit log. */
  serial: SerialHex,
  name: z.string().max(200),
  scope: ScopeText,
  /** KeyRight bits: 1 unlock, 2 lock, 4 manage users, 8 issue keys. */
  rights: z.number().int().min(1).max(15),
  nbf: Seconds,
  exp: Seconds,
  /** Seconds: the key needs a status ticket no older than this; null for none. */
  lease: Seconds.nullable(),
  /** The COSE_Sign1 links, root first. */
  chain: z.array(B64).min(1).max(4),
  /** The hub said it is revoked: the wallet no longer offers it. */
  revoked: z.boolean(),
  /** "hub": from a sync, dropped when the hub no longer lists it; "imported": handed over out of band. */
  origin: z.enum(["hub", "imported"]),
});
export type StoredKey = z.infer<typeof StoredKey>;

/** One unlock or lock attempt, queued for the hub. */
export const WalletEvent = z.object({
  /** 16 random bytes, hex: the hub keeps events idempotent by (holder, id). */
  id: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/),
  /** Wallet clock, ms since the epoch. */
  at: EpochMsSchema,
  lockId: Id,
  action: z.enum(["unlock", "lock"]),
  accepted: z.boolean(),
  /** The lock's refusal code, or the error the attempt failed with; null when accepted. */
  code: z.string().max(64).nullable(),
  /** The serial (hex) of the key used; null when none was. */
  serial: SerialHex.nullable(),
});
export type WalletEvent = z.infer<typeof WalletEvent>;

/** The whole state file. */
export const WalletState = z.object({
  v: z.literal(1),
  hubUrl: z.string().max(2048).optional(),
  siteId: Id.optional(),
  keys: z.array(StoredKey).max(1024),
  lists: z.array(CarriedText).max(64),
  statusTicket: CarriedText.nullable(),
  timeTicket: CarriedText.nullable(),
  /** Tickets answering a lock's time challenge, by lock id: single use. */
  timeTickets: z.record(Id, CarriedText),
  /** Time challenges locks sent with LK_CLOCK_UNTRUSTED, by lock id, waiting for the next sync. */
  pendingTimeChallenges: z.record(Id, z.string().regex(/^[A-Za-z0-9_-]{22}$/)),
  events: z.array(WalletEvent),
  /** Wallet clock, ms. */
  lastSyncAt: EpochMsSchema.nullable(),
  lastSyncError: z.string().max(1000).nullable(),
});
export type WalletState = z.infer<typeof WalletState>;

/** The state of a new wallet. */
export function emptyState(): WalletState {
  return {
    v: 1,
    keys: [],
    lists: [],
    statusTicket: null,
    timeTicket: null,
    timeTickets: {},
    pendingTimeChallenges: {},
    events: [],
    lastSyncAt: null,
    lastSyncError: null,
  };
}

/**
 * Read the state file at `path`; a new, empty state when there is none.
 * @throws LatchkeyError `LK_INVALID_INPUT` (not JSON, or not a version-1 wallet state)
 */
export function readState(path: string): WalletState {
  if (!existsSync(path)) return emptyState();
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    throw new LatchkeyError("LK_INVALID_INPUT", `the wallet state ${path} is damaged: not JSON`);
  }
  const parsed = WalletState.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join(".")}` : "";
    throw new LatchkeyError(
      "LK_INVALID_INPUT",
      `the wallet state ${path} is damaged: not a version-1 wallet state${where}`,
    );
  }
  return parsed.data;
}

/** Write the state file atomically (temp file + rename), mode 0600. */
export function writeState(path: string, state: WalletState): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** Bytes → base64url (no padding). */
export function toB64(b: Uint8Array): string {
  return Buffer.from(b).toString("base64url");
}

/** base64url → bytes; only canonical base64url (no padding, no stray bits). @throws LK_INVALID_INPUT */
export function fromB64(s: string, what = "value"): Uint8Array {
  const bytes = typeof s === "string" && B64URL_RE.test(s) ? Buffer.from(s, "base64url") : null;
  if (bytes === null || bytes.toString("base64url") !== s) {
    throw new LatchkeyError("LK_INVALID_INPUT", `${what} is not base64url`);
  }
  return new Uint8Array(bytes);
}

/** A carried object from its text form. @throws LK_INVALID_INPUT */
export function carriedFromText(t: CarriedText): CarriedObject {
  return {
    signerChain: t.signerChain.map((l) => fromB64(l, "a signer link")),
    object: fromB64(t.object, "a signed object"),
  };
}

/** A carried object's text form. */
export function carriedToText(o: CarriedObject): CarriedText {
  return { signerChain: o.signerChain.map(toB64), object: toB64(o.object) };
}

/**
 * The claims of a COSE_Sign1 envelope, read without verifying its signature (for display and sorting
 * only). Null when the bytes are not a Latchkey envelope.
 */
export function unverifiedClaims(bytes: Uint8Array, maxBytes = MAX_REVOCATION_LIST_BYTES): CwtClaims | null {
  try {
    const d = decodeStrict(bytes, { maxBytes, tags: [COSE_SIGN1_TAG] });
    const body = d instanceof Tagged ? (d.value as unknown) : null;
    const payload = Array.isArray(body) && body.length === 4 ? (body[2] as unknown) : null;
    if (!(payload instanceof Uint8Array)) return null;
    return decodeClaims(payload, { maxBytes });
  } catch {
    return null;
  }
}

/**
 * A key link's content, read without verifying it (the lock verifies the chain; the wallet does not know
 * the owner's root key). @throws LatchkeyError `LK_INVALID_INPUT` when the bytes are not a Latchkey key
 */
export function unverifiedKey(link: Uint8Array): DigitalKey {
  const claims = unverifiedClaims(link, DEFAULT_MAX_BYTES);
  try {
    if (claims === null) throw new Error("not an envelope");
    return keyFromClaims(claims);
  } catch {
    throw new LatchkeyError("LK_INVALID_INPUT", "not a Latchkey key (a COSE_Sign1 of kind key)");
  }
}
