/**
 * CWT claims (RFC 8392) carried as the payload of a COSE_Sign1 (spec: docs/protocol/envelope.md § "Claims").
 *
 * The payload is a deterministic CBOR map with integer labels: the registered claims iss 1, sub 2,
 * aud 3, exp 4, nbf 5, iat 6, cti 7 (RFC 8392 § 3.1, § 4), and Latchkey's own claims at labels
 * ≤ -65537, the private-use range of the IANA "CBOR Web Token (CWT) Claims" registry. Every envelope
 * carries `lk.kind` (-65537), so a signed revocation list can never be taken for a key.
 */
import type { CryptoPort } from "../crypto.ts";
import { LatchkeyError } from "../errors.ts";
import type { EpochMs, Seconds } from "../units.ts";
import { DEFAULT_MAX_BYTES, decodeStrict, encodeDeterministic } from "./cbor.ts";
import {
  type CoseAlg,
  type KeyResolver,
  type Sign1Limits,
  type Sign1Signer,
  signSign1,
  verifySign1,
} from "./cose-sign1.ts";

declare const numericDateUnit: unique symbol;
/** NumericDate (RFC 8392 § 2): an instant in whole seconds since the Unix epoch (UTC). Integers only here. */
export type NumericDate = number & { readonly [numericDateUnit]: "NumericDate" };
export const NumericDate = (n: number): NumericDate => n as NumericDate;
/** The NumericDate of an instant, rounded down to the whole second. */
export const numericDateOf = (t: EpochMs): NumericDate => Math.floor(t / 1000) as NumericDate;

/** Registered CWT claim labels (RFC 8392 § 4). */
export const ClaimLabel = { iss: 1, sub: 2, aud: 3, exp: 4, nbf: 5, iat: 6, cti: 7 } as const;

/** Latchkey's claim labels, in the CWT private-use range (≤ -65537). */
export const LatchkeyClaimLabel = {
  /** `lk.kind`: what the envelope is, an {@link EnvelopeKind} (text). Required. */
  kind: -65537,
} as const;

/** The largest (closest to zero) private-use claim label (RFC 8392 § 9.1: "less than -65536"). */
export const PRIVATE_CLAIM_MAX = -65537;

/** What a signed envelope is; the value of `lk.kind`. */
export const EnvelopeKind = {
  /** A digital key. */
  Key: "key",
  /** A management operation. */
  Op: "op",
  /** A revocation list. */
  Revocations: "revocations",
  /** A time ticket (signed time for a lock's clock). */
  Ticket: "ticket",
  /** An audit checkpoint (reserved: the audit log still uses its own signature, docs/protocol/audit-log.md). */
  Checkpoint: "checkpoint",
} as const;
export type EnvelopeKind = (typeof EnvelopeKind)[keyof typeof EnvelopeKind];

/** Longest `cti`, in bytes. */
export const MAX_CTI_BYTES = 64;

/** The claims of one envelope. Absent optional claims are absent from the map, never null. */
export interface CwtClaims {
  readonly kind: EnvelopeKind;
  /** Issuer (RFC 8392 § 3.1.1). */
  readonly iss?: string;
  /** Subject (§ 3.1.2). */
  readonly sub?: string;
  /** Audience, a single text string (§ 3.1.3). */
  readonly aud?: string;
  /** Expiration time (§ 3.1.4): not valid at or after this second. */
  readonly exp?: NumericDate;
  /** Not before (§ 3.1.5): not valid before this second. */
  readonly nbf?: NumericDate;
  /** Issued at (§ 3.1.6). Informational; not checked by {@link checkValidity}. */
  readonly iat?: NumericDate;
  /** CWT ID (§ 3.1.7), 1 to {@link MAX_CTI_BYTES} bytes. */
  readonly cti?: Uint8Array;
  /**
   * Further private claims, label → value, labels ≤ {@link PRIVATE_CLAIM_MAX} and not one of
   * {@link LatchkeyClaimLabel}. Values are any deterministic-CBOR value (see cbor.ts).
   */
  readonly extra?: ReadonlyMap<number, unknown>;
}

const KINDS: ReadonlySet<string> = new Set(Object.values(EnvelopeKind));
const LATCHKEY_LABELS: ReadonlySet<number> = new Set(Object.values(LatchkeyClaimLabel));

