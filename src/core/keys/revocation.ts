/**
 * Revocation lists that travel with phones (spec: docs/protocol/digital-keys.md § "Revocation lists").
 *
 * A list is a COSE_Sign1 over CWT claims of kind `revocations`, signed by the owner or a delegate
 * (see authority.ts):
 *
 *   iss (1)  the signer's key id (hex)           aud (3)  scope: "lock:<id>" or "site:<id>"
 *   iat (6)  issued at (NumericDate)
 *   lk.version (-65550)  1 ≤ version ≤ iat: raised with every list for the scope
 *   lk.revoked (-65551)  the revoked serials as sorted, disjoint, non-adjacent ranges; each item is a
 *                        bstr (one serial) or [first, last] with first < last
 *
 * Serial order is **shortlex**: a shorter serial sorts first; serials of one length compare bytewise,
 * i.e. as big-endian unsigned integers of that length. The successor of `ff…ff` (n bytes) is `00…00`
 * (n + 1 bytes). A set of serials has exactly one canonical range list, so one encoding.
 *
 * The lock keeps the newest list per scope: {@link applyNewer} takes only a higher version; a list from
 * a delegate may only add revocations (never un-revoke), and none of its signer's links may be revoked.
 *
 * Pure: signatures through {@link CryptoPort}; time passed in.
 */
import type { CryptoPort } from "../crypto.ts";
import { EnvelopeKind, type NumericDate, signCwt } from "../envelope/cwt.ts";
import { LatchkeyError } from "../errors.ts";
import type { EpochMs, Milliseconds } from "../units.ts";
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
import type { KeyScope } from "./digital-key.ts";

/** Latchkey's revocation-list claims (CWT private-use labels). */
export const RevocationClaimLabel = { version: -65550, revoked: -65551 } as const;
/** Most ranges in one list. */
export const MAX_REVOCATION_RANGES = 2048;
/** Largest list envelope, in bytes (the envelope's default limit is 8 KiB; lists get their own). */
export const MAX_REVOCATION_LIST_BYTES = 32 * 1024;
/** Serials are 1 to 64 bytes, as a key's `cti`. */
export const MAX_SERIAL_BYTES = 64;

/** An inclusive range of serials, `first ≤ last` in shortlex order. */
export interface SerialRange {
  readonly first: Uint8Array;
  readonly last: Uint8Array;
}

/** A revocation list's content. */
export interface RevocationList {
  readonly scope: KeyScope;
  /** Raised with every list for the scope; 1 ≤ version ≤ issuedAt (seconds). */
  readonly version: number;
  readonly issuedAt: NumericDate;
  /** Canonical: sorted, disjoint and non-adjacent. */
  readonly ranges: readonly SerialRange[];
}

/** A list whose signature and signer were verified. */
export interface VerifiedRevocationList extends RevocationList {
  readonly signer: SignerKind;
  /** The serials of the delegate's chain (empty for the owner). */
  readonly signerSerials: readonly Uint8Array[];
}

function malformed(detail: string): LatchkeyError {
  return new LatchkeyError("LK_ENVELOPE_MALFORMED", detail);
}

function checkSerial(s: unknown): asserts s is Uint8Array {
  if (!(s instanceof Uint8Array) || s.length < 1 || s.length > MAX_SERIAL_BYTES) {
    throw malformed(`a serial is a byte string of 1 to ${MAX_SERIAL_BYTES} bytes`);
  }
}

/** Shortlex order of serials: negative, zero or positive. */
export function compareSerials(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** The next serial in shortlex order, or null after 64 bytes of `ff`. */
export function nextSerial(s: Uint8Array): Uint8Array | null {
  const out = s.slice();
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i] !== 0xff) {
      out[i] = out[i]! + 1;
      return out;
    }
    out[i] = 0;
  }
  return s.length >= MAX_SERIAL_BYTES ? null : new Uint8Array(s.length + 1);
}

