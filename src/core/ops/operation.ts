/**
 * Management operations: one signed, HLC-stamped change each (spec: docs/protocol/operations.md).
 *
 * The canonical encoding of an operation is a CWT claims map (RFC 8392) in deterministic CBOR
 * (RFC 8949 § 4.2.1), the same payload the envelope signs (COSE_Sign1, RFC 9052 § 4.2):
 *
 *   iss (1)            the actor: key id of the signing key, 32 lowercase hex digits
 *   aud (3)            scope: "lock:<id>" or "site:<id>"
 *   lk.kind (-65537)   "op"
 *   lk.hlc (-65560)    the HLC stamp, 16 bytes (hlc.ts, binary form)
 *   lk.op (-65561)     the operation kind, e.g. "user.upsert" ({@link OpKind})
 *   lk.target (-65562) the entity the operation changes (its format depends on the kind)
 *   lk.payload (-65563) a map with small integer labels, per kind (see {@link OpPayloads})
 *
 * No other claim may appear. The operation's id is the first 16 bytes of SHA-256 over that encoding,
 * as 32 hex digits, so the same change always has the same id and copies deduplicate exactly; the id
 * is never on the wire. A credential payload never holds a PIN or TOTP secret in clear: only `sealed`,
 * an opaque blob sealed to the lock's key (X25519 + AEAD, specified with the PIN-privacy work).
 *
 * The authority chain that allows the actor (owner root → admin key) travels next to the envelope, as a
 * phone key's chain does (keys/authority.ts); the merge (merge.ts) decides with {@link authorize}.
 *
 * Pure: hashing and signatures through {@link CryptoPort}.
 */

import { parseCardId } from "../credentials/card-id.ts";
import { assertRevocation } from "../credentials/guest-code.ts";
import type { CryptoPort } from "../crypto.ts";
import { toHex } from "../crypto.ts";
import { DEFAULT_MAX_BYTES } from "../envelope/cbor.ts";
import {
  type KeyResolver,
  type Sign1Limits,
  type Sign1Signer,
  signSign1,
  verifySign1,
} from "../envelope/cose-sign1.ts";
import {
  type CwtClaims,
  decodeClaims,
  EnvelopeKind,
  encodeClaims,
  type NumericDate,
} from "../envelope/cwt.ts";
import { LatchkeyError } from "../errors.ts";
import { assertDisplayName } from "../ids.ts";
import {
  ALL_KEY_RIGHTS,
  assertUsablePublicKey,
  type KeyScope,
  keyId,
  type PublicKey,
} from "../keys/digital-key.ts";
import {
  CredentialType,
  OperatingMode,
  Role,
  UserStatus,
  UserType,
  type WeekDaySchedule,
  type YearDaySchedule,
} from "../model.ts";
import { assertWeekDaySchedule, assertYearDaySchedule } from "../schedule.ts";
import type { Seconds } from "../units.ts";
import { compareHlc, type Hlc, hlcFromBytes, hlcToBytes, hlcToText } from "./hlc.ts";

/** Latchkey's operation claims (CWT private-use labels, RFC 8392 § 9.1). */
export const OpClaimLabel = { hlc: -65560, kind: -65561, target: -65562, payload: -65563 } as const;

/** What an operation does. Ownership transfer is `owner.add` of the new owner, then `owner.remove`. */
export const OpKind = {
  /** Create a user or change some of its fields (target: user id). */
  UserUpsert: "user.upsert",
  /** Remove a user for good, with its credentials and schedule (target: user id). */
  UserRemove: "user.remove",
  /** Create or replace a credential (target: credential id). */
  CredentialUpsert: "credential.upsert",
  /** Remove a credential for good (target: credential id). */
  CredentialRemove: "credential.remove",
  /** Replace a user's week-day and year-day schedules (target: user id). */
  ScheduleSet: "schedule.set",
  /** Set a lock's OperatingMode (target: lock id). */
  ModeSet: "mode.set",
  /** Give a signing key a role, or (null) revoke its role for good (target: key id). */
  RoleSet: "role.set",
  /** Record a digital key issued to a holder (target: key serial, hex). */
  KeyIssue: "key.issue",
  /** Revoke a digital key for good (target: key serial, hex). */
  KeyRevoke: "key.revoke",
  /** Revoke one offline guest code (target: its 16-hex code id). */
  GuestCodeRevoke: "guestcode.revoke",
  /** Add an owner root key (target: its key id). */
  OwnerAdd: "owner.add",
  /** Remove an owner for good; never the last one (target: its key id). */
  OwnerRemove: "owner.remove",
} as const;
export type OpKind = (typeof OpKind)[keyof typeof OpKind];

