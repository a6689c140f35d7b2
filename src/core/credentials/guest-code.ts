/**
 * Offline guest codes, format LK-GC1 (spec: docs/protocol/guest-codes.md; decision: docs/decisions/0005).
 *
 * A guest code is an ℓ-digit decimal string (12 by default) that an issuer computes with nothing but its
 * issuer key, and that the lock checks with nothing but the same key and its clock: no list of issued
 * codes. The code is `V = p · T + τ`, zero-padded to ℓ digits, where
 * - `p` (the payload index, 0 ≤ p < {@link PAYLOAD_COUNT}) names the kind and the window *relative to the
 *   time grid* (a residue `r` of the start unit modulo a period `R`, and a length `n`);
 * - `T = ⌊10^ℓ / PAYLOAD_COUNT⌋`, and `τ = be48(HMAC-SHA-256(K, msg)[0..6]) mod T` is the tag, with `msg`
 *   binding ℓ, `p` and the *absolute* start unit `S`. The lock recovers `S` as the latest unit ≤ now + δ
 *   congruent to `r` (mod R): one candidate, no search.
 *
 * Times are local wall-clock minutes of the lock's zone (`LocalTime.localEpochMinutes`, the scale
 * schedules use), so "09:00–12:00" means the same on both sides of a daylight-saving change.
 *
 * Keys: `K = HKDF-SHA-256(codeSecret, salt, info(lockId, issuerId, epoch))` (RFC 5869), one per issuer and
 * epoch, so one issuer is cut off (or everything it issued so far, by raising its epoch) without touching
 * the others.
 *
 * Pure: HMAC comes in through {@link CryptoPort}; no clock, no randomness.
 */
import { type CryptoPort, concatBytes, toHex, utf8 } from "../crypto.ts";
import { LatchkeyError } from "../errors.ts";
import { hkdfSha256 } from "../hkdf.ts";
import { civilFromDays, daysFromCivil, parseLocalDateTime } from "../schedule.ts";
import type { EpochMs } from "../units.ts";

/** The format's version tag: in the HKDF salt, every MAC input and the code id input. */
export const GUEST_CODE_FORMAT = "LK-GC1";
/** Default code length (digits). See decision 0005 for why 12 and not 10. */
export const GUEST_CODE_DEFAULT_DIGITS = 12;
/** Shortest allowed code length. 10 digits works but is 100× easier to guess (see the spec § 6). */
export const GUEST_CODE_MIN_DIGITS = 10;
/** Longest allowed code length (10^15 < 2^53, so codes are exact in a double). */
export const GUEST_CODE_MAX_DIGITS = 15;
/** Default clock-drift tolerance at window edges, minutes. */
export const GUEST_CODE_DEFAULT_DRIFT_MINUTES = 2;
/** Largest drift tolerance the format allows (the residue periods R are sized for it), minutes. */
export const GUEST_CODE_MAX_DRIFT_MINUTES = 15;
/** At most this many issuer keys are tried per entry (bounds the work and the false-accept rate). */
export const GUEST_CODE_MAX_ISSUER_KEYS = 8;

const MIN_PER_DAY = 1440;
const MIN_PER_WEEK = 10_080;
/** 1970-01-05 (day 4) was a Monday: weeks start on Mondays. */
const WEEK_OFFSET_MIN = 4 * MIN_PER_DAY;
const TWO_POW_32 = 2 ** 32;

export type GuestCodeKind = "window" | "oneTime" | "uses" | "firstUse" | "recurring";
/** The time grid a code's start and length are counted on: minute, quarter hour, hour, day, week. */
export type GridLevel = "m" | "q" | "h" | "d" | "w";

/** A time grid: unit `minutes` long, aligned at `offset`; lengths 1..maxN units; residues modulo R. */
interface Grid {
  readonly level: GridLevel;
  readonly minutes: number;
  readonly offset: number;
  readonly maxN: number;
  /** R = maxN + ⌈2·δmax / unit⌉ + 1: the smallest period for which "latest S ≤ now + δ" is unique. */
  readonly R: number;
}

function grid(level: GridLevel, minutes: number, offset: number, maxN: number): Grid {
  return {
    level,
    minutes,
    offset,
    maxN,
    R: maxN + Math.ceil((2 * GUEST_CODE_MAX_DRIFT_MINUTES) / minutes) + 1,
  };
}

const G_M = grid("m", 1, 0, 60); // 1 min … 1 h, to the minute
const G_Q = grid("q", 15, 0, 96); // 15 min … 24 h, on quarter hours
const G_H = grid("h", 60, 0, 168); // 1 h … 7 days, on the hour
const G_D = grid("d", MIN_PER_DAY, 0, 92); // 1 … 92 days, midnight to midnight
const G_W = grid("w", MIN_PER_WEEK, WEEK_OFFSET_MIN, 53); // 1 … 53 weeks, Monday to Monday
const G_D31 = grid("d", MIN_PER_DAY, 0, 31); // 1 … 31 days (one-time, use-limited, first-use)

