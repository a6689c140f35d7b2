/**
 * Authenticator-app codes: HOTP (RFC 4226) and TOTP (RFC 6238), with the accept-once rule, and the
 * otpauth:// Key Uri Format that authenticator apps enrol from. Pure: the HMAC and the random bytes come
 * in through the {@link CryptoPort}. Spec: docs/protocol/totp.md.
 *
 * Units: instants are {@link EpochMs} (milliseconds since the Unix epoch); the time step and T0 are in
 * whole seconds, as in RFC 6238 § 4.1; counters (the RFC's C and T) are plain non-negative integers.
 *
 * Errors are `LK_TOTP_INVALID` (a bad secret, parameter or URI) and never echo a secret or a code.
 */
import { type CryptoPort, type HmacAlgorithm, timingSafeEqual, utf8 } from "../crypto.ts";
import { LatchkeyError } from "../errors.ts";
import type { EpochMs } from "../units.ts";
import { base32Decode, base32Encode } from "./base32.ts";

/** The HMAC hash of an OTP: SHA-1 (RFC 4226, the app default), SHA-256 or SHA-512 (RFC 6238 § 1.2). */
export type TotpAlgorithm = HmacAlgorithm;

/** RFC 6238 § 4.1 X = 30 s, the step every authenticator app uses unless told otherwise. */
export const TOTP_DEFAULT_STEP_SECONDS = 30;
/** RFC 4226 § 5.3: 6 digits, the app default. */
export const TOTP_DEFAULT_DIGITS = 6;
export const TOTP_DEFAULT_ALGORITHM: TotpAlgorithm = "SHA-1";
/** RFC 6238 § 5.2: at most one step of network delay is RECOMMENDED; we allow one step each way. */
export const TOTP_DEFAULT_WINDOW = 1;
/** RFC 4226 § 5.3: "a 6-digit code at a minimum and possibly 7 and 8-digit code". */
export const TOTP_MIN_DIGITS = 6;
export const TOTP_MAX_DIGITS = 8;
/** RFC 4226 § 4 (R6): the shared secret MUST be at least 128 bits. */
export const TOTP_MIN_SECRET_BYTES = 16;
/** The longest secret accepted: the 64-byte SHA-512 seed of RFC 6238 Appendix B. */
export const TOTP_MAX_SECRET_BYTES = 64;
/** RFC 4226 § 4 (R6) RECOMMENDS 160 bits; what {@link newTotpSecret} makes by default. */
export const TOTP_DEFAULT_SECRET_BYTES = 20;
/** The longest time step accepted, in seconds (one hour). */
export const TOTP_MAX_STEP_SECONDS = 3600;
/** The widest verification window accepted, in steps each way. */
export const TOTP_MAX_WINDOW = 10;
/** The longest otpauth:// URI {@link parseOtpauthUri} reads, and the longest issuer or account name. */
const MAX_URI_CHARS = 2048;
const MAX_NAME_CHARS = 256;

const HMAC_BYTES: Readonly<Record<TotpAlgorithm, number>> = Object.freeze({
  "SHA-1": 20,
  "SHA-256": 32,
  "SHA-512": 64,
});
/** The Key Uri Format's `algorithm` values. */
const URI_ALGORITHM: Readonly<Record<TotpAlgorithm, string>> = Object.freeze({
  "SHA-1": "SHA1",
  "SHA-256": "SHA256",
  "SHA-512": "SHA512",
});
const TWO_POW_32 = 0x1_0000_0000;

/** The TOTP parameters shared by generation and verification (RFC 6238 § 4.1). */
export interface TotpParams {
  /** Time step X in seconds: integer 1..3600, default 30. */
  readonly step?: number;
  /** Code length: 6, 7 or 8, default 6. */
  readonly digits?: number;
  /** HMAC hash, default SHA-1. */
  readonly alg?: TotpAlgorithm;
  /** T0, the Unix time in seconds to start counting steps from: a non-negative integer, default 0. */
  readonly t0?: number;
}

export interface VerifyTotpOptions extends TotpParams {
  /**
   * How many steps before and after the current one also match (RFC 6238 § 5.2): integer 0..10,
   * default 1, so a code is good for the step it was made in and one step (30 s) either side.
   */
  readonly window?: number;
  /**
   * The counter (time step) of the last code this credential accepted, or null if none yet. A code
   * whose counter is at or below it is refused as `replayed`. The caller stores the `counter` of every
   * accepted code durably before acting on it.
   */
  readonly lastAcceptedCounter: number | null;
}

