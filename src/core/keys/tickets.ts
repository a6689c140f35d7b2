/**
 * Time tickets and status tickets that travel with phones (spec: docs/protocol/digital-keys.md
 * § "Time tickets", § "Status tickets").
 *
 * Both are a COSE_Sign1 over CWT claims of kind `ticket`, signed by the owner or a delegate
 * (authority.ts), told apart by `lk.ticket` (-65552):
 *
 *   time:    iss, aud (lock:<id> | site:<id>), iat = the signed time, lk.ticket "time",
 *            lk.challenge (-65553) optional: the lock's challenge, 16 to 64 bytes
 *   status:  iss, aud, sub = the holder's key id (hex), iat = issued at, lk.ticket "status"
 *
 * A time ticket never moves a lock's clock back (it must be newer than the time floor). Only a ticket
 * that echoes a challenge the lock issued within the freshness bound lets a lock regain trusted time;
 * one without a challenge only raises the floor (the lock then knows real time is at least that).
 *
 * Pure: signatures through {@link CryptoPort}; time passed in.
 */
import type { ClockReading } from "../clock.ts";
import type { CryptoPort } from "../crypto.ts";
import { timingSafeEqual, toHex } from "../crypto.ts";
import { type CwtClaims, EnvelopeKind, type NumericDate, signCwt } from "../envelope/cwt.ts";
import { LatchkeyError } from "../errors.ts";
import type { EpochMs, Milliseconds, MonotonicMs } from "../units.ts";
import {
  type AuthorityContext,
  checkScopeHere,
  checkSignerCovers,
  type Issuer,
  type SignerKind,
  scopeFromText,
  scopeToText,
  signerOf,
  verifyByAuthority,
} from "./authority.ts";
import { type KeyScope, keyId, type PublicKey } from "./digital-key.ts";

/** Latchkey's ticket claims (CWT private-use labels). */
export const TicketClaimLabel = { type: -65552, challenge: -65553 } as const;
/** The value of `lk.ticket`. */
export const TicketType = { Time: "time", Status: "status" } as const;
export type TicketType = (typeof TicketType)[keyof typeof TicketType];
/** Challenge length bounds, in bytes. */
export const MIN_CHALLENGE_BYTES = 16;
export const MAX_CHALLENGE_BYTES = 64;
/** Default freshness bound of a challenge: a ticket must arrive within 2 minutes of the challenge. */
export const DEFAULT_TICKET_FRESHNESS = 120_000 as Milliseconds;

/** A time ticket's content. */
export interface TimeTicket {
  readonly scope: KeyScope;
  /** The signed time (NumericDate, seconds). */
  readonly time: NumericDate;
  /** The lock's challenge this ticket answers, or null for a ticket the wallet carries around. */
  readonly challenge: Uint8Array | null;
}

/** A status ticket's content. */
export interface StatusTicket {
  readonly scope: KeyScope;
  /** The holder's key id (keyId of its public key, 16 bytes). */
  readonly holder: Uint8Array;
  readonly issuedAt: NumericDate;
}

export interface VerifiedTimeTicket extends TimeTicket {
  readonly signer: SignerKind;
}

function malformed(detail: string): LatchkeyError {
  return new LatchkeyError("LK_ENVELOPE_MALFORMED", detail);
}

function checkDate(name: string, v: unknown): asserts v is NumericDate {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
    throw malformed(`${name} must be a NumericDate`);
}

function checkChallenge(v: unknown): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array) || v.length < MIN_CHALLENGE_BYTES || v.length > MAX_CHALLENGE_BYTES) {
    throw malformed(`lk.challenge must be ${MIN_CHALLENGE_BYTES} to ${MAX_CHALLENGE_BYTES} bytes`);
  }
}

/** Sign a time ticket (the signing service: hub or cloud, at `time`). */
export function signTimeTicket(crypto: CryptoPort, issuer: Issuer, t: TimeTicket): Uint8Array {
  checkDate("time", t.time);
  const extra = new Map<number, unknown>([[TicketClaimLabel.type, TicketType.Time]]);
  if (t.challenge !== null) {
    checkChallenge(t.challenge);
    extra.set(TicketClaimLabel.challenge, t.challenge);
  }
  const { signer, iss } = signerOf(crypto, issuer);
  return signCwt(crypto, signer, {
    kind: EnvelopeKind.Ticket,
    iss,
    aud: scopeToText(t.scope),
    iat: t.time,
    extra,
  });
}