/** Roles `role.set` can give: every {@link Role} but `owner` (owners are added with `owner.add`). */
export type DelegatedRole = Exclude<Role, "owner">;

/** An operation without fields. */
export type EmptyPayload = Readonly<Record<string, never>>;

/** `user.upsert`: the fields to set, at least one. Absent fields keep their value. */
export interface UserUpsertPayload {
  /** Display name, 1–100 characters, no control characters, no surrounding spaces. */
  readonly name?: string;
  readonly userType?: UserType;
  readonly userStatus?: UserStatus;
  /** For `expiringDisposable` users; null clears it. */
  readonly expiringTimeout?: Seconds | null;
  /**
   * The user's role at the site's management API (owner, admin, member, service, guest): what their API
   * token may do. Not the signing standing of a key (that is `role.set`/`owner.add`).
   */
  readonly role?: Role;
}

interface CredentialCommon {
  readonly userId: string;
  /** Which locks: "all", or lock ids sorted and unique (1–64 of them). */
  readonly locks: "all" | readonly string[];
  readonly label: string | null;
}

/**
 * `credential.upsert`: the whole credential (it replaces the previous one). Secrets are `sealed`: an
 * opaque blob of 48–1,024 bytes for the lock's key, never the PIN or TOTP secret itself.
 */
export type CredentialUpsertPayload =
  | (CredentialCommon & { readonly type: "pin"; readonly sealed: Uint8Array; readonly duress: boolean })
  | (CredentialCommon & { readonly type: "rfid"; readonly cardId: string })
  | (CredentialCommon & { readonly type: "fingerprint"; readonly slot: number })
  | (CredentialCommon & { readonly type: "totp"; readonly sealed: Uint8Array; readonly requirePin: boolean });

/** `schedule.set`: all of a user's schedules (Matter § 5.2.10.14, § 5.2.10.17), 0–16 of each. */
export interface ScheduleSetPayload {
  readonly weekDay: readonly WeekDaySchedule[];
  readonly yearDay: readonly YearDaySchedule[];
}

/** `mode.set`: Matter § 5.2.6.13 OperatingModeEnum. */
export interface ModeSetPayload {
  readonly mode: OperatingMode;
}

/**
 * `role.set`: the key's role, or null to revoke its role for good. A grant carries the key itself (the
 * target is its id), so every replica can verify that key's operations from the operation set alone.
 */
export type RoleSetPayload =
  | { readonly role: DelegatedRole; readonly key: PublicKey }
  | { readonly role: null };

/** `key.issue`: what the lock needs to list (and later revoke) a digital key (docs/protocol/digital-keys.md). */
export interface KeyIssuePayload {
  /** Key id of the holder's public key, 32 lowercase hex digits. */
  readonly holder: string;
  /** Bitmask of `KeyRight`, 1..15. */
  readonly rights: number;
  readonly nbf: NumericDate;
  /** After `nbf`. */
  readonly exp: NumericDate;
}

/** `guestcode.revoke`: the rest of the code's identity (docs/protocol/guest-codes.md § 5). */
export interface GuestCodeRevokePayload {
  /** 1–64 bytes of UTF-8. */
  readonly issuerId: string;
  /** 0..65535. */
  readonly epoch: number;
  /** The local minute after which the lock may forget the revocation (the code's end), 0..2^32 − 1. */
  readonly dropAfter: number;
}

/** `owner.add`: the owner's public key; the target is its key id. */
export interface OwnerAddPayload {
  readonly key: PublicKey;
}

/** The payload type of each kind. */
export interface OpPayloads {
  "user.upsert": UserUpsertPayload;
  "user.remove": EmptyPayload;
  "credential.upsert": CredentialUpsertPayload;
  "credential.remove": EmptyPayload;
  "schedule.set": ScheduleSetPayload;
  "mode.set": ModeSetPayload;
  "role.set": RoleSetPayload;
  "key.issue": KeyIssuePayload;
  "key.revoke": EmptyPayload;
  "guestcode.revoke": GuestCodeRevokePayload;
  "owner.add": OwnerAddPayload;
  "owner.remove": EmptyPayload;
}

/** An operation of one kind, before it has an id. */
export interface OperationBodyOf<K extends OpKind> {
  readonly hlc: Hlc;
  /** Key id (32 lowercase hex digits) of the key that signs it. */
  readonly actor: string;
  /** The lock or site the operation is for. */
  readonly scope: KeyScope;
  readonly kind: K;
  readonly target: string;
  readonly payload: OpPayloads[K];
}

/** An operation before it has an id: one {@link OperationBodyOf} per kind, told apart by `kind`. */
export type OperationBody = { [K in OpKind]: OperationBodyOf<K> }[OpKind];