/** Does `a` end right before or inside `b`'s start (so the two merge into one range)? */
function touches(aLast: Uint8Array, bFirst: Uint8Array): boolean {
  if (compareSerials(bFirst, aLast) <= 0) return true;
  const n = nextSerial(aLast);
  return n !== null && compareSerials(n, bFirst) === 0;
}

/** The canonical form of any ranges: sorted, overlapping and adjacent ones merged. Checks every serial. */
export function normalizeRanges(ranges: readonly SerialRange[]): SerialRange[] {
  for (const r of ranges) {
    checkSerial(r.first);
    checkSerial(r.last);
    if (compareSerials(r.first, r.last) > 0) throw malformed("a range must have first ≤ last");
  }
  const sorted = [...ranges].sort((a, b) => compareSerials(a.first, b.first));
  const out: SerialRange[] = [];
  for (const r of sorted) {
    const top = out[out.length - 1];
    if (top !== undefined && touches(top.last, r.first)) {
      if (compareSerials(r.last, top.last) > 0) out[out.length - 1] = { first: top.first, last: r.last };
    } else {
      out.push({ first: r.first.slice(), last: r.last.slice() });
    }
  }
  return out;
}

/** The canonical ranges of a set of serials. */
export function rangesFromSerials(serials: readonly Uint8Array[]): SerialRange[] {
  return normalizeRanges(serials.map((s) => ({ first: s, last: s })));
}

/** The union of two range lists, canonical. */
export function mergeRanges(a: readonly SerialRange[], b: readonly SerialRange[]): SerialRange[] {
  return normalizeRanges([...a, ...b]);
}

/** Is every serial of `inner` also in `outer`? Both canonical. O(n + m). */
export function coversRanges(outer: readonly SerialRange[], inner: readonly SerialRange[]): boolean {
  let j = 0;
  for (const r of inner) {
    while (j < outer.length && compareSerials(outer[j]!.last, r.first) < 0) j++;
    const o = outer[j];
    // Canonical outer ranges never touch, so an inner range must sit inside a single outer range.
    if (o === undefined || compareSerials(o.first, r.first) > 0 || compareSerials(o.last, r.last) < 0)
      return false;
  }
  return true;
}

/** Is `serial` in one of the (canonical) ranges? Binary search: O(log n) comparisons. */
export function isRevoked(list: Pick<RevocationList, "ranges"> | null, serial: Uint8Array): boolean {
  if (list === null) return false;
  const ranges = list.ranges;
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = ranges[mid]!;
    if (compareSerials(serial, r.first) < 0) hi = mid - 1;
    else if (compareSerials(serial, r.last) > 0) lo = mid + 1;
    else return true;
  }
  return false;
}

function checkVersion(version: unknown, issuedAt: number): asserts version is number {
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 1) {
    throw malformed("lk.version must be an integer ≥ 1");
  }
  if (version > issuedAt) throw malformed("lk.version must not exceed iat");
}

function tooLarge(detail: string): LatchkeyError {
  return new LatchkeyError("LK_REVOCATION_TOO_LARGE", detail);
}

/** The wire form of canonical ranges: a bstr for one serial, [first, last] otherwise. */
function rangesToWire(ranges: readonly SerialRange[]): unknown[] {
  return ranges.map((r) => (compareSerials(r.first, r.last) === 0 ? r.first : [r.first, r.last]));
}

/** Parse the wire ranges and check they are canonical (sorted, disjoint, non-adjacent, first < last). */
function rangesFromWire(v: unknown): SerialRange[] {
  if (!Array.isArray(v)) throw malformed("lk.revoked must be an array");
  if (v.length > MAX_REVOCATION_RANGES) throw tooLarge(`more than ${MAX_REVOCATION_RANGES} ranges`);
  const out: SerialRange[] = [];
  for (const item of v as unknown[]) {
    let r: SerialRange;
    if (item instanceof Uint8Array) {
      checkSerial(item);
      r = { first: item, last: item };
    } else if (Array.isArray(item) && item.length === 2) {
      const [first, last] = item as unknown[];
      checkSerial(first);
      checkSerial(last);
      if (compareSerials(first, last) >= 0) throw malformed("a range [first, last] must have first < last");
      r = { first, last };
    } else {
      throw malformed("a revoked item is a serial or [first, last]");
    }
    const prev = out[out.length - 1];
    if (prev !== undefined && touches(prev.last, r.first)) {
      throw malformed("ranges must be sorted, disjoint and not adjacent");
    }
    out.push(r);
  }
  return out;
}