/** Sign a status ticket for a holder's public key. */
export function signStatusTicket(
  crypto: CryptoPort,
  issuer: Issuer,
  t: { readonly scope: KeyScope; readonly holder: PublicKey; readonly issuedAt: NumericDate },
): Uint8Array {
  checkDate("iat", t.issuedAt);
  const extra = new Map<number, unknown>([[TicketClaimLabel.type, TicketType.Status]]);
  const { signer, iss } = signerOf(crypto, issuer);
  return signCwt(crypto, signer, {
    kind: EnvelopeKind.Ticket,
    iss,
    sub: toHex(keyId(crypto, t.holder)),
    aud: scopeToText(t.scope),
    iat: t.issuedAt,
    extra,
  });
}

/** A ticket from (verified) claims: exactly the claims of its type. Throws LK_ENVELOPE_MALFORMED. */
export function ticketFromClaims(
  c: CwtClaims,
): ({ readonly type: "time" } & TimeTicket) | ({ readonly type: "status" } & StatusTicket) {
  if (c.kind !== EnvelopeKind.Ticket) throw malformed(`envelope kind is "${c.kind}", expected "ticket"`);
  if (c.iss === undefined || c.iat === undefined) throw malformed("a ticket needs iss, aud and iat");
  if (c.exp !== undefined || c.nbf !== undefined || c.cti !== undefined) {
    throw malformed("a ticket has no exp, nbf or cti");
  }
  const scope = scopeFromText(c.aud);
  const extra = c.extra ?? new Map<number, unknown>();
  const type = extra.get(TicketClaimLabel.type);
  if (type === TicketType.Time) {
    for (const label of extra.keys()) {
      if (label !== TicketClaimLabel.type && label !== TicketClaimLabel.challenge) {
        throw malformed(`unknown time-ticket claim ${label}`);
      }
    }
    if (c.sub !== undefined) throw malformed("a time ticket has no sub");
    const challenge = extra.get(TicketClaimLabel.challenge);
    if (challenge !== undefined) checkChallenge(challenge);
    return { type, scope, time: c.iat, challenge: challenge ?? null };
  }
  if (type === TicketType.Status) {
    if (extra.size !== 1) throw malformed("a status ticket has only lk.ticket among Latchkey's claims");
    if (c.sub === undefined || !/^[0-9a-f]{32}$/.test(c.sub))
      throw malformed("sub must be the holder's key id (hex)");
    const holder = new Uint8Array(16);
    for (let i = 0; i < 16; i++) holder[i] = Number.parseInt(c.sub.slice(2 * i, 2 * i + 2), 16);
    return { type, scope, holder, issuedAt: c.iat };
  }
  throw malformed('lk.ticket must be "time" or "status"');
}

/**
 * Verify a time ticket for this lock. A delegate's chain is checked at the ticket's own time, so a
 * delegate can vouch only for times inside its key's validity (no ticket for 2099 from a key that ends
 * in 2027). Throws only LatchkeyError: LK_ENVELOPE_*, LK_SIGNER_REFUSED, LK_SCOPE_MISMATCH.
 */
export function verifyTimeTicket(
  crypto: CryptoPort,
  bytes: Uint8Array,
  ctx: AuthorityContext,
): VerifiedTimeTicket {
  const v = verifyByAuthority(crypto, bytes, ctx, (claims) => {
    // The chain is checked only after the claims parse as a time ticket.
    const t = ticketFromClaims(claims);
    if (t.type !== TicketType.Time) throw malformed('lk.ticket is "status", expected "time"');
    return (t.time * 1000) as EpochMs;
  });
  const t = ticketFromClaims(v.claims);
  if (t.type !== TicketType.Time) throw malformed('lk.ticket is "status", expected "time"');
  checkScopeHere(t.scope, ctx.lockId, ctx.siteId);
  checkSignerCovers(v.signerScope, t.scope);
  return { scope: t.scope, time: t.time, challenge: t.challenge, signer: v.signer };
}

/** The challenge a lock issued to get a time ticket (single use: clear it once a ticket answered it). */
export interface PendingChallenge {
  readonly nonce: Uint8Array;
  /** When it was issued, on the lock's monotonic clock. */
  readonly issuedAt: MonotonicMs;
}

/** What the lock knows about its clock when a ticket arrives. */
export interface LockClockState {
  /** The latest {@link observeClock} reading: trusted or not, why, and the persisted floor. */
  readonly reading: ClockReading;
  /** The challenge the lock issued, if any. */
  readonly challenge: PendingChallenge | null;
  /** Now, on the lock's monotonic clock (same base as {@link PendingChallenge.issuedAt}). */
  readonly monotonicNow: MonotonicMs;
}