/**
 * A verification result. `counter` is the time step of the accepted code (the newest one in the window
 * if the code matched several) and is what the caller must persist as the new `lastAcceptedCounter`.
 */
export type TotpVerifyResult =
  | { readonly ok: true; readonly counter: number }
  | { readonly ok: false; readonly reason: "format" | "mismatch" | "replayed" };

/** An otpauth:// enrolment: what {@link otpauthUri} writes and {@link parseOtpauthUri} reads. */
export interface OtpauthParams {
  /** The service, shown in the app: non-empty, no ':', no control characters, no leading/trailing space. */
  readonly issuer: string;
  /** The user's name on that service, same rules as the issuer. */
  readonly account: string;
  /** The shared secret, 16..64 bytes. */
  readonly secret: Uint8Array;
  /** Default SHA-1. */
  readonly alg?: TotpAlgorithm;
  /** Default 6. */
  readonly digits?: number;
  /** The time step in seconds, default 30. */
  readonly period?: number;
}

function invalid(detail: string, data?: Record<string, unknown>): LatchkeyError {
  return new LatchkeyError("LK_TOTP_INVALID", detail, data);
}

function isAlgorithm(alg: unknown): alg is TotpAlgorithm {
  return typeof alg === "string" && Object.hasOwn(HMAC_BYTES, alg);
}

function assertSecret(secret: Uint8Array): void {
  if (
    !(secret instanceof Uint8Array) ||
    secret.length < TOTP_MIN_SECRET_BYTES ||
    secret.length > TOTP_MAX_SECRET_BYTES
  ) {
    throw invalid(`a TOTP secret must be ${TOTP_MIN_SECRET_BYTES} to ${TOTP_MAX_SECRET_BYTES} bytes`, {
      field: "secret",
    });
  }
}

function assertDigits(digits: number): void {
  if (!Number.isInteger(digits) || digits < TOTP_MIN_DIGITS || digits > TOTP_MAX_DIGITS) {
    throw invalid(`digits must be ${TOTP_MIN_DIGITS}, 7 or ${TOTP_MAX_DIGITS}`, { field: "digits" });
  }
}

function assertAlgorithm(alg: unknown): asserts alg is TotpAlgorithm {
  if (!isAlgorithm(alg)) throw invalid("algorithm must be SHA-1, SHA-256 or SHA-512", { field: "alg" });
}

function assertStep(step: number): void {
  if (!Number.isInteger(step) || step < 1 || step > TOTP_MAX_STEP_SECONDS) {
    throw invalid(`the time step must be a whole number of seconds from 1 to ${TOTP_MAX_STEP_SECONDS}`, {
      field: "step",
    });
  }
}

/** The parameters with their defaults, checked. */
function resolveParams(p: TotpParams): Required<TotpParams> {
  const step = p.step ?? TOTP_DEFAULT_STEP_SECONDS;
  const digits = p.digits ?? TOTP_DEFAULT_DIGITS;
  const alg = p.alg ?? TOTP_DEFAULT_ALGORITHM;
  const t0 = p.t0 ?? 0;
  assertStep(step);
  assertDigits(digits);
  assertAlgorithm(alg);
  if (!Number.isSafeInteger(t0) || t0 < 0) {
    throw invalid("T0 must be a non-negative whole number of seconds", { field: "t0" });
  }
  return { step, digits, alg, t0 };
}

/**
 * HOTP(K, C) = Truncate(HMAC(K, C)) mod 10^digits, zero-padded (RFC 4226 § 5.3), with the counter C as
 * 8 bytes big-endian (§ 5.1) and dynamic truncation: the low 4 bits of the last MAC byte give an offset,
 * the 4 bytes there with the top bit cleared are a 31-bit number (§ 5.3; worked example § 5.4). The same truncation is used
 * for SHA-256 and SHA-512, as in RFC 6238 Appendix A.
 *
 * `counter` is an integer 0..2^53 − 1 (the safe-integer range; RFC 4226 allows 2^64 − 1). Throws
 * `LK_TOTP_INVALID` on a secret outside 16..64 bytes, digits outside 6..8, an unknown hash or a bad counter.
 */
