/** Small builders for test fixtures: users, credentials and decision states. */
import { buildCredentialIndex } from "../../src/core/credential-index.ts";
import type { DecisionState } from "../../src/core/decide.ts";
import { INITIAL_LOCKOUT } from "../../src/core/lockout.ts";
import type { Credential, TotpCredential, User } from "../../src/core/model.ts";
import { EpochMs, Seconds } from "../../src/core/units.ts";

export const T0 = EpochMs(Date.UTC(2026, 0, 5, 9, 0, 0)); // Monday 2026-01-05 09:00 UTC

export function user(p: Partial<User> & { id: string }): User {
  return {
    name: p.id,
    role: "member",
    userType: "unrestricted",
    userStatus: "occupiedEnabled",
    weekDaySchedules: [],
    yearDaySchedules: [],
    expiringTimeout: null,
    firstUsedAt: null,
    createdAt: T0,
    ...p,
  };
}

export function pin(
  id: string,
  userId: string,
  digest: string,
  extra: Partial<Extract<Credential, { type: "pin" }>> = {},
): Credential {
  return {
    id,
    userId,
    type: "pin",
    pinDigest: digest,
    pinLength: 6,
    duress: false,
    locks: "all",
    label: null,
    createdAt: T0,
    ...extra,
  };
}

export function card(
  id: string,
  userId: string,
  cardId: string,
  locks: Credential["locks"] = "all",
): Credential {
  return { id, userId, type: "rfid", cardId, locks, label: null, createdAt: T0 };
}

export function finger(id: string, userId: string, slot: number): Credential {
  return { id, userId, type: "fingerprint", slot, locks: "all", label: null, createdAt: T0 };
}

/** A TOTP credential (RFC 6238 defaults; Dual unless `requirePin: false`). The secret is all zeros unless given. */
export function totp(id: string, userId: string, extra: Partial<TotpCredential> = {}): TotpCredential {
  return {
    id,
    userId,
    type: "totp",
    secret: new Uint8Array(20),
    algorithm: "SHA-1",
    digits: 6,
    step: Seconds(30),
    requirePin: true,
    lastStep: null,
    locks: "all",
    label: null,
    createdAt: T0,
    ...extra,
  };
}

export function state(
  users: User[],
  credentials: Credential[],
  p: Partial<DecisionState> = {},
): DecisionState {
  return {
    lockId: "front-door",
    timeZone: "UTC",
    operatingMode: "normal",
    lockState: "locked",
    battery: "ok",
    clockTrusted: true,
    lockouts: { keypad: INITIAL_LOCKOUT, reader: INITIAL_LOCKOUT, fingerprint: INITIAL_LOCKOUT },
    index: buildCredentialIndex(users, credentials),
    ...p,
  };
}