/** An operation with its id: from {@link makeOperation}, {@link decodeOperation} or {@link verifyOperation}. */
export type Operation = OperationBody & {
  /** First 16 bytes of SHA-256 over the canonical encoding, 32 lowercase hex digits. */
  readonly id: string;
};

const KINDS: ReadonlySet<string> = new Set(Object.values(OpKind));
const OP_LABELS: ReadonlySet<number> = new Set(Object.values(OpClaimLabel));
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const KEY_ID_RE = /^[0-9a-f]{32}$/;
const SERIAL_RE = /^(?:[0-9a-f]{2}){1,64}$/;
const CODE_ID_RE = /^[0-9a-f]{16}$/;
const SCOPE_RE = /^(lock|site):([A-Za-z0-9_-]{1,64})$/;
/** Most week-day (and most year-day) schedules in one `schedule.set`. */
export const MAX_SCHEDULES = 16;
/** Most lock ids in a credential's scope. */
export const MAX_CREDENTIAL_LOCKS = 64;
/** Sealed secret size bounds, bytes: at least an X25519 public key (32) and an AEAD tag (16). */
export const SEALED_MIN_BYTES = 48;
export const SEALED_MAX_BYTES = 1024;
const DELEGATED_ROLES: ReadonlySet<string> = new Set(Object.values(Role).filter((r) => r !== Role.Owner));
const USER_ROLES: ReadonlySet<string> = new Set(Object.values(Role));

function malformed(detail: string): LatchkeyError {
  return new LatchkeyError("LK_OP_MALFORMED", detail);
}

/** Run `f`; turn any LatchkeyError it throws into `LK_OP_MALFORMED` with a prefix. */
function within<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof LatchkeyError) throw malformed(`${what}: ${e.detail}`);
    throw e;
  }
}

const isUint = (v: unknown, max: number): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max;

function oneOf<T extends string>(values: ReadonlySet<string>, v: unknown, what: string): T {
  if (typeof v !== "string" || !values.has(v)) throw malformed(`${what} is not one of the known values`);
  return v as T;
}

const USER_TYPES: ReadonlySet<string> = new Set(Object.values(UserType));
const USER_STATUSES: ReadonlySet<string> = new Set(Object.values(UserStatus));
const CREDENTIAL_TYPES: ReadonlySet<string> = new Set(Object.values(CredentialType));
const MODES: ReadonlySet<string> = new Set(Object.values(OperatingMode));

/** A payload map: only the allowed integer labels. */
function payloadMap(v: unknown, kind: OpKind, allowed: readonly number[]): ReadonlyMap<number, unknown> {
  if (!(v instanceof Map)) throw malformed(`the ${kind} payload must be a map`);
  for (const k of v.keys()) {
    if (typeof k !== "number" || !allowed.includes(k)) {
      throw malformed(`the ${kind} payload has an unknown field ${typeof k === "number" ? k : "(text)"}`);
    }
  }
  return v as ReadonlyMap<number, unknown>;
}

function required(m: ReadonlyMap<number, unknown>, label: number, what: string): unknown {
  if (!m.has(label)) throw malformed(`${what} is missing`);
  return m.get(label);
}

function text(v: unknown, what: string): string {
  if (typeof v !== "string") throw malformed(`${what} must be text`);
  return v;
}

function displayName(v: unknown, what: string): string {
  const s = text(v, what);
  within(what, () => assertDisplayName(s, what));
  if (s.trim() !== s) throw malformed(`${what} must not start or end with spaces`);
  return s;
}

function bool(v: unknown, what: string): boolean {
  if (typeof v !== "boolean") throw malformed(`${what} must be true or false`);
  return v;
}

// ------------------------------------------------------------------ payload labels, per kind

const UserLabel = { name: 1, userType: 2, userStatus: 3, expiringTimeout: 4, role: 5 } as const;
const CredentialLabel = {
  userId: 1,
  type: 2,
  locks: 3,
  label: 4,
  sealed: 5,
  duress: 6,
  cardId: 7,
  slot: 8,
  requirePin: 9,
} as const;
const ScheduleLabel = { weekDay: 1, yearDay: 2 } as const;
const ModeLabel = { mode: 1 } as const;
const RoleLabel = { role: 1, key: 2 } as const;
const KeyIssueLabel = { holder: 1, rights: 2, nbf: 3, exp: 4 } as const;
const GuestCodeLabel = { issuerId: 1, epoch: 2, dropAfter: 3 } as const;
const OwnerLabel = { key: 1 } as const;