/** Allowed use counts of a use-limited code. */
export const GUEST_CODE_USES = [2, 3, 5, 10] as const;
/** Allowed durations of a first-use code, minutes: 1 h, 4 h, 24 h, 7 days. */
export const GUEST_CODE_FIRST_USE_MINUTES = [60, 240, 1440, 10_080] as const;
/** Recurring codes: the day sets (Matter DaysMaskMap: bit 0 Sunday … bit 6 Saturday), by preset index. */
export const GUEST_CODE_DAY_MASKS = [
  0x7f, // every day
  0x3e, // Monday–Friday
  0x41, // Saturday, Sunday
  0x01, // Sunday
  0x02, // Monday
  0x04, // Tuesday
  0x08, // Wednesday
  0x10, // Thursday
  0x20, // Friday
  0x40, // Saturday
  0x2a, // Monday, Wednesday, Friday
  0x14, // Tuesday, Thursday
  0x7e, // Monday–Saturday
  0x12, // Monday, Thursday
  0x24, // Tuesday, Friday
  0x1f, // Sunday–Thursday
] as const;
/** Recurring codes: allowed occurrence lengths, hours (an occurrence may cross midnight). */
export const GUEST_CODE_RECURRING_HOURS = [1, 2, 3, 4, 6, 8, 10, 12] as const;
/** Recurring codes: allowed date ranges, whole months. */
export const GUEST_CODE_RECURRING_MONTHS = [1, 2, 3, 6, 12] as const;
/** Residue period of the month index for recurring ranges (≥ 12 + 1). */
const MONTH_R = 13;

type Family =
  | { readonly kind: "window" | "oneTime"; readonly grid: Grid; readonly base: number; readonly size: number }
  | {
      readonly kind: "uses";
      readonly uses: number;
      readonly grid: Grid;
      readonly base: number;
      readonly size: number;
    }
  | {
      readonly kind: "firstUse";
      readonly durationMinutes: number;
      readonly grid: Grid;
      readonly base: number;
      readonly size: number;
    }
  | { readonly kind: "recurring"; readonly base: number; readonly size: number };

const RECURRING_SIZE =
  GUEST_CODE_DAY_MASKS.length *
  24 *
  GUEST_CODE_RECURRING_HOURS.length *
  MONTH_R *
  GUEST_CODE_RECURRING_MONTHS.length;

/** The payload families in index order (the order is part of the format). */
const FAMILIES: readonly Family[] = (() => {
  const out: Family[] = [];
  let base = 0;
  const leveled = (f: (b: number, size: number) => Family, g: Grid): void => {
    const size = g.R * g.maxN;
    out.push(f(base, size));
    base += size;
  };
  for (const g of [G_M, G_Q, G_H, G_D, G_W])
    leveled((b, size) => ({ kind: "window", grid: g, base: b, size }), g);
  for (const g of [G_M, G_Q, G_D31]) leveled((b, size) => ({ kind: "oneTime", grid: g, base: b, size }), g);
  for (const uses of GUEST_CODE_USES)
    leveled((b, size) => ({ kind: "uses", uses, grid: G_D31, base: b, size }), G_D31);
  for (const durationMinutes of GUEST_CODE_FIRST_USE_MINUTES) {
    leveled((b, size) => ({ kind: "firstUse", durationMinutes, grid: G_D31, base: b, size }), G_D31);
  }
  out.push({ kind: "recurring", base, size: RECURRING_SIZE });
  return out;
})();

/** Number of distinct payloads (the `p` range) in LK-GC1: 278,938. */
export const PAYLOAD_COUNT: number = FAMILIES.reduce((n, f) => n + f.size, 0);

/** Tag modulus T for a code length: ⌊10^ℓ / PAYLOAD_COUNT⌋ (3,585,025 at 12 digits). */
export function tagModulus(digits: number): number {
  assertDigits(digits);
  return Math.floor(10 ** digits / PAYLOAD_COUNT);
}

function assertDigits(digits: number): void {
  if (!Number.isInteger(digits) || digits < GUEST_CODE_MIN_DIGITS || digits > GUEST_CODE_MAX_DIGITS) {
    throw invalid(`code length must be ${GUEST_CODE_MIN_DIGITS} to ${GUEST_CODE_MAX_DIGITS} digits`, {
      digits,
    });
  }
}

function assertDrift(drift: number): void {
  if (!Number.isInteger(drift) || drift < 0 || drift > GUEST_CODE_MAX_DRIFT_MINUTES) {
    throw invalid(`drift tolerance must be 0 to ${GUEST_CODE_MAX_DRIFT_MINUTES} minutes`, { drift });
  }
}

function invalid(detail: string, data?: Record<string, unknown>): LatchkeyError {
  return new LatchkeyError("LK_GUESTCODE_INVALID", detail, data);
}

// ------------------------------------------------------------------ keys (RFC 5869)

export { hkdfSha256 } from "../hkdf.ts";

/** HKDF salt of every LK-GC1 issuer key. */
export const ISSUER_KEY_SALT = "latchkey/guest-code/v1";