/**
 * Sign a list. The ranges are normalized first (any order, overlaps allowed). Throws
 * LK_REVOCATION_TOO_LARGE past {@link MAX_REVOCATION_RANGES} ranges or {@link MAX_REVOCATION_LIST_BYTES}
 * bytes, LK_ENVELOPE_MALFORMED for a bad scope, serial or version.
 */
export function signRevocationList(crypto: CryptoPort, issuer: Issuer, list: RevocationList): Uint8Array {
  const ranges = normalizeRanges(list.ranges);
  if (ranges.length > MAX_REVOCATION_RANGES) throw tooLarge(`more than ${MAX_REVOCATION_RANGES} ranges`);
  if (typeof list.issuedAt !== "number" || !Number.isSafeInteger(list.issuedAt) || list.issuedAt < 0) {
    throw malformed("iat must be a NumericDate");
  }
  checkVersion(list.version, list.issuedAt);
  const { signer, iss } = signerOf(crypto, issuer);
  const extra = new Map<number, unknown>([
    [RevocationClaimLabel.version, list.version],
    [RevocationClaimLabel.revoked, rangesToWire(ranges)],
  ]);
  try {
    return signCwt(
      crypto,
      signer,
      { kind: EnvelopeKind.Revocations, iss, aud: scopeToText(list.scope), iat: list.issuedAt, extra },
      undefined,
      { maxBytes: MAX_REVOCATION_LIST_BYTES },
    );
  } catch (e) {
    if (e instanceof LatchkeyError && e.code === "LK_ENVELOPE_TOO_LARGE") throw tooLarge(e.detail);
    throw e;
  }
}

/** What the lock needs to verify a list: the authority context and its time. */
export interface RevocationContext extends AuthorityContext {
  /** The lock's time (its best estimate; see clock.ts). A list issued after now + skew is refused. */
  readonly now: EpochMs;
}

/**
 * Verify and decode a list for this lock. Checks, in order: the envelope and its signer (authority.ts;
 * the signer chain at `now`), kind `revocations`, the claims (exactly iss, aud, iat, lk.version,
 * lk.revoked; canonical ranges), iat not after now + skew (`LK_ENVELOPE_EXPIRED` "not yet valid"), the
 * scope names this lock or its site (`LK_SCOPE_MISMATCH`), and a delegate's scope covers it.
 *
 * Throws only LatchkeyError: LK_ENVELOPE_*, LK_SIGNER_REFUSED, LK_SCOPE_MISMATCH, LK_REVOCATION_TOO_LARGE.
 */
export function verifyRevocationList(
  crypto: CryptoPort,
  bytes: Uint8Array,
  ctx: RevocationContext,
): VerifiedRevocationList {
  if (bytes instanceof Uint8Array && bytes.length > MAX_REVOCATION_LIST_BYTES) {
    throw tooLarge(`list is ${bytes.length} bytes; the limit is ${MAX_REVOCATION_LIST_BYTES}`);
  }
  const v = verifyByAuthority(crypto, bytes, ctx, ctx.now, MAX_REVOCATION_LIST_BYTES);
  const list = revocationListFromClaims(v.claims);
  if (ctx.now + ctx.skew * 1000 < list.issuedAt * 1000) {
    throw new LatchkeyError("LK_ENVELOPE_EXPIRED", "not yet valid", { iat: list.issuedAt });
  }
  checkScopeHere(list.scope, ctx.lockId, ctx.siteId);
  checkSignerCovers(v.signerScope, list.scope);
  return { ...list, signer: v.signer, signerSerials: v.signerSerials };
}