/** Field name → CBOR label of each kind's payload. */
const PAYLOAD_LABELS: Readonly<Record<OpKind, Readonly<Record<string, number>>>> = {
  "user.upsert": UserLabel,
  "user.remove": {},
  "credential.upsert": CredentialLabel,
  "credential.remove": {},
  "schedule.set": ScheduleLabel,
  "mode.set": ModeLabel,
  "role.set": RoleLabel,
  "key.issue": KeyIssueLabel,
  "key.revoke": {},
  "guestcode.revoke": GuestCodeLabel,
  "owner.add": OwnerLabel,
  "owner.remove": {},
};

/** The labels each credential type carries, exactly. */
const CREDENTIAL_FIELDS: Readonly<Record<CredentialType, readonly number[]>> = {
  pin: [1, 2, 3, 4, 5, 6],
  rfid: [1, 2, 3, 4, 7],
  fingerprint: [1, 2, 3, 4, 8],
  totp: [1, 2, 3, 4, 5, 9],
};

/** Longest expiringTimeout: one year. */
const MAX_EXPIRING_TIMEOUT = 366 * 86_400;

function decodeUserUpsert(m: ReadonlyMap<number, unknown>): UserUpsertPayload {
  if (m.size === 0) throw malformed("a user.upsert sets at least one field");
  const out: {
    name?: string;
    userType?: UserType;
    userStatus?: UserStatus;
    expiringTimeout?: Seconds | null;
    role?: Role;
  } = {};
  if (m.has(UserLabel.name)) out.name = displayName(m.get(UserLabel.name), "name");
  if (m.has(UserLabel.userType))
    out.userType = oneOf<UserType>(USER_TYPES, m.get(UserLabel.userType), "userType");
  if (m.has(UserLabel.userStatus))
    out.userStatus = oneOf<UserStatus>(USER_STATUSES, m.get(UserLabel.userStatus), "userStatus");
  if (m.has(UserLabel.expiringTimeout)) {
    const t = m.get(UserLabel.expiringTimeout);
    if (t !== null && (!isUint(t, MAX_EXPIRING_TIMEOUT) || t === 0)) {
      throw malformed("expiringTimeout must be 1 s to 366 days, or null");
    }
    out.expiringTimeout = t as Seconds | null;
  }
  if (m.has(UserLabel.role)) out.role = oneOf<Role>(USER_ROLES, m.get(UserLabel.role), "role");
  return out;
}

function decodeLocks(v: unknown): "all" | readonly string[] {
  if (v === "all") return "all";
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_CREDENTIAL_LOCKS) {
    throw malformed(`locks must be "all" or 1 to ${MAX_CREDENTIAL_LOCKS} lock ids`);
  }
  for (let i = 0; i < v.length; i++) {
    const id: unknown = v[i];
    if (typeof id !== "string" || !ID_RE.test(id)) throw malformed("a lock id is 1-64 of A-Z a-z 0-9 _ -");
    if (i > 0 && !((v[i - 1] as string) < id)) throw malformed("lock ids must be sorted and unique");
  }
  return v as string[];
}

function decodeSealed(v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length < SEALED_MIN_BYTES || v.length > SEALED_MAX_BYTES) {
    throw malformed(`sealed must be ${SEALED_MIN_BYTES} to ${SEALED_MAX_BYTES} bytes`);
  }
  return v;
}

function decodeCredentialUpsert(m: ReadonlyMap<number, unknown>): CredentialUpsertPayload {
  const type = oneOf<CredentialType>(CREDENTIAL_TYPES, required(m, CredentialLabel.type, "type"), "type");
  const want = CREDENTIAL_FIELDS[type];
  for (const k of m.keys()) {
    if (!want.includes(k)) throw malformed(`a ${type} credential has no field ${k}`);
  }
  const userId = text(required(m, CredentialLabel.userId, "userId"), "userId");
  if (!ID_RE.test(userId)) throw malformed("userId is 1-64 of A-Z a-z 0-9 _ -");
  const locks = decodeLocks(required(m, CredentialLabel.locks, "locks"));
  const l = required(m, CredentialLabel.label, "label");
  const label = l === null ? null : displayName(l, "label");
  const common = { userId, locks, label };
  switch (type) {
    case "pin":
      return {
        ...common,
        type,
        sealed: decodeSealed(required(m, CredentialLabel.sealed, "sealed")),
        duress: bool(required(m, CredentialLabel.duress, "duress"), "duress"),
      };
    case "rfid": {
      const cardId = text(required(m, CredentialLabel.cardId, "cardId"), "cardId");
      within("cardId", () => parseCardId(cardId));
      return { ...common, type, cardId };
    }
    case "fingerprint": {
      const slot = required(m, CredentialLabel.slot, "slot");
      if (!isUint(slot, 0xffff)) throw malformed("slot must be 0..65535");
      return { ...common, type, slot };
    }
    case "totp":
      return {
        ...common,
        type,
        sealed: decodeSealed(required(m, CredentialLabel.sealed, "sealed")),
        requirePin: bool(required(m, CredentialLabel.requirePin, "requirePin"), "requirePin"),
      };
  }
}