/** What the lock does with a verified time ticket. */
export type TicketDecision =
  /** Regain trusted time: set the RTC to `time`, persist `floor` (= time), clear the challenge. */
  | { readonly action: "setTime"; readonly time: EpochMs; readonly floor: EpochMs }
  /** Real time is at least `floor`: persist it. The clock's trust does not change. */
  | { readonly action: "raiseFloor"; readonly floor: EpochMs }
  /** Nothing to do: the ticket is not newer than the floor (a replay or an old ticket). Not an error. */
  | { readonly action: "ignore"; readonly reason: "not_newer" };

/**
 * The lock's decision on a verified time ticket (spec § "Time tickets"):
 *
 * 1. time ≤ floor → ignore: a ticket never moves the clock or the floor back (a challenged ticket is
 *    compared in whole seconds, its precision, and then sets at least the floor).
 * 2. A ticket with a challenge: it must equal the lock's pending challenge (LK_TICKET_CHALLENGE
 *    otherwise, or when none is pending), and arrive within `freshness` of it (LK_TICKET_CHALLENGE
 *    "stale"). Then → setTime at `time + (monotonicNow − challenge.issuedAt)`: the ticket was signed after
 *    the challenge, so that estimate is at most the round trip ahead of real time, never behind it by
 *    more than the second `iat` drops.
 * 3. A ticket without a challenge → raiseFloor to `time`: it proves real time is at least that, but an
 *    old ticket replayed to a lock that lost its clock must not make it trust an old time.
 */
export function decideTimeTicket(
  ticket: TimeTicket,
  state: LockClockState,
  freshness: Milliseconds = DEFAULT_TICKET_FRESHNESS,
): TicketDecision {
  const time = (ticket.time * 1000) as EpochMs;
  const floor = state.reading.floor;
  if (ticket.challenge === null) {
    if (time <= floor) return { action: "ignore", reason: "not_newer" };
    return { action: "raiseFloor", floor: time };
  }
  // A challenged ticket is compared at the ticket's precision (whole seconds): a signer in the same second
  // as the floor (kept in ms) is not behind it.
  if (time + 1000 <= floor) return { action: "ignore", reason: "not_newer" };
  const pending = state.challenge;
  if (pending === null || !timingSafeEqual(pending.nonce, ticket.challenge)) {
    throw new LatchkeyError("LK_TICKET_CHALLENGE", "the ticket answers a challenge this lock did not issue");
  }
  const elapsed = state.monotonicNow - pending.issuedAt;
  if (!(elapsed >= 0 && elapsed <= freshness)) {
    throw new LatchkeyError("LK_TICKET_CHALLENGE", "the challenge is stale", { elapsed, freshness });
  }
  const set = Math.floor(Math.max(time + elapsed, floor)) as EpochMs;
  return { action: "setTime", time: set, floor: set };
}

/** What the lock needs to check a status ticket. */
export interface StatusContext extends AuthorityContext {
  /** The lock's time. */
  readonly now: EpochMs;
  /** The holder of the key chain the ticket must name. */
  readonly holder: PublicKey;
}

/**
 * Verify a status ticket and return its issue time, the `statusTicketAt` for {@link verifyKeyChain}.
 * Throws only LatchkeyError: LK_ENVELOPE_* (bad signature; a time ticket; iat after now + skew is
 * LK_ENVELOPE_EXPIRED "not yet valid"), LK_SIGNER_REFUSED, LK_SCOPE_MISMATCH, LK_TICKET_HOLDER.
 * Freshness against the lease is verifyKeyChain's check.
 */
export function statusTicketAt(crypto: CryptoPort, bytes: Uint8Array, ctx: StatusContext): EpochMs {
  const v = verifyByAuthority(crypto, bytes, ctx, ctx.now);
  const t = ticketFromClaims(v.claims);
  if (t.type !== TicketType.Status) throw malformed('lk.ticket is "time", expected "status"');
  checkScopeHere(t.scope, ctx.lockId, ctx.siteId);
  checkSignerCovers(v.signerScope, t.scope);
  if (!timingSafeEqual(t.holder, keyId(crypto, ctx.holder))) {
    throw new LatchkeyError("LK_TICKET_HOLDER", "the status ticket names another holder");
  }
  if (ctx.now + ctx.skew * 1000 < t.issuedAt * 1000) {
    throw new LatchkeyError("LK_ENVELOPE_EXPIRED", "not yet valid", { iat: t.issuedAt });
  }
  return (t.issuedAt * 1000) as EpochMs;
}