function malformed(detail: string): LatchkeyError {
  return new LatchkeyError("LK_ENVELOPE_MALFORMED", detail);
}

function isKind(v: unknown): v is EnvelopeKind {
  return typeof v === "string" && KINDS.has(v);
}

function checkText(name: string, v: unknown): asserts v is string {
  if (typeof v !== "string") throw malformed(`claim ${name} must be text`);
}

function checkDate(name: string, v: unknown): asserts v is NumericDate {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw malformed(`claim ${name} must be a NumericDate: a non-negative integer of seconds`);
  }
}

function checkCti(v: unknown): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array) || v.length < 1 || v.length > MAX_CTI_BYTES) {
    throw malformed(`claim cti must be a byte string of 1 to ${MAX_CTI_BYTES} bytes`);
  }
}

function checkExtraLabel(label: unknown): asserts label is number {
  if (typeof label !== "number" || !Number.isSafeInteger(label) || label > PRIVATE_CLAIM_MAX) {
    throw malformed(`private claim labels must be integers ≤ ${PRIVATE_CLAIM_MAX}`);
  }
  if (LATCHKEY_LABELS.has(label)) throw malformed(`claim label ${label} is defined by Latchkey`);
}

/**
 * Encode claims as the payload map. Throws `LK_ENVELOPE_MALFORMED` for a claim of the wrong type, an
 * unknown kind, or an extra label outside the private range or taken by Latchkey.
 */
export function encodeClaims(claims: CwtClaims): Uint8Array {
  const map = new Map<number, unknown>();
  if (!isKind(claims.kind)) throw malformed("claim lk.kind is not a known envelope kind");
  if (claims.iss !== undefined) {
    checkText("iss", claims.iss);
    map.set(ClaimLabel.iss, claims.iss);
  }
  if (claims.sub !== undefined) {
    checkText("sub", claims.sub);
    map.set(ClaimLabel.sub, claims.sub);
  }
  if (claims.aud !== undefined) {
    checkText("aud", claims.aud);
    map.set(ClaimLabel.aud, claims.aud);
  }
  if (claims.exp !== undefined) {
    checkDate("exp", claims.exp);
    map.set(ClaimLabel.exp, claims.exp);
  }
  if (claims.nbf !== undefined) {
    checkDate("nbf", claims.nbf);
    map.set(ClaimLabel.nbf, claims.nbf);
  }
  if (claims.iat !== undefined) {
    checkDate("iat", claims.iat);
    map.set(ClaimLabel.iat, claims.iat);
  }
  if (claims.cti !== undefined) {
    checkCti(claims.cti);
    map.set(ClaimLabel.cti, claims.cti);
  }
  map.set(LatchkeyClaimLabel.kind, claims.kind);
  if (claims.extra !== undefined) {
    for (const [label, value] of claims.extra) {
      checkExtraLabel(label);
      map.set(label, value);
    }
  }
  return encodeDeterministic(map);
}

/**
 * Decode and check the payload map (strict deterministic CBOR, see cbor.ts). Throws
 * `LK_ENVELOPE_MALFORMED` for a text label, a registered or reserved label other than 1–7 (e.g. `cnf` 8,
 * or 0), a claim of the wrong type, or a missing or unknown `lk.kind`; `LK_ENVELOPE_TOO_LARGE` past `maxBytes`.
 */