function decodeScheduleSet(m: ReadonlyMap<number, unknown>): ScheduleSetPayload {
  const w = required(m, ScheduleLabel.weekDay, "weekDay");
  const y = required(m, ScheduleLabel.yearDay, "yearDay");
  if (!Array.isArray(w) || w.length > MAX_SCHEDULES)
    throw malformed(`weekDay is 0 to ${MAX_SCHEDULES} windows`);
  if (!Array.isArray(y) || y.length > MAX_SCHEDULES)
    throw malformed(`yearDay is 0 to ${MAX_SCHEDULES} ranges`);
  const weekDay = w.map((x: unknown): WeekDaySchedule => {
    if (!Array.isArray(x) || x.length !== 5 || !x.every((n) => isUint(n, 127))) {
      throw malformed("a week-day window is [daysMask, startHour, startMinute, endHour, endMinute]");
    }
    const [daysMask, startHour, startMinute, endHour, endMinute] = x as [
      number,
      number,
      number,
      number,
      number,
    ];
    const s = { daysMask, startHour, startMinute, endHour, endMinute };
    within("weekDay", () => assertWeekDaySchedule(s));
    return s;
  });
  const yearDay = y.map((x: unknown): YearDaySchedule => {
    if (!Array.isArray(x) || x.length !== 2 || typeof x[0] !== "string" || typeof x[1] !== "string") {
      throw malformed("a year-day range is [start, end], each YYYY-MM-DDTHH:MM");
    }
    const s = { start: x[0], end: x[1] };
    within("yearDay", () => assertYearDaySchedule(s));
    return s;
  });
  return { weekDay, yearDay };
}

function decodeKeyIssue(m: ReadonlyMap<number, unknown>): KeyIssuePayload {
  const holder = text(required(m, KeyIssueLabel.holder, "holder"), "holder");
  if (!KEY_ID_RE.test(holder)) throw malformed("holder is a key id: 32 lowercase hex digits");
  const rights = required(m, KeyIssueLabel.rights, "rights");
  if (!isUint(rights, ALL_KEY_RIGHTS) || rights === 0) throw malformed(`rights must be 1..${ALL_KEY_RIGHTS}`);
  const nbf = required(m, KeyIssueLabel.nbf, "nbf");
  const exp = required(m, KeyIssueLabel.exp, "exp");
  if (!isUint(nbf, Number.MAX_SAFE_INTEGER) || !isUint(exp, Number.MAX_SAFE_INTEGER)) {
    throw malformed("nbf and exp are NumericDates: non-negative integers of seconds");
  }
  if (!(nbf < exp)) throw malformed("a key must expire after it starts");
  return { holder, rights, nbf: nbf as NumericDate, exp: exp as NumericDate };
}

function decodeGuestCodeRevoke(m: ReadonlyMap<number, unknown>, codeId: string): GuestCodeRevokePayload {
  const issuerId = text(required(m, GuestCodeLabel.issuerId, "issuerId"), "issuerId");
  const epoch = required(m, GuestCodeLabel.epoch, "epoch");
  const dropAfter = required(m, GuestCodeLabel.dropAfter, "dropAfter");
  if (!isUint(epoch, 0xffff) || !isUint(dropAfter, 2 ** 32 - 1)) {
    throw malformed("epoch must be 0..65535 and dropAfter a local minute 0..2^32-1");
  }
  within("guest-code revocation", () => assertRevocation({ issuerId, epoch, codeId, dropAfter }));
  return { issuerId, epoch, dropAfter };
}

/** A `[alg, public key]` field whose key id must be `target` (owner.add, role.set grants). */
function decodeTargetKey(crypto: CryptoPort, k: unknown, target: string, kind: string): PublicKey {
  if (!Array.isArray(k) || k.length !== 2 || !(k[1] instanceof Uint8Array)) {
    throw malformed("key must be [alg, public key bytes]");
  }
  const key: PublicKey = { alg: k[0] as PublicKey["alg"], key: k[1] };
  within(`${kind} key`, () => assertUsablePublicKey(key));
  if (toHex(keyId(crypto, key)) !== target) throw malformed(`the target of ${kind} must be the key's id`);
  return key;
}

function decodeOwnerAdd(
  crypto: CryptoPort,
  m: ReadonlyMap<number, unknown>,
  target: string,
): OwnerAddPayload {
  return { key: decodeTargetKey(crypto, required(m, OwnerLabel.key, "key"), target, "owner.add") };
}