export function hotp(
  crypto: CryptoPort,
  secret: Uint8Array,
  counter: number,
  digits: number = TOTP_DEFAULT_DIGITS,
  alg: TotpAlgorithm = TOTP_DEFAULT_ALGORITHM,
): string {
  assertSecret(secret);
  assertDigits(digits);
  assertAlgorithm(alg);
  if (!Number.isSafeInteger(counter) || counter < 0) {
    throw invalid("the counter must be an integer from 0 to 2^53 - 1", { field: "counter" });
  }
  const message = new Uint8Array(8);
  const hi = Math.floor(counter / TWO_POW_32);
  const lo = counter >>> 0; // counter mod 2^32, exact for any safe integer
  message[0] = hi >>> 24;
  message[1] = (hi >>> 16) & 0xff;
  message[2] = (hi >>> 8) & 0xff;
  message[3] = hi & 0xff;
  message[4] = lo >>> 24;
  message[5] = (lo >>> 16) & 0xff;
  message[6] = (lo >>> 8) & 0xff;
  message[7] = lo & 0xff;
  const mac = crypto.hmac(alg, secret, message);
  if (mac.length !== HMAC_BYTES[alg]) {
    throw new LatchkeyError("LK_INTERNAL", `the crypto port returned an HMAC-${alg} of the wrong length`);
  }
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary =
    ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(binary % 10 ** digits).padStart(digits, "0");
}

/**
 * The TOTP time-step counter T = floor((unixSeconds − T0) / X) (RFC 6238 § 4.2) for an instant `now` in
 * milliseconds, a step X in seconds (default 30) and T0 in seconds (default 0). Exact for any instant: no
 * floating-point rounding at step boundaries. Throws `LK_TOTP_INVALID` on a bad step or T0, or a `now`
 * that is not finite or is before T0.
 */
export function totpCounter(now: EpochMs, stepSeconds: number = TOTP_DEFAULT_STEP_SECONDS, t0 = 0): number {
  const p = resolveParams({ step: stepSeconds, t0 });
  const elapsedMs = now - p.t0 * 1000;
  if (!Number.isFinite(elapsedMs) || elapsedMs < 0) {
    throw invalid("the time is not finite or is before T0", { field: "now" });
  }
  const stepMs = p.step * 1000;
  // (a - a % b) is an exact multiple of b, so the division is exact: no rounding up near a boundary.
  return (elapsedMs - (elapsedMs % stepMs)) / stepMs;
}

/** The TOTP code at the instant `now` (RFC 6238 § 4.2): HOTP of the secret at {@link totpCounter}. */
export function totpAt(
  crypto: CryptoPort,
  secret: Uint8Array,
  now: EpochMs,
  params: TotpParams = {},
): string {
  const p = resolveParams(params);
  return hotp(crypto, secret, totpCounter(now, p.step, p.t0), p.digits, p.alg);
}