export function decodeClaims(bytes: Uint8Array, options: { readonly maxBytes?: number } = {}): CwtClaims {
  const map = decodeStrict(bytes, { maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES });
  if (!(map instanceof Map)) throw malformed("claims are not a map");
  const claims: {
    kind?: EnvelopeKind;
    iss?: string;
    sub?: string;
    aud?: string;
    exp?: NumericDate;
    nbf?: NumericDate;
    iat?: NumericDate;
    cti?: Uint8Array;
  } = {};
  const extra = new Map<number, unknown>();
  for (const [label, value] of map as Map<unknown, unknown>) {
    switch (label) {
      case ClaimLabel.iss:
        checkText("iss", value);
        claims.iss = value;
        break;
      case ClaimLabel.sub:
        checkText("sub", value);
        claims.sub = value;
        break;
      case ClaimLabel.aud:
        checkText("aud", value);
        claims.aud = value;
        break;
      case ClaimLabel.exp:
        checkDate("exp", value);
        claims.exp = value;
        break;
      case ClaimLabel.nbf:
        checkDate("nbf", value);
        claims.nbf = value;
        break;
      case ClaimLabel.iat:
        checkDate("iat", value);
        claims.iat = value;
        break;
      case ClaimLabel.cti:
        checkCti(value);
        claims.cti = value;
        break;
      case LatchkeyClaimLabel.kind:
        if (!isKind(value)) throw malformed("claim lk.kind is not a known envelope kind");
        claims.kind = value;
        break;
      default:
        if (typeof label !== "number") throw malformed("claim labels must be integers");
        if (label > PRIVATE_CLAIM_MAX) throw malformed(`claim label ${label} is not supported`);
        extra.set(label, value);
    }
  }
  if (claims.kind === undefined) throw malformed("claim lk.kind is missing");
  const { kind, ...rest } = claims;
  return extra.size > 0 ? { kind, ...rest, extra } : { kind, ...rest };
}

/**
 * Check the validity window at `now`, allowing `skew` either way (RFC 8392 § 3.1.4–3.1.5; RFC 7519
 * § 4.1.4–4.1.5):
 *
 * - not yet valid when `now + skew < nbf` (valid from the first millisecond of second `nbf − skew`);
 * - expired when `now − skew ≥ exp` (no longer valid from the first millisecond of second `exp + skew`).
 *
 * Throws `LK_ENVELOPE_EXPIRED` with detail "not yet valid" or "expired". Absent claims are not checked.
 */
export function checkValidity(claims: CwtClaims, now: EpochMs, skew: Seconds): void {
  if (!Number.isFinite(now) || !Number.isFinite(skew) || skew < 0) {
    throw new LatchkeyError(
      "LK_INVALID_INPUT",
      "now must be finite and skew a non-negative number of seconds",
    );
  }
  const skewMs = skew * 1000;
  if (claims.nbf !== undefined && now + skewMs < claims.nbf * 1000) {
    throw new LatchkeyError("LK_ENVELOPE_EXPIRED", "not yet valid", { nbf: claims.nbf });
  }
  if (claims.exp !== undefined && now - skewMs >= claims.exp * 1000) {
    throw new LatchkeyError("LK_ENVELOPE_EXPIRED", "expired", { exp: claims.exp });
  }
}

/** Sign claims into a tagged COSE_Sign1 (see {@link signSign1}). */
export function signCwt(
  crypto: CryptoPort,
  signer: Sign1Signer,
  claims: CwtClaims,
  externalAad?: Uint8Array,
  limits?: Sign1Limits,
): Uint8Array {
  return signSign1(crypto, signer, encodeClaims(claims), externalAad, limits);
}

/** What {@link verifyCwt} needs besides the bytes. */
export interface VerifyCwtOptions {
  readonly resolveKey: KeyResolver;
  /** The kind the caller expects; any other `lk.kind` is refused. */
  readonly kind: EnvelopeKind;
  readonly now: EpochMs;
  /** Allowed clock difference, either way. */
  readonly skew: Seconds;
  /** Must equal the external AAD given when signing. Default empty. */
  readonly externalAad?: Uint8Array;
  /** Default 8 KiB. */
  readonly maxBytes?: number;
}

/** A verified CWT. */
export interface VerifiedCwt {
  readonly claims: CwtClaims;
  readonly kid: Uint8Array;
  readonly alg: CoseAlg;
}

/**
 * Verify the envelope ({@link verifySign1}), then decode its claims ({@link decodeClaims}), then check
 * the kind (`LK_ENVELOPE_MALFORMED` if it differs) and the validity window ({@link checkValidity}). The
 * payload is parsed only after its signature verified.
 */
export function verifyCwt(crypto: CryptoPort, bytes: Uint8Array, options: VerifyCwtOptions): VerifiedCwt {
  const limits: Sign1Limits = options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes };
  const { payload, kid, alg } = verifySign1(crypto, bytes, options.resolveKey, options.externalAad, limits);
  const claims = decodeClaims(payload, limits);
  if (claims.kind !== options.kind) {
    throw malformed(`envelope kind is "${claims.kind}", expected "${options.kind}"`);
  }
  checkValidity(claims, options.now, options.skew);
  return { claims, kid, alg };
}