function decodeRoleSet(crypto: CryptoPort, m: ReadonlyMap<number, unknown>, target: string): RoleSetPayload {
  const r = required(m, RoleLabel.role, "role");
  if (r === null) {
    if (m.has(RoleLabel.key)) throw malformed("a role revocation carries no key");
    return { role: null };
  }
  const role = oneOf<DelegatedRole>(DELEGATED_ROLES, r, "role");
  return { role, key: decodeTargetKey(crypto, required(m, RoleLabel.key, "key"), target, "role.set") };
}

/** Is `target` the right shape for `kind`? */
function checkTarget(kind: OpKind, target: string, scope: KeyScope): void {
  switch (kind) {
    case "user.upsert":
    case "user.remove":
    case "credential.upsert":
    case "credential.remove":
    case "schedule.set":
      if (!ID_RE.test(target)) throw malformed(`the target of ${kind} is an id: 1-64 of A-Z a-z 0-9 _ -`);
      return;
    case "mode.set":
      if (!ID_RE.test(target)) throw malformed("the target of mode.set is a lock id");
      if (scope.kind === "lock" && scope.id !== target)
        throw malformed("mode.set for another lock than its scope");
      return;
    case "role.set":
    case "owner.add":
    case "owner.remove":
      if (!KEY_ID_RE.test(target))
        throw malformed(`the target of ${kind} is a key id: 32 lowercase hex digits`);
      return;
    case "key.issue":
    case "key.revoke":
      if (!SERIAL_RE.test(target))
        throw malformed(`the target of ${kind} is a key serial: 1-64 bytes, lowercase hex`);
      return;
    case "guestcode.revoke":
      if (!CODE_ID_RE.test(target))
        throw malformed("the target of guestcode.revoke is a code id: 16 lowercase hex digits");
      return;
  }
}

function decodePayload(crypto: CryptoPort, kind: OpKind, target: string, v: unknown): OpPayloads[OpKind] {
  const m = payloadMap(v, kind, Object.values(PAYLOAD_LABELS[kind]));
  switch (kind) {
    case "user.upsert":
      return decodeUserUpsert(m);
    case "credential.upsert":
      return decodeCredentialUpsert(m);
    case "schedule.set":
      return decodeScheduleSet(m);
    case "mode.set":
      return { mode: oneOf<OperatingMode>(MODES, required(m, ModeLabel.mode, "mode"), "mode") };
    case "role.set":
      return decodeRoleSet(crypto, m, target);
    case "key.issue":
      return decodeKeyIssue(m);
    case "guestcode.revoke":
      return decodeGuestCodeRevoke(m, target);
    case "owner.add":
      return decodeOwnerAdd(crypto, m, target);
    case "user.remove":
    case "credential.remove":
    case "key.revoke":
    case "owner.remove":
      return {};
  }
}

/**
 * The payload of `kind` as its CBOR map (labels per kind, see docs/protocol/operations.md). Undefined
 * fields are left out; values are copied as given, not validated: {@link encodeOperation} validates by
 * decoding what it wrote.
 * @throws LatchkeyError `LK_OP_MALFORMED` when `payload` is not an object or has a field its kind does
 *   not define (so a stray `pin` is refused, never dropped silently).
 */
export function payloadToCbor(kind: OpKind, payload: unknown): Map<number, unknown> {
  if (typeof payload !== "object" || payload === null) throw malformed("the payload must be an object");
  const labels: Readonly<Record<string, number>> = PAYLOAD_LABELS[kind];
  const m = new Map<number, unknown>();
  for (const [name, v] of Object.entries(payload)) {
    if (v === undefined) continue;
    const label = Object.hasOwn(labels, name) ? labels[name] : undefined;
    if (label === undefined) throw malformed(`the ${kind} payload has no field "${name.slice(0, 32)}"`);
    m.set(label, fieldToCbor(name, v));
  }
  return m;
}

/** A payload field as CBOR: schedules and keys as arrays, arrays copied, the rest as is. */
function fieldToCbor(name: string, v: unknown): unknown {
  if (!Array.isArray(v)) {
    if (name === "key" && typeof v === "object" && v !== null) {
      const k = v as Partial<PublicKey>;
      return [k.alg, k.key];
    }
    return v;
  }
  if (name === "weekDay") {
    return v.map((s: Partial<WeekDaySchedule> | null) =>
      typeof s === "object" && s !== null
        ? [s.daysMask, s.startHour, s.startMinute, s.endHour, s.endMinute]
        : s,
    );
  }
  if (name === "yearDay") {
    return v.map((s: Partial<YearDaySchedule> | null) =>
      typeof s === "object" && s !== null ? [s.start, s.end] : s,
    );
  }
  return [...v];
}