/**
 * The issuer key K(lock, issuer, epoch) = HKDF-SHA-256(IKM = codeSecret, salt = "latchkey/guest-code/v1",
 * info = "LK-GC1" ‖ 0x00 ‖ lockId ‖ 0x00 ‖ issuerId ‖ 0x00 ‖ u16be(epoch), L = 32) (RFC 5869).
 *
 * @param codeSecret the hub's 32-byte guest-code secret (never leaves the hub)
 * @param epoch 0..65535; raising an issuer's minimum epoch at the lock revokes every code of older epochs
 * @throws LatchkeyError `LK_GUESTCODE_INVALID` on a short secret, empty ids or a bad epoch
 */
export function deriveIssuerKey(
  crypto: CryptoPort,
  codeSecret: Uint8Array,
  lockId: string,
  issuerId: string,
  epoch: number,
): Uint8Array {
  if (codeSecret.length < 32) throw invalid("the guest-code secret must be at least 32 bytes");
  if (lockId.length === 0 || issuerId.length === 0 || lockId.includes("\0") || issuerId.includes("\0")) {
    throw invalid("lock and issuer ids must be non-empty and NUL-free");
  }
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > 0xffff)
    throw invalid("epoch must be 0..65535", { epoch });
  const zero = Uint8Array.of(0);
  const info = concatBytes(
    utf8(GUEST_CODE_FORMAT),
    zero,
    utf8(lockId),
    zero,
    utf8(issuerId),
    zero,
    Uint8Array.of(epoch >>> 8, epoch & 0xff),
  );
  return hkdfSha256(crypto, codeSecret, utf8(ISSUER_KEY_SALT), info, 32);
}

// ------------------------------------------------------------------ MAC and code id