/** A list from (verified) claims. Throws LK_ENVELOPE_MALFORMED, or LK_REVOCATION_TOO_LARGE for too many ranges. */
export function revocationListFromClaims(c: {
  readonly kind: string;
  readonly iss?: string;
  readonly sub?: string;
  readonly aud?: string;
  readonly exp?: number;
  readonly nbf?: number;
  readonly iat?: number;
  readonly cti?: Uint8Array;
  readonly extra?: ReadonlyMap<number, unknown>;
}): RevocationList {
  if (c.kind !== EnvelopeKind.Revocations)
    throw malformed(`envelope kind is "${c.kind}", expected "revocations"`);
  if (c.iss === undefined || c.aud === undefined || c.iat === undefined) {
    throw malformed("a revocation list needs iss, aud and iat");
  }
  if (c.sub !== undefined || c.exp !== undefined || c.nbf !== undefined || c.cti !== undefined) {
    throw malformed("a revocation list has no sub, exp, nbf or cti");
  }
  const extra = c.extra ?? new Map<number, unknown>();
  for (const label of extra.keys()) {
    if (label !== RevocationClaimLabel.version && label !== RevocationClaimLabel.revoked) {
      throw malformed(`unknown revocation-list claim ${label}`);
    }
  }
  const version = extra.get(RevocationClaimLabel.version);
  checkVersion(version, c.iat);
  if (!extra.has(RevocationClaimLabel.revoked)) throw malformed("lk.revoked is missing");
  return {
    scope: scopeFromText(c.aud),
    version,
    issuedAt: c.iat as NumericDate,
    ranges: rangesFromWire(extra.get(RevocationClaimLabel.revoked)),
  };
}

/** The outcome of {@link applyNewer}: the list the lock keeps, and whether it changed. */
export interface ApplyResult {
  readonly list: VerifiedRevocationList;
  readonly applied: boolean;
}

/**
 * The lock's update rule for one scope. `current` is the list the lock keeps for `candidate.scope`
 * (null if none); `candidate` must already be verified ({@link verifyRevocationList}).
 *
 * - A different scope → LK_SCOPE_MISMATCH (the caller picked the wrong current list).
 * - version ≤ current's → ignored (`applied: false`): replays and old lists are normal, not errors.
 * - From a delegate: a link of its chain revoked by the current or the candidate list →
 *   LK_SIGNER_REFUSED; a list that drops any revoked serial of the current one →
 *   LK_REVOCATION_NOT_SUPERSET. Only the owner may remove entries (pruning of expired keys).
 * - Otherwise the candidate replaces the current list.
 */
export function applyNewer(
  current: VerifiedRevocationList | null,
  candidate: VerifiedRevocationList,
): ApplyResult {
  if (
    current !== null &&
    (current.scope.kind !== candidate.scope.kind || current.scope.id !== candidate.scope.id)
  ) {
    throw new LatchkeyError(
      "LK_SCOPE_MISMATCH",
      "the candidate list is for another scope than the current one",
    );
  }
  if (current !== null && candidate.version <= current.version) return { list: current, applied: false };
  if (candidate.signer === "delegate") {
    for (const s of candidate.signerSerials) {
      if (isRevoked(current, s) || isRevoked(candidate, s)) {
        throw new LatchkeyError("LK_SIGNER_REFUSED", "the list's signer is revoked");
      }
    }
    if (current !== null && !coversRanges(candidate.ranges, current.ranges)) {
      throw new LatchkeyError(
        "LK_REVOCATION_NOT_SUPERSET",
        "a delegate's list must keep every revocation of the current list",
      );
    }
  }
  return { list: candidate, applied: true };
}

/**
 * The revocation horizon: how old the lock's newest list is at `now` (now − iat, never negative), or
 * null when the lock has none. A lock holding a site list and a lock list reports the larger of the two.
 */
export function revocationHorizon(
  list: Pick<RevocationList, "issuedAt"> | null,
  now: EpochMs,
): Milliseconds | null {
  if (list === null) return null;
  return Math.max(0, now - list.issuedAt * 1000) as Milliseconds;
}