/**
 * The canonical encoding of an operation (see the module doc): deterministic CBOR, the exact bytes
 * {@link signOperation} signs and {@link operationId} hashes. What it writes always decodes.
 *
 * @throws LatchkeyError `LK_OP_MALFORMED` when any field is missing, of the wrong type or out of range
 *   (the same checks as {@link decodeOperation}).
 */
export function encodeOperation(crypto: CryptoPort, body: OperationBody): Uint8Array {
  if (typeof body !== "object" || body === null) throw malformed("an operation must be an object");
  if (!KINDS.has(body.kind)) throw malformed("unknown operation kind");
  const bytes = within("operation", () => {
    const scope = body.scope;
    const claims: CwtClaims = {
      kind: EnvelopeKind.Op,
      iss: body.actor,
      aud: typeof scope === "object" && scope !== null ? `${scope.kind}:${scope.id}` : undefined,
      extra: new Map<number, unknown>([
        [OpClaimLabel.hlc, hlcToBytes(body.hlc)],
        [OpClaimLabel.kind, body.kind],
        [OpClaimLabel.target, body.target],
        [OpClaimLabel.payload, payloadToCbor(body.kind, body.payload)],
      ]),
    };
    return encodeClaims(claims);
  });
  decodeOperation(crypto, bytes);
  return bytes;
}

/** The id of an operation from its canonical encoding: hex of the first 16 bytes of SHA-256. */
export function operationId(crypto: CryptoPort, canonical: Uint8Array): string {
  return toHex(crypto.sha256(canonical).subarray(0, 16));
}

/**
 * Decode an operation's canonical encoding, strictly: deterministic CBOR only (cbor.ts), exactly the
 * claims of the module doc, a known kind, a target of that kind's shape, a payload with exactly the
 * fields of its kind (unknown fields refused), every value in range. The result has its id.
 *
 * @throws LatchkeyError `LK_ENVELOPE_MALFORMED` / `LK_ENVELOPE_TOO_LARGE` when the bytes are not strict
 *   CBOR claims (or exceed `maxBytes`, default 8 KiB); `LK_OP_MALFORMED` for anything else.
 */
export function decodeOperation(
  crypto: CryptoPort,
  bytes: Uint8Array,
  options: { readonly maxBytes?: number } = {},
): Operation {
  const claims = decodeClaims(bytes, { maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES });
  if (claims.kind !== EnvelopeKind.Op) throw malformed(`envelope kind is "${claims.kind}", expected "op"`);
  if (
    claims.sub !== undefined ||
    claims.exp !== undefined ||
    claims.nbf !== undefined ||
    claims.iat !== undefined ||
    claims.cti !== undefined
  ) {
    throw malformed("an operation has no sub, exp, nbf, iat or cti claim");
  }
  const actor = claims.iss;
  if (actor === undefined || !KEY_ID_RE.test(actor))
    throw malformed("iss is the actor's key id: 32 lowercase hex digits");
  const sm = claims.aud === undefined ? null : SCOPE_RE.exec(claims.aud);
  if (sm === null) throw malformed("aud is the scope: lock:<id> or site:<id>");
  const scope: KeyScope = { kind: sm[1] as KeyScope["kind"], id: sm[2]! };
  const extra = claims.extra ?? new Map<number, unknown>();
  for (const label of extra.keys()) {
    if (!OP_LABELS.has(label)) throw malformed(`unknown operation claim ${label}`);
  }
  for (const label of OP_LABELS)
    if (!extra.has(label)) throw malformed(`operation claim ${label} is missing`);
  const hlcBytes = extra.get(OpClaimLabel.hlc);
  if (!(hlcBytes instanceof Uint8Array)) throw malformed("lk.hlc must be a byte string");
  const hlc = hlcFromBytes(hlcBytes);
  const kind = extra.get(OpClaimLabel.kind);
  if (typeof kind !== "string" || !KINDS.has(kind)) throw malformed("lk.op is not a known operation kind");
  const target = extra.get(OpClaimLabel.target);
  if (typeof target !== "string") throw malformed("lk.target must be text");
  checkTarget(kind as OpKind, target, scope);
  const payload = decodePayload(crypto, kind as OpKind, target, extra.get(OpClaimLabel.payload));
  const op = { id: operationId(crypto, bytes), hlc, actor, scope, kind, target, payload };
  return op as Operation;
}

/**
 * An operation with its id, from a body built in code: encodes, then decodes, so the result is exactly
 * what every replica will decode (names and lists in canonical form).
 * @throws LatchkeyError `LK_OP_MALFORMED` (see {@link encodeOperation}).
 */
export function makeOperation(crypto: CryptoPort, body: OperationBody): Operation {
  return decodeOperation(crypto, encodeOperation(crypto, body));
}