function u32(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

const TAG_PREFIX = utf8(GUEST_CODE_FORMAT);
const ID_PREFIX = utf8(`${GUEST_CODE_FORMAT}-id`);

/** The MAC input: "LK-GC1" ‖ u8(ℓ) ‖ u32be(p) ‖ u32be(S). */
export function tagInput(digits: number, payloadIndex: number, startUnit: number): Uint8Array {
  return concatBytes(TAG_PREFIX, Uint8Array.of(digits), u32(payloadIndex), u32(startUnit));
}

/** τ = (first 6 bytes of HMAC-SHA-256(K, tagInput) as a 48-bit big-endian integer) mod T. */
export function computeTag(
  crypto: CryptoPort,
  key: Uint8Array,
  digits: number,
  p: number,
  s: number,
): number {
  const mac = crypto.hmacSha256(key, tagInput(digits, p, s));
  const hi = (mac[0]! << 8) | mac[1]!;
  const lo = ((mac[2]! << 24) | (mac[3]! << 16) | (mac[4]! << 8) | mac[5]!) >>> 0;
  return (hi * TWO_POW_32 + lo) % tagModulus(digits);
}

/** The code id (audit "serial"): hex of HMAC-SHA-256(K, "LK-GC1-id" ‖ u8(ℓ) ‖ u32be(p) ‖ u32be(S))[0..8]. */
export function computeCodeId(
  crypto: CryptoPort,
  key: Uint8Array,
  digits: number,
  p: number,
  s: number,
): string {
  const mac = crypto.hmacSha256(key, concatBytes(ID_PREFIX, Uint8Array.of(digits), u32(p), u32(s)));
  return toHex(mac.subarray(0, 8));
}

// ------------------------------------------------------------------ time helpers (local minutes)

const floorDiv = (a: number, b: number): number => Math.floor(a / b);
const mod = (a: number, b: number): number => ((a % b) + b) % b;

/** Month index (months since 1970-01) of a local day number. */
function monthOfDay(day: number): number {
  const c = civilFromDays(day);
  return (c.year - 1970) * 12 + (c.month - 1);
}

/** Local day number of the first day of month index `m`. */
function monthStartDay(m: number): number {
  return daysFromCivil(1970 + floorDiv(m, 12), mod(m, 12) + 1, 1);
}

/** Local minutes → `YYYY-MM-DDTHH:MM`. */
export function formatLocalMinutes(minutes: number): string {
  const day = floorDiv(minutes, MIN_PER_DAY);
  const c = civilFromDays(day);
  const m = minutes - day * MIN_PER_DAY;
  const p2 = (n: number) => String(n).padStart(2, "0");
  return `${String(c.year).padStart(4, "0")}-${p2(c.month)}-${p2(c.day)}T${p2(Math.floor(m / 60))}:${p2(m % 60)}`;
}

/** The latest unit ≤ u congruent to r (mod R). */
function latest(r: number, R: number, u: number): number {
  return u - mod(u - r, R);
}

// ------------------------------------------------------------------ payloads

/** What a code grants, as decoded (times in local minutes; `to` exclusive). */
export interface GuestCodeParams {
  readonly kind: GuestCodeKind;
  readonly level: GridLevel | "month";
  readonly payloadIndex: number;
  /** Absolute start unit S bound by the MAC (grid units, or the month index for recurring). */
  readonly startUnit: number;
  /** Window (activation window for first-use; the date range's first and end day for recurring). */
  readonly from: number;
  readonly to: number;
  readonly uses?: number;
  readonly durationMinutes?: number;
  readonly recurring?: {
    readonly daysMask: number;
    readonly startHour: number;
    readonly lengthHours: number;
    readonly months: number;
  };
}

function familyOf(p: number): Family {
  // 17 families: a linear scan is as fast as anything else.
  for (const f of FAMILIES) if (p < f.base + f.size) return f;
  throw new LatchkeyError("LK_INTERNAL", "payload index out of range");
}

/** Decode payload p (no time yet): residue and length, or the recurring fields. */
function unpack(p: number):
  | { f: Exclude<Family, { kind: "recurring" }>; r: number; n: number }
  | {
      f: Extract<Family, { kind: "recurring" }>;
      mask: number;
      hour: number;
      len: number;
      r: number;
      k: number;
    } {
  const f = familyOf(p);
  let i = p - f.base;
  if (f.kind !== "recurring") return { f, r: Math.floor(i / f.grid.maxN), n: (i % f.grid.maxN) + 1 };
  const kIdx = i % GUEST_CODE_RECURRING_MONTHS.length;
  i = Math.floor(i / GUEST_CODE_RECURRING_MONTHS.length);
  const r = i % MONTH_R;
  i = Math.floor(i / MONTH_R);
  const lenIdx = i % GUEST_CODE_RECURRING_HOURS.length;
  i = Math.floor(i / GUEST_CODE_RECURRING_HOURS.length);
  const hour = i % 24;
  const maskIdx = Math.floor(i / 24);
  return {
    f,
    mask: GUEST_CODE_DAY_MASKS[maskIdx]!,
    hour,
    len: GUEST_CODE_RECURRING_HOURS[lenIdx]!,
    r,
    k: GUEST_CODE_RECURRING_MONTHS[kIdx]!,
  };
}

/** Where `now` falls relative to a code: usable, not yet, over, or (recurring) between occurrences. */
export type GuestCodePhase = "valid" | "before" | "after" | "offHours";

/** The parameters of payload p anchored at start unit S, and the phase at local minute `now`. */
function materialise(
  p: number,
  s: number,
  now: number,
  drift: number,
): { params: GuestCodeParams; phase: GuestCodePhase } {
  const u = unpack(p);
  if (u.f.kind !== "recurring" && "n" in u) {
    const g = u.f.grid;
    const from = s * g.minutes + g.offset;
    const to = (s + u.n) * g.minutes + g.offset;
    const phase: GuestCodePhase = now < from - drift ? "before" : now >= to + drift ? "after" : "valid";
    const params: GuestCodeParams = {
      kind: u.f.kind,
      level: g.level,
      payloadIndex: p,
      startUnit: s,
      from,
      to,
      ...(u.f.kind === "uses" ? { uses: u.f.uses } : {}),
      ...(u.f.kind === "firstUse" ? { durationMinutes: u.f.durationMinutes } : {}),
    };
    return { params, phase };
  }
  if (!("mask" in u)) throw new LatchkeyError("LK_INTERNAL", "unreachable");
  const firstDay = monthStartDay(s);
  const endDay = monthStartDay(s + u.k);
  const from = firstDay * MIN_PER_DAY;
  const to = endDay * MIN_PER_DAY;
  let phase: GuestCodePhase;
  if (now < from + u.hour * 60 - drift) phase = "before";
  // The last occurrence starts on the range's last day and ends (hour + len) h after that day's midnight.
  else if (now >= to + (u.hour + u.len - 24) * 60 + drift) phase = "after";
  else {
    phase = "offHours";
    const top = floorDiv(now + drift, MIN_PER_DAY);
    for (let d = top - 1; d <= top; d++) {
      if (d < firstDay || d >= endDay) continue;
      if ((u.mask & (1 << mod(d + 4, 7))) === 0) continue;
      const start = d * MIN_PER_DAY + u.hour * 60;
      if (now >= start - drift && now < start + u.len * 60 + drift) phase = "valid";
    }
  }
  return {
    params: {
      kind: "recurring",
      level: "month",
      payloadIndex: p,
      startUnit: s,
      from,
      to,
      recurring: { daysMask: u.mask, startHour: u.hour, lengthHours: u.len, months: u.k },
    },
    phase,
  };
}

/** The candidate start unit for payload p at local minute `now`: the latest S ≤ unit(now + δ) with S ≡ r (mod R). */
function candidateStart(p: number, now: number, drift: number): { s: number; period: number } {
  const u = unpack(p);
  if (u.f.kind !== "recurring" && "n" in u) {
    const g = u.f.grid;
    return { s: latest(u.r, g.R, floorDiv(now + drift - g.offset, g.minutes)), period: g.R };
  }
  return { s: latest(u.r, MONTH_R, monthOfDay(floorDiv(now + drift, MIN_PER_DAY))), period: MONTH_R };
}

/**
 * Is payload `p` usable at local minute `now` (for a fresh code, whatever its tag)? This is what a
 * random guess must hit before its tag even matters. Throws nothing; false for p outside the format.
 */
export function payloadValidAt(
  p: number,
  now: number,
  drift: number = GUEST_CODE_DEFAULT_DRIFT_MINUTES,
): boolean {
  if (!Number.isInteger(p) || p < 0 || p >= PAYLOAD_COUNT) return false;
  const { s } = candidateStart(p, now, drift);
  return s >= 0 && materialise(p, s, now, drift).phase === "valid";
}

/**
 * How many payloads are usable at local minute `now` (a fresh code of each): W_now in the spec's
 * false-accept bound P = I · W_now / 10^ℓ. About 45,000 at the default drift (42,000–48,000 by hour and weekday). Loops over every payload
 * (≈ 150 ms); for documentation and tests.
 */
export function countValidPayloads(now: number, drift: number = GUEST_CODE_DEFAULT_DRIFT_MINUTES): number {
  let count = 0;
  for (let p = 0; p < PAYLOAD_COUNT; p++) if (payloadValidAt(p, now, drift)) count++;
  return count;
}

// ------------------------------------------------------------------ lock side: decode

/** One issuer key the lock tries. */
export interface IssuerKey {
  readonly issuerId: string;
  readonly epoch: number;
  readonly key: Uint8Array;
}

export type GuestCodeDecode =
  /** Not ℓ digits, or a payload index outside the format: counts as a wrong entry. */
  | { readonly status: "malformed" }
  /** Well-formed but no issuer's tag matches: a wrong entry. */
  | { readonly status: "noMatch" }
  | {
      readonly status: "match";
      readonly issuerId: string;
      readonly epoch: number;
      readonly codeId: string;
      readonly params: GuestCodeParams;
      readonly phase: GuestCodePhase;
    };

/**
 * Decode and authenticate a typed guest code at local minute `now` (docs/protocol/guest-codes.md § 4).
 *
 * For every issuer key (at most {@link GUEST_CODE_MAX_ISSUER_KEYS}) the tag of the current candidate S is
 * computed, with no early exit; only if none matches, the tags of the next candidate (S + R, reported as
 * phase `before`). Work: I HMAC-SHA-256 (+1 for the code id) for a code authentic now, 2·I for anything
 * else. Never throws for any `digits` string.
 *
 * @param digits what was typed
 * @param now the lock's local wall-clock minute (`localTimeIn(zone, trustedNow).localEpochMinutes`)
 * @param opts `digits` ℓ (default 12), `driftMinutes` δ (default 2)
 * @throws LatchkeyError `LK_GUESTCODE_INVALID` only for a bad ℓ, δ or more than 8 keys (configuration)
 */
export function decodeGuestCode(
  crypto: CryptoPort,
  keys: readonly IssuerKey[],
  digits: string,
  now: number,
  opts: { digits?: number; driftMinutes?: number } = {},
): GuestCodeDecode {
  const len = opts.digits ?? GUEST_CODE_DEFAULT_DIGITS;
  const drift = opts.driftMinutes ?? GUEST_CODE_DEFAULT_DRIFT_MINUTES;
  assertDigits(len);
  assertDrift(drift);
  if (keys.length > GUEST_CODE_MAX_ISSUER_KEYS) throw invalid("too many issuer keys", { keys: keys.length });
  if (typeof digits !== "string" || digits.length !== len || !/^\d+$/.test(digits))
    return { status: "malformed" };
  const T = tagModulus(len);
  const v = Number(digits);
  const p = Math.floor(v / T);
  const tau = v - p * T;
  if (p >= PAYLOAD_COUNT || !Number.isSafeInteger(now)) return { status: "malformed" };
  const { s, period } = candidateStart(p, now, drift);
  const s2 = s + period;
  // Pass 1: the current candidate S under every key, with no early exit, so the time taken does not
  // depend on which key matched. Pass 2 (only when pass 1 found nothing): the next candidate S + R under
  // every key, to tell an early guest ("not yet valid") from a wrong code. The only timing difference is
  // between "authentic now" and not, which the door itself shows.
  let hit: { key: IssuerKey; s: number } | null = null;
  for (const cand of [s, s2]) {
    if (cand < 0 || cand >= TWO_POW_32) continue;
    for (const k of keys) {
      const t = computeTag(crypto, k.key, len, p, cand);
      if (hit === null && t === tau) hit = { key: k, s: cand };
    }
    if (hit !== null) break;
  }
  if (hit === null) return { status: "noMatch" };
  const { params, phase } = materialise(p, hit.s, now, drift);
  return {
    status: "match",
    issuerId: hit.key.issuerId,
    epoch: hit.key.epoch,
    codeId: computeCodeId(crypto, hit.key.key, len, p, hit.s),
    params,
    phase,
  };
}

// ------------------------------------------------------------------ lock side: state

/** The lock's per-code record (only for codes that were used with a limit, or revoked). */
export interface GuestCodeUsage {
  readonly issuerId: string;
  readonly epoch: number;
  readonly codeId: string;
  readonly revoked: boolean;
  /** Grants so far (one-time, use-limited). */
  readonly uses: number;
  /** First grant (first-use codes), ms since epoch. */
  readonly firstUsedAt: EpochMs | null;
  /** Local minute after which the code can never pass again, so the record can be pruned. */
  readonly dropAfter: number;
}

/** Why a decoded, authentic code is refused by the lock's state or time. */
export type GuestCodeRefusal = "revoked" | "used_up" | "expired" | "not_yet_valid" | "outside_schedule";

/**
 * The last local minute a code of these parameters could pass, plus drift: its prune point. For a
 * first-use code that was used, the end of its duration (plus an hour for a daylight-saving shift).
 */
export function dropAfterOf(
  params: GuestCodeParams,
  drift: number,
  firstUseLocal: number | null = null,
): number {
  if (params.kind === "recurring") return params.to + 12 * 60 + drift;
  if (params.kind === "firstUse" && firstUseLocal !== null) {
    return Math.max(params.to, firstUseLocal + (params.durationMinutes ?? 0) + 60) + drift;
  }
  return params.to + drift;
}

/**
 * Apply the lock's state to an authentic code (docs/protocol/guest-codes.md § 5). Pure.
 *
 * @param usage the stored record for this code id, if any
 * @param now trusted time (ms) and `nowLocal` its local minute
 * @param prunedThrough records with dropAfter ≤ this were pruned: such codes are refused as expired
 * @returns a grant with the record to store in the same transaction as the audit event (null: nothing to
 *   store), or a refusal reason
 */
export function evaluateGuestCode(
  match: Extract<GuestCodeDecode, { status: "match" }>,
  usage: GuestCodeUsage | undefined,
  now: EpochMs,
  nowLocal: number,
  drift: number,
  prunedThrough: number,
): { ok: true; record: GuestCodeUsage | null } | { ok: false; reason: GuestCodeRefusal } {
  const { params, phase } = match;
  if (usage?.revoked) return { ok: false, reason: "revoked" };
  const base = { issuerId: match.issuerId, epoch: match.epoch, codeId: match.codeId, revoked: false };
  if (params.kind === "firstUse" && usage?.firstUsedAt != null) {
    const until = usage.firstUsedAt + ((params.durationMinutes ?? 0) + drift) * 60_000;
    return now < until ? { ok: true, record: null } : { ok: false, reason: "expired" };
  }
  if (dropAfterOf(params, drift) <= prunedThrough) return { ok: false, reason: "expired" };
  if (phase === "before") return { ok: false, reason: "not_yet_valid" };
  if (phase === "after") return { ok: false, reason: "expired" };
  if (phase === "offHours") return { ok: false, reason: "outside_schedule" };
  switch (params.kind) {
    case "window":
    case "recurring":
      return { ok: true, record: null };
    case "oneTime":
    case "uses": {
      const limit = params.kind === "oneTime" ? 1 : (params.uses ?? 1);
      const used = usage?.uses ?? 0;
      if (used >= limit) return { ok: false, reason: "used_up" };
      return {
        ok: true,
        record: {
          ...base,
          uses: used + 1,
          firstUsedAt: usage?.firstUsedAt ?? now,
          dropAfter: dropAfterOf(params, drift),
        },
      };
    }
    case "firstUse":
      return {
        ok: true,
        record: { ...base, uses: 1, firstUsedAt: now, dropAfter: dropAfterOf(params, drift, nowLocal) },
      };
  }
}

// ------------------------------------------------------------------ issuer side

/** What an issuer asks for. Local date-times are `YYYY-MM-DDTHH:MM` in the lock's zone; `to` is exclusive. */
export type GuestCodeRequest =
  | { readonly kind: "window" | "oneTime"; readonly from: string; readonly to: string }
  | { readonly kind: "uses"; readonly from: string; readonly to: string; readonly uses: number }
  | {
      readonly kind: "firstUse";
      readonly from: string;
      readonly to: string;
      readonly durationMinutes: number;
    }
  | {
      readonly kind: "recurring";
      /** Matter DaysMaskMap; must be one of {@link GUEST_CODE_DAY_MASKS}. */
      readonly daysMask: number;
      readonly startHour: number;
      /** One of {@link GUEST_CODE_RECURRING_HOURS}. */
      readonly lengthHours: number;
      /** First and last day of the range, `YYYY-MM-DD` (widened to whole months). */
      readonly fromDate: string;
      readonly toDate: string;
    };

/** A payload anchored in time: what {@link issueGuestCode} turns into digits. */
export interface GuestCodePlan {
  readonly payloadIndex: number;
  readonly startUnit: number;
  readonly params: GuestCodeParams;
  /** The window is exactly what was asked (false: widened to the grid). */
  readonly exact: boolean;
}

function parseLocal(s: string, field: string): number {
  try {
    return parseLocalDateTime(s);
  } catch {
    throw invalid(`${field} is not a real local date-time YYYY-MM-DDTHH:MM (the lock's time zone)`, {
      field,
      value: s,
    });
  }
}

function leveledPlans(families: readonly Family[], from: number, to: number): GuestCodePlan[] {
  const plans: { plan: GuestCodePlan; extra: number; unit: number }[] = [];
  for (const f of families) {
    if (f.kind === "recurring") continue;
    const g = f.grid;
    const s = floorDiv(from - g.offset, g.minutes);
    const e = Math.ceil((to - g.offset) / g.minutes);
    const n = e - s;
    if (n < 1 || n > g.maxN || s < 0 || s >= TWO_POW_32) continue;
    const p = f.base + mod(s, g.R) * g.maxN + (n - 1);
    const { params } = materialise(p, s, from, 0);
    const extra = from - params.from + (params.to - to);
    plans.push({
      plan: { payloadIndex: p, startUnit: s, params, exact: extra === 0 },
      extra,
      unit: g.minutes,
    });
  }
  // Tightest window first; among equally tight ones the coarser grid (its finer twins stay free as variants).
  plans.sort((a, b) => a.extra - b.extra || b.unit - a.unit);
  return plans.map((x) => x.plan);
}

/**
 * Every way LK-GC1 can express a request, best first (the tightest window that covers it; the issuer
 * takes the first one not already issued, so two identical requests get different codes).
 *
 * @throws LatchkeyError `LK_GUESTCODE_INVALID` on bad fields, an empty window, or one no grid can express
 *   (e.g. a window longer than 53 weeks, a use-limited window longer than 31 days)
 */
export function planGuestCode(req: GuestCodeRequest): GuestCodePlan[] {
  if (req.kind === "recurring") return [planRecurring(req)];
  const from = parseLocal(req.from, "from");
  const to = parseLocal(req.to, "to");
  if (to <= from) throw invalid("the window must end after it starts", { from: req.from, to: req.to });
  let families: Family[];
  switch (req.kind) {
    case "window":
    case "oneTime":
      families = FAMILIES.filter((f) => f.kind === req.kind);
      break;
    case "uses":
      if (!(GUEST_CODE_USES as readonly number[]).includes(req.uses)) {
        throw invalid(`uses must be one of ${GUEST_CODE_USES.join(", ")}`, { uses: req.uses });
      }
      families = FAMILIES.filter((f) => f.kind === "uses" && f.uses === req.uses);
      break;
    case "firstUse":
      if (!(GUEST_CODE_FIRST_USE_MINUTES as readonly number[]).includes(req.durationMinutes)) {
        throw invalid(`durationMinutes must be one of ${GUEST_CODE_FIRST_USE_MINUTES.join(", ")}`, {
          durationMinutes: req.durationMinutes,
        });
      }
      families = FAMILIES.filter((f) => f.kind === "firstUse" && f.durationMinutes === req.durationMinutes);
      break;
  }
  const plans = leveledPlans(families, from, to);
  if (plans.length === 0) {
    throw invalid("no LK-GC1 grid can express this window (too long for this kind)", {
      from: req.from,
      to: req.to,
    });
  }
  return plans;
}

const LOCAL_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

function parseDay(s: string, field: string): number {
  const m = LOCAL_DATE.exec(s);
  if (!m) throw invalid(`${field} must be a date YYYY-MM-DD`, { field, value: s });
  return Math.floor(parseLocal(`${s}T00:00`, field) / MIN_PER_DAY);
}

function planRecurring(req: Extract<GuestCodeRequest, { kind: "recurring" }>): GuestCodePlan {
  const maskIdx = (GUEST_CODE_DAY_MASKS as readonly number[]).indexOf(req.daysMask);
  if (maskIdx < 0) throw invalid("daysMask is not one of the LK-GC1 day sets", { daysMask: req.daysMask });
  if (!Number.isInteger(req.startHour) || req.startHour < 0 || req.startHour > 23) {
    throw invalid("startHour must be 0..23", { startHour: req.startHour });
  }
  const lenIdx = (GUEST_CODE_RECURRING_HOURS as readonly number[]).indexOf(req.lengthHours);
  if (lenIdx < 0) {
    throw invalid(`lengthHours must be one of ${GUEST_CODE_RECURRING_HOURS.join(", ")}`, {
      lengthHours: req.lengthHours,
    });
  }
  const firstDay = parseDay(req.fromDate, "fromDate");
  const lastDay = parseDay(req.toDate, "toDate");
  if (lastDay < firstDay) throw invalid("the date range must not end before it starts");
  const m0 = monthOfDay(firstDay);
  const need = monthOfDay(lastDay) - m0 + 1;
  const kIdx = GUEST_CODE_RECURRING_MONTHS.findIndex((k) => k >= need);
  if (kIdx < 0) throw invalid("a recurring code's range is at most 12 months", { months: need });
  if (m0 < 0) throw invalid("dates before 1970 are not supported");
  const p =
    FAMILIES[FAMILIES.length - 1]!.base +
    (((maskIdx * 24 + req.startHour) * GUEST_CODE_RECURRING_HOURS.length + lenIdx) * MONTH_R +
      mod(m0, MONTH_R)) *
      GUEST_CODE_RECURRING_MONTHS.length +
    kIdx;
  const { params } = materialise(p, m0, firstDay * MIN_PER_DAY, 0);
  const exact = params.from === firstDay * MIN_PER_DAY && params.to === (lastDay + 1) * MIN_PER_DAY;
  return { payloadIndex: p, startUnit: m0, params, exact };
}

/** An issued code: the digits (shown once to the issuer, never stored by the lock) and its description. */
export interface IssuedGuestCode {
  readonly code: string;
  readonly codeId: string;
  readonly plan: GuestCodePlan;
}

/**
 * Issue a code: pick the first plan whose code id is not in `avoid`, MAC it, render ℓ digits.
 * Needs only the issuer key: works with the hub unreachable.
 *
 * @param avoid code ids this issuer already issued (its ledger), so no two issued codes coincide
 * @throws LatchkeyError `LK_GUESTCODE_INVALID` on a bad request or ℓ; `LK_CONFLICT` when every way to
 *   express the request is already issued (shift the window by one minute)
 */
export function issueGuestCode(
  crypto: CryptoPort,
  key: Uint8Array,
  req: GuestCodeRequest,
  opts: { digits?: number; avoid?: ReadonlySet<string> } = {},
): IssuedGuestCode {
  const len = opts.digits ?? GUEST_CODE_DEFAULT_DIGITS;
  assertDigits(len);
  const T = tagModulus(len);
  const plans = planGuestCode(req);
  const best = plans[0]!.params;
  // Variants are other encodings of the very same window; a wider window is never chosen silently.
  for (const plan of plans.filter((x) => x.params.from === best.from && x.params.to === best.to)) {
    const codeId = computeCodeId(crypto, key, len, plan.payloadIndex, plan.startUnit);
    if (opts.avoid?.has(codeId)) continue;
    const tau = computeTag(crypto, key, len, plan.payloadIndex, plan.startUnit);
    const code = String(plan.payloadIndex * T + tau).padStart(len, "0");
    return { code, codeId, plan };
  }
  throw new LatchkeyError(
    "LK_CONFLICT",
    "an identical guest code was already issued; shift the window by a minute",
  );
}

// ------------------------------------------------------------------ issuer-authenticated revocation

/** A request to revoke one code (docs/protocol/guest-codes.md § 5). `dropAfter` is a local minute. */
export interface GuestCodeRevocation {
  readonly issuerId: string;
  readonly epoch: number;
  readonly codeId: string;
  readonly dropAfter: number;
}

const CODE_ID = /^[0-9a-f]{16}$/;

/**
 * The issuer's MAC over a revocation: hex(HMAC-SHA-256(K, "LK-GC1-revoke" ‖ u8(len issuerId) ‖ issuerId ‖
 * u16be(epoch) ‖ codeId as 8 bytes ‖ u32be(dropAfter))). Lets a revocation travel without an API token.
 *
 * @throws LatchkeyError `LK_GUESTCODE_INVALID` on a malformed code id, epoch, issuer id or dropAfter
 */
export function revocationMac(crypto: CryptoPort, key: Uint8Array, r: GuestCodeRevocation): string {
  assertRevocation(r);
  const id = utf8(r.issuerId);
  const codeId = Uint8Array.from(r.codeId.match(/../g)!.map((h) => Number.parseInt(h, 16)));
  const msg = concatBytes(
    utf8(`${GUEST_CODE_FORMAT}-revoke`),
    Uint8Array.of(id.length),
    id,
    Uint8Array.of(r.epoch >>> 8, r.epoch & 0xff),
    codeId,
    u32(r.dropAfter),
  );
  return toHex(crypto.hmacSha256(key, msg));
}

/**
 * Validates a revocation's fields: a 16-hex code id, an epoch 0..65535, an issuer id of 1..64 bytes,
 * and dropAfter a local minute 0..2^32 − 1.
 * @throws LatchkeyError `LK_GUESTCODE_INVALID`
 */
export function assertRevocation(r: GuestCodeRevocation): void {
  if (typeof r.codeId !== "string" || !CODE_ID.test(r.codeId))
    throw invalid("codeId must be 16 lowercase hex digits");
  if (!Number.isInteger(r.epoch) || r.epoch < 0 || r.epoch > 0xffff) throw invalid("epoch must be 0..65535");
  if (typeof r.issuerId !== "string" || r.issuerId.length === 0 || utf8(r.issuerId).length > 64) {
    throw invalid("issuerId must be 1..64 bytes");
  }
  if (!Number.isInteger(r.dropAfter) || r.dropAfter < 0 || r.dropAfter >= TWO_POW_32) {
    throw invalid("dropAfter must be a local minute 0..2^32 - 1");
  }
}