/** Exactly `digits` ASCII digits 0-9. */
function isWellFormedCode(code: unknown, digits: number): code is string {
  if (typeof code !== "string" || code.length !== digits) return false;
  for (let i = 0; i < code.length; i++) {
    const c = code.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/**
 * Verify a TOTP code typed at the instant `now` (RFC 6238 § 5.2).
 *
 * - `format`: the code is not exactly `digits` ASCII digits (no HMAC is computed).
 * - Otherwise the code is compared, in constant time, with the code of every counter from
 *   current − window to current + window (counters below 0 are skipped). All of them are computed and
 *   compared, with no early exit, so the time taken does not say which one matched. The newest
 *   matching counter wins.
 * - `mismatch`: no counter in the window matched.
 * - `replayed`: the newest match is at or below `lastAcceptedCounter`: "the verifier MUST NOT accept
 *   the second attempt of the same OTP" (§ 5.2), and an older code than one already used is refused too.
 * - ok: `counter` is the matching time step; persist it as the new `lastAcceptedCounter` before opening.
 *
 * Throws `LK_TOTP_INVALID` on a bad secret, parameter, window or lastAcceptedCounter (configuration
 * errors, not a wrong code).
 */
export function verifyTotp(
  crypto: CryptoPort,
  secret: Uint8Array,
  code: string,
  now: EpochMs,
  opts: VerifyTotpOptions,
): TotpVerifyResult {
  const p = resolveParams(opts);
  assertSecret(secret);
  const window = opts.window ?? TOTP_DEFAULT_WINDOW;
  if (!Number.isInteger(window) || window < 0 || window > TOTP_MAX_WINDOW) {
    throw invalid(`the window must be a whole number of steps from 0 to ${TOTP_MAX_WINDOW}`, {
      field: "window",
    });
  }
  const last = opts.lastAcceptedCounter;
  if (last !== null && (!Number.isSafeInteger(last) || last < 0)) {
    throw invalid("lastAcceptedCounter must be null or a non-negative integer", {
      field: "lastAcceptedCounter",
    });
  }
  if (!isWellFormedCode(code, p.digits)) return { ok: false, reason: "format" };

  const typed = utf8(code);
  const current = totpCounter(now, p.step, p.t0);
  let newest = -1;
  for (let c = Math.max(0, current - window); c <= current + window; c++) {
    const expected = utf8(hotp(crypto, secret, c, p.digits, p.alg));
    const equal = timingSafeEqual(expected, typed);
    newest = equal ? c : newest;
  }
  if (newest < 0) return { ok: false, reason: "mismatch" };
  if (last !== null && newest <= last) return { ok: false, reason: "replayed" };
  return { ok: true, counter: newest };
}

/**
 * A fresh random TOTP secret of `bytes` bytes (default 20 = 160 bits, RFC 4226 § 4 R6; 16..64 allowed).
 * Store it encrypted at rest; show it to the user only once, in the enrolment URI.
 */
export function newTotpSecret(crypto: CryptoPort, bytes: number = TOTP_DEFAULT_SECRET_BYTES): Uint8Array {
  if (!Number.isInteger(bytes) || bytes < TOTP_MIN_SECRET_BYTES || bytes > TOTP_MAX_SECRET_BYTES) {
    throw invalid(`a TOTP secret must be ${TOTP_MIN_SECRET_BYTES} to ${TOTP_MAX_SECRET_BYTES} bytes`, {
      field: "bytes",
    });
  }
  const secret = crypto.randomBytes(bytes);
  if (secret.length !== bytes) {
    throw new LatchkeyError("LK_INTERNAL", "the crypto port returned the wrong number of random bytes");
  }
  return secret;
}

/** Check an issuer or account name; `field` names it in the error. */
function assertName(name: unknown, field: "issuer" | "account"): asserts name is string {
  if (typeof name !== "string" || name.length === 0 || name.length > MAX_NAME_CHARS) {
    throw invalid(`the ${field} must be 1 to ${MAX_NAME_CHARS} characters`, { field });
  }
  if (name.includes(":")) {
    // Key Uri Format: "Neither issuer nor account name may themselves contain a colon."
    throw invalid(`the ${field} must not contain ':'`, { field });
  }
  if (name.trim() !== name) {
    throw invalid(`the ${field} must not start or end with white space`, { field });
  }
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) throw invalid(`the ${field} must not contain control characters`, { field });
  }
  try {
    encodeURIComponent(name);
  } catch {
    throw invalid(`the ${field} is not well-formed Unicode`, { field });
  }
}

/** The enrolment with defaults filled in, checked. */
function resolveOtpauth(p: OtpauthParams): Required<OtpauthParams> {
  assertName(p.issuer, "issuer");
  assertName(p.account, "account");
  assertSecret(p.secret);
  const params = resolveParams({ alg: p.alg, digits: p.digits, step: p.period });
  return {
    issuer: p.issuer,
    account: p.account,
    secret: p.secret,
    alg: params.alg,
    digits: params.digits,
    period: params.step,
  };
}

/**
 * The otpauth:// URI an authenticator app enrols from (Google Authenticator Key Uri Format):
 *
 *   otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30
 *
 * The label parts and the issuer parameter are percent-encoded as UTF-8 (encodeURIComponent, so a
 * space is %20); the secret is unpadded uppercase base32 (RFC 4648 § 6). All five parameters are always
 * written, defaults included. The URI contains the secret: show it (as a QR code) once, never log it.
 * Throws `LK_TOTP_INVALID` on a bad name, secret or parameter.
 */
export function otpauthUri(params: OtpauthParams): string {
  const p = resolveOtpauth(params);
  const issuer = encodeURIComponent(p.issuer);
  return (
    `otpauth://totp/${issuer}:${encodeURIComponent(p.account)}` +
    `?secret=${base32Encode(p.secret)}&issuer=${issuer}` +
    `&algorithm=${URI_ALGORITHM[p.alg]}&digits=${p.digits}&period=${p.period}`
  );
}

/** RFC 3986 characters (unreserved, reserved, '%'), less '#': a fragment has no meaning here. */
const URI_CHARS = /^[A-Za-z0-9\-._~:/?[\]@!$&'()*+,;=%]*$/;
const URI_PREFIX = "otpauth://totp/";
const QUERY_KEYS = new Set(["secret", "issuer", "algorithm", "digits", "period"]);

function decodeComponent(s: string, field: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw invalid(`the ${field} has a malformed percent-encoding`, { field });
  }
}