/**
 * The order of the merge: by HLC stamp ({@link compareHlc}), then by id. Total on operations with
 * distinct ids. Returns -1, 0 or 1.
 */
export function compareOperations(a: Operation, b: Operation): -1 | 0 | 1 {
  const c = compareHlc(a.hlc, b.hlc);
  if (c !== 0) return c;
  return a.id === b.id ? 0 : a.id < b.id ? -1 : 1;
}

/**
 * Sign an operation into a tagged COSE_Sign1 whose payload is {@link encodeOperation}'s bytes
 * (docs/protocol/envelope.md). The signer's kid must be the actor's key id.
 * @throws LatchkeyError `LK_INVALID_INPUT` when the kid is not the actor; `LK_OP_MALFORMED` for a bad
 *   body; `LK_ENVELOPE_*` from the envelope (e.g. `LK_ENVELOPE_TOO_LARGE`).
 */
export function signOperation(
  crypto: CryptoPort,
  signer: Sign1Signer,
  body: OperationBody,
  limits?: Sign1Limits,
): Uint8Array {
  if (!(signer.kid instanceof Uint8Array) || toHex(signer.kid) !== body.actor) {
    throw new LatchkeyError("LK_INVALID_INPUT", "the signer's kid must be the operation's actor");
  }
  return signSign1(crypto, signer, encodeOperation(crypto, body), undefined, limits);
}

/**
 * Verify a signed operation ({@link verifySign1}: strict envelope, allow-listed alg, signature by the
 * key `resolveKey` finds for its kid), then decode its payload ({@link decodeOperation}); the actor
 * must be the signer's key id. Whether the actor may make this change is the merge's question
 * ({@link authorize}), not this function's.
 *
 * @throws LatchkeyError `LK_ENVELOPE_*` from the envelope; `LK_OP_MALFORMED` for the payload or an
 *   actor that is not the signer.
 */
export function verifyOperation(
  crypto: CryptoPort,
  envelope: Uint8Array,
  resolveKey: KeyResolver,
  limits: Sign1Limits = {},
): Operation {
  const { payload, kid } = verifySign1(crypto, envelope, resolveKey, undefined, limits);
  const op = decodeOperation(crypto, payload, limits);
  if (op.actor !== toHex(kid)) throw malformed("the actor must be the signer's key id");
  return op;
}

/** What a signing key may do at a point in the operation order: an owner, a delegated role, or nothing. */
export type ActorStanding = "owner" | DelegatedRole | null;

/** Why {@link authorize} refused. */
export const AuthorizeRefusal = {
  /** The actor is no owner and holds no role that manages anything (member, guest, service, none). */
  NoRole: "no_role",
  /** Only owners may add or remove owners and set roles. */
  OwnerOnly: "owner_only",
} as const;
export type AuthorizeRefusal = (typeof AuthorizeRefusal)[keyof typeof AuthorizeRefusal];

/** The verdict of {@link authorize}. */
export type Authorization = { readonly ok: true } | { readonly ok: false; readonly reason: AuthorizeRefusal };

const OWNER_ONLY: ReadonlySet<OpKind> = new Set<OpKind>([
  OpKind.OwnerAdd,
  OpKind.OwnerRemove,
  OpKind.RoleSet,
]);

/**
 * May an actor with `standing` (at the operation's place in the merge order) make `op`?
 *
 * - owners: every kind;
 * - admins: every kind except `owner.add`, `owner.remove` and `role.set`;
 * - anyone else (member, guest, service, or no role): nothing.
 *
 * Pure; never throws.
 */
export function authorize(op: { readonly kind: OpKind }, standing: ActorStanding): Authorization {
  if (standing === "owner") return { ok: true };
  if (standing !== Role.Admin) return { ok: false, reason: AuthorizeRefusal.NoRole };
  if (OWNER_ONLY.has(op.kind)) return { ok: false, reason: AuthorizeRefusal.OwnerOnly };
  return { ok: true };
}

/**
 * A JSON-friendly copy of an operation (byte strings as lowercase hex, the HLC as its text form
 * `wwwwwwwwwwww-cccc-nnnnnnnnnnnnnnnn`), for logs, the API and test vectors. Not a wire format.
 */
export function operationToJson(op: Operation): Record<string, unknown> {
  const hex = (v: unknown): unknown =>
    v instanceof Uint8Array
      ? toHex(v)
      : Array.isArray(v)
        ? v.map(hex)
        : typeof v === "object" && v !== null
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, hex(x)]))
          : v;
  return {
    id: op.id,
    hlc: hlcToText(op.hlc),
    actor: op.actor,
    scope: `${op.scope.kind}:${op.scope.id}`,
    kind: op.kind,
    target: op.target,
    payload: hex(op.payload),
  };
}