/**
 * Parse an otpauth://totp/ URI strictly, for round trips: `parseOtpauthUri(otpauthUri(p))` gives back `p`
 * with its defaults filled in, and every URI this accepts is re-encoded by {@link otpauthUri} to an
 * equivalent one. Throws `LK_TOTP_INVALID` (with `data.field`) unless:
 *
 * - the URI is at most 2048 characters of RFC 3986 URI characters, with no fragment, starts with
 *   `otpauth://totp/` (lowercase; hotp is refused) and has a query;
 * - the label decodes (percent-encoding as UTF-8) to `ACCOUNT` or `ISSUER:ACCOUNT`, the ':' either
 *   literal or %3A, with optional spaces after it; a second ':' is refused;
 * - the query has only `secret` (required, base32 of 16..64 bytes, case-insensitive, '=' padding
 *   optional), `issuer`, `algorithm` (SHA1, SHA256 or SHA512, any case; default SHA1), `digits` (6, 7
 *   or 8; default 6) and `period` (1..3600 seconds; default 30), each at most once, each `key=value`;
 *   '+' is a literal plus (RFC 3986), not a space;
 * - there is an issuer (label prefix or parameter), and if both are given they are equal.
 */
export function parseOtpauthUri(uri: string): Required<OtpauthParams> {
  if (typeof uri !== "string" || uri.length > MAX_URI_CHARS || !URI_CHARS.test(uri)) {
    throw invalid(`an otpauth URI must be at most ${MAX_URI_CHARS} URI characters with no fragment`, {
      field: "uri",
    });
  }
  if (!uri.startsWith(URI_PREFIX)) {
    throw invalid("only otpauth://totp/ URIs are accepted", { field: "uri" });
  }
  const rest = uri.slice(URI_PREFIX.length);
  const q = rest.indexOf("?");
  if (q < 0) throw invalid("the otpauth URI has no parameters", { field: "secret" });

  const label = decodeComponent(rest.slice(0, q), "label");
  const parts = label.split(":");
  if (parts.length > 2) throw invalid("the label has more than one ':'", { field: "label" });
  const labelIssuer = parts.length === 2 ? parts[0]! : undefined;
  const account = parts[parts.length - 1]!.replace(/^ +/, "");

  const found = new Map<string, string>();
  for (const pair of rest.slice(q + 1).split("&")) {
    const eq = pair.indexOf("=");
    if (eq < 0) throw invalid("every parameter must be key=value", { field: "query" });
    const key = pair.slice(0, eq);
    if (!QUERY_KEYS.has(key)) throw invalid("the otpauth URI has an unknown parameter", { field: "query" });
    if (found.has(key)) throw invalid(`the parameter ${key} is repeated`, { field: key });
    found.set(key, decodeComponent(pair.slice(eq + 1), key));
  }

  const secretText = found.get("secret");
  if (secretText === undefined || secretText === "") {
    throw invalid("the otpauth URI has no secret", { field: "secret" });
  }
  let secret: Uint8Array;
  try {
    secret = base32Decode(secretText);
  } catch {
    throw invalid("the secret is not valid base32", { field: "secret" });
  }

  const paramIssuer = found.get("issuer");
  if (labelIssuer !== undefined && paramIssuer !== undefined && labelIssuer !== paramIssuer) {
    throw invalid("the issuer parameter differs from the label's issuer", { field: "issuer" });
  }
  const issuer = paramIssuer ?? labelIssuer;
  if (issuer === undefined) throw invalid("the otpauth URI names no issuer", { field: "issuer" });

  let alg: TotpAlgorithm = TOTP_DEFAULT_ALGORITHM;
  const algText = found.get("algorithm");
  if (algText !== undefined) {
    const entry = Object.entries(URI_ALGORITHM).find(([, v]) => v === algText.toUpperCase());
    if (entry === undefined) {
      throw invalid("algorithm must be SHA1, SHA256 or SHA512", { field: "algorithm" });
    }
    alg = entry[0] as TotpAlgorithm;
  }
  const digitsText = found.get("digits");
  if (digitsText !== undefined && !/^[678]$/.test(digitsText)) {
    throw invalid("digits must be 6, 7 or 8", { field: "digits" });
  }
  const periodText = found.get("period");
  if (periodText !== undefined && !/^[1-9][0-9]{0,3}$/.test(periodText)) {
    throw invalid(`period must be a whole number of seconds from 1 to ${TOTP_MAX_STEP_SECONDS}`, {
      field: "period",
    });
  }
  return resolveOtpauth({
    issuer,
    account,
    secret,
    alg,
    digits: digitsText === undefined ? TOTP_DEFAULT_DIGITS : Number(digitsText),
    period: periodText === undefined ? TOTP_DEFAULT_STEP_SECONDS : Number(periodText),
  });
}
