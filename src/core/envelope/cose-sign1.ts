/**
 * COSE_Sign1 (RFC 9052 § 4.2), the one signed envelope of Latchkey (spec: docs/protocol/envelope.md).
 *
 *   COSE_Sign1 = #6.18([ protected: bstr .cbor {1: alg, 4: kid}, unprotected: {}, payload: bstr, signature: bstr ])
 *   signature  = Sign(key, encodeDeterministic(["Signature1", protected, external_aad, payload]))   (§ 4.4)
 *
 * Everything that steers verification is in the protected (signed) header: `alg` (label 1) and `kid`
 * (label 4). The unprotected header must be empty, `crit` (label 2) and every other label are refused,
 * and the whole envelope must be deterministic CBOR, so a valid envelope has exactly one encoding for its
 * signature bytes. Algorithms: EdDSA with Ed25519 (-8) and ES256 with P-256 (-7) (RFC 9053 § 2.1, § 2.2).
 */
import type { CryptoPort } from "../crypto.ts";
import { LatchkeyError } from "../errors.ts";
import { DEFAULT_MAX_BYTES, decodeStrict, encodeDeterministic, Tagged } from "./cbor.ts";

/** The allow-list of COSE algorithms (IANA "COSE Algorithms" values). */
export const CoseAlg = {
  /** EdDSA with Ed25519 (RFC 9053 § 2.2; RFC 8032): 32-byte public key, 64-byte signature. */
  EdDSA: -8,
  /** ECDSA P-256 with SHA-256 (RFC 9053 § 2.1): 65-byte SEC1 public key, 64-byte r || s signature. */
  ES256: -7,
} as const;
export type CoseAlg = (typeof CoseAlg)[keyof typeof CoseAlg];

/** The header labels this profile knows (RFC 9052 § 3.1). Only `alg` and `kid` may appear. */
export const HeaderLabel = { alg: 1, crit: 2, kid: 4 } as const;

/** CBOR tag of a COSE_Sign1 (RFC 9052 § 2). Required on the wire. */
export const COSE_SIGN1_TAG = 18;
/** Context string of the Sig_structure for a COSE_Sign1 (RFC 9052 § 4.4). */
export const SIGNATURE1_CONTEXT = "Signature1";
/** Longest key id, in bytes. */
export const MAX_KID_BYTES = 64;
/** Signature length of both allowed algorithms, in bytes. */
export const SIGNATURE_BYTES = 64;

const EMPTY = new Uint8Array(0);

/** What signs: the algorithm, the key id put in the protected header, and the private key. */
export interface Sign1Signer {
  readonly alg: CoseAlg;
  /** 1 to {@link MAX_KID_BYTES} bytes. */
  readonly kid: Uint8Array;
  /** EdDSA: the 32-byte Ed25519 seed. ES256: the P-256 private key as PKCS#8 DER. */
  readonly privateKey: Uint8Array;
}

/** A verification key as the caller's key store knows it. */
export interface VerificationKey {
  readonly alg: CoseAlg;
  /** EdDSA: 32-byte raw Ed25519 key. ES256: 65-byte uncompressed SEC1 point. */
  readonly publicKey: Uint8Array;
}

/** Finds the key for a kid (and the alg the envelope claims); null when the kid is unknown. */
export type KeyResolver = (kid: Uint8Array, alg: CoseAlg) => VerificationKey | null;

/** A verified envelope. */
export interface VerifiedSign1 {
  readonly payload: Uint8Array;
  readonly kid: Uint8Array;
  readonly alg: CoseAlg;
}

/** Size limit of a whole envelope. */
export interface Sign1Limits {
  /** Default {@link DEFAULT_MAX_BYTES} (8 KiB). */
  readonly maxBytes?: number;
}

function malformed(detail: string): LatchkeyError {
  return new LatchkeyError("LK_ENVELOPE_MALFORMED", detail);
}

function isCoseAlg(v: unknown): v is CoseAlg {
  return v === CoseAlg.EdDSA || v === CoseAlg.ES256;
}

function checkBytes(name: string, v: unknown): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw malformed(`${name} must be a byte string`);
}

function checkKid(kid: unknown): asserts kid is Uint8Array {
  if (!(kid instanceof Uint8Array) || kid.length < 1 || kid.length > MAX_KID_BYTES) {
    throw malformed(`kid must be a byte string of 1 to ${MAX_KID_BYTES} bytes`);
  }
}

/** The protected header bytes: `bstr .cbor {1: alg, 4: kid}` in deterministic encoding. */
export function encodeProtectedHeader(alg: CoseAlg, kid: Uint8Array): Uint8Array {
  if (!isCoseAlg(alg)) throw new LatchkeyError("LK_ENVELOPE_ALG", "algorithm is not in the allow-list");
  checkKid(kid);
  return encodeDeterministic(
    new Map<number, unknown>([
      [HeaderLabel.alg, alg],
      [HeaderLabel.kid, kid],
    ]),
  );
}

/**
 * Parse and check a protected header: a deterministic map with exactly `alg` and `kid`. `crit` and any
 * other label are refused (`LK_ENVELOPE_MALFORMED`); an algorithm outside the allow-list is `LK_ENVELOPE_ALG`.
 */
export function decodeProtectedHeader(bytes: Uint8Array): { alg: CoseAlg; kid: Uint8Array } {
  const header = decodeStrict(bytes);
  if (!(header instanceof Map)) throw malformed("protected header is not a map");
  for (const label of header.keys()) {
    if (label === HeaderLabel.crit)
      throw malformed("protected header has crit; no critical extensions are supported");
    if (label !== HeaderLabel.alg && label !== HeaderLabel.kid) {
      throw malformed("protected header has a parameter other than alg and kid");
    }
  }
  const alg: unknown = header.get(HeaderLabel.alg);
  if (alg === undefined) throw malformed("protected header has no alg");
  if (!isCoseAlg(alg)) throw new LatchkeyError("LK_ENVELOPE_ALG", "algorithm is not in the allow-list");
  const kid: unknown = header.get(HeaderLabel.kid);
  if (kid === undefined) throw malformed("protected header has no kid");
  checkKid(kid);
  return { alg, kid };
}

/**
 * The bytes that are signed (RFC 9052 § 4.4):
 * `encodeDeterministic(["Signature1", body_protected, external_aad, payload])`.
 */
export function sigStructure1(
  bodyProtected: Uint8Array,
  externalAad: Uint8Array,
  payload: Uint8Array,
): Uint8Array {
  return encodeDeterministic([SIGNATURE1_CONTEXT, bodyProtected, externalAad, payload]);
}

/** Throws `LK_ENVELOPE_ALG` unless `publicKey` has the shape `alg` needs. */
function checkPublicKey(alg: CoseAlg, publicKey: Uint8Array): void {
  const ok =
    publicKey instanceof Uint8Array &&
    (alg === CoseAlg.EdDSA ? publicKey.length === 32 : publicKey.length === 65 && publicKey[0] === 0x04);
  if (!ok) throw new LatchkeyError("LK_ENVELOPE_ALG", "the key does not fit the algorithm");
}

/**
 * Sign `payload` into a tagged COSE_Sign1. `externalAad` (default empty) is signed but not carried: the
 * verifier must supply the same bytes. Throws `LK_ENVELOPE_ALG` for an algorithm outside the allow-list
 * or a key of the wrong shape, `LK_ENVELOPE_MALFORMED` for a bad kid, and `LK_ENVELOPE_TOO_LARGE` when
 * the envelope would exceed `limits.maxBytes` (so no verifier with the same limit refuses it).
 */
export function signSign1(
  crypto: CryptoPort,
  signer: Sign1Signer,
  payload: Uint8Array,
  externalAad: Uint8Array = EMPTY,
  limits: Sign1Limits = {},
): Uint8Array {
  checkBytes("payload", payload);
  checkBytes("external AAD", externalAad);
  const bodyProtected = encodeProtectedHeader(signer.alg, signer.kid);
  const toBeSigned = sigStructure1(bodyProtected, externalAad, payload);
  let signature: Uint8Array;
  if (signer.alg === CoseAlg.EdDSA) {
    if (!(signer.privateKey instanceof Uint8Array) || signer.privateKey.length !== 32) {
      throw new LatchkeyError("LK_ENVELOPE_ALG", "an EdDSA private key must be a 32-byte Ed25519 seed");
    }
    signature = crypto.ed25519Sign(signer.privateKey, toBeSigned);
  } else {
    signature = crypto.p256Sign(signer.privateKey, toBeSigned);
  }
  if (signature.length !== SIGNATURE_BYTES) {
    throw new LatchkeyError("LK_INTERNAL", "the crypto port returned a signature of the wrong length");
  }
  const out = encodeDeterministic(new Tagged(COSE_SIGN1_TAG, [bodyProtected, new Map(), payload, signature]));
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  if (out.length > maxBytes) {
    throw new LatchkeyError(
      "LK_ENVELOPE_TOO_LARGE",
      `envelope is ${out.length} bytes; the limit is ${maxBytes}`,
    );
  }
  return out;
}

/** A signer whose private key stays in a key store: the algorithm, the kid and an (async) signing call. */
export interface ExternalSign1Signer {
  readonly alg: CoseAlg;
  readonly kid: Uint8Array;
  sign(toBeSigned: Uint8Array): Promise<Uint8Array>;
}

/**
 * {@link signSign1} with a signer that keeps its private key (a wallet's SecureKeyStore, an HSM): the same
 * bytes, the same checks and errors; the store's signature must be 64 bytes (`LK_INTERNAL` otherwise).
 */
export async function signSign1External(
  signer: ExternalSign1Signer,
  payload: Uint8Array,
  externalAad: Uint8Array = EMPTY,
  limits: Sign1Limits = {},
): Promise<Uint8Array> {
  checkBytes("payload", payload);
  checkBytes("external AAD", externalAad);
  if (signer.alg !== CoseAlg.EdDSA && signer.alg !== CoseAlg.ES256) {
    throw new LatchkeyError("LK_ENVELOPE_ALG", "the algorithm is not on the allow-list");
  }
  const bodyProtected = encodeProtectedHeader(signer.alg, signer.kid);
  const signature = await signer.sign(sigStructure1(bodyProtected, externalAad, payload));
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_BYTES) {
    throw new LatchkeyError("LK_INTERNAL", "the key store returned a signature of the wrong length");
  }
  const out = encodeDeterministic(new Tagged(COSE_SIGN1_TAG, [bodyProtected, new Map(), payload, signature]));
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  if (out.length > maxBytes) {
    throw new LatchkeyError(
      "LK_ENVELOPE_TOO_LARGE",
      `envelope is ${out.length} bytes; the limit is ${maxBytes}`,
    );
  }
  return out;
}

/**
 * Verify a tagged COSE_Sign1 and return its payload, kid and alg. Checks, in order:
 *
 * 1. size ≤ `limits.maxBytes` (`LK_ENVELOPE_TOO_LARGE`);
 * 2. strict deterministic CBOR, tag 18, an array of four: bstr, map, bstr, bstr (`LK_ENVELOPE_MALFORMED`);
 * 3. the protected header (see {@link decodeProtectedHeader}); an empty unprotected header; a 64-byte signature;
 * 4. `resolveKey(kid, alg)`: null → `LK_ENVELOPE_SIGNATURE` (the same error as a bad signature, so an
 *    unknown kid is not revealed); a key whose alg differs from the header's, or of the wrong shape →
 *    `LK_ENVELOPE_ALG`;
 * 5. the signature over the Sig_structure with `externalAad` (`LK_ENVELOPE_SIGNATURE`).
 *
 * Only a `LatchkeyError` is thrown, unless `resolveKey` itself throws.
 */
export function verifySign1(
  crypto: CryptoPort,
  bytes: Uint8Array,
  resolveKey: KeyResolver,
  externalAad: Uint8Array = EMPTY,
  limits: Sign1Limits = {},
): VerifiedSign1 {
  checkBytes("external AAD", externalAad);
  const decoded = decodeStrict(bytes, {
    maxBytes: limits.maxBytes ?? DEFAULT_MAX_BYTES,
    tags: [COSE_SIGN1_TAG],
  });
  if (!(decoded instanceof Tagged) || decoded.tag !== COSE_SIGN1_TAG) {
    throw malformed("not a tagged COSE_Sign1 (tag 18)");
  }
  const body: unknown = decoded.value;
  if (!Array.isArray(body) || body.length !== 4) throw malformed("COSE_Sign1 is not an array of four");
  const [bodyProtected, unprotected, payload, signature] = body as unknown[];
  checkBytes("protected header", bodyProtected);
  if (!(unprotected instanceof Map)) throw malformed("unprotected header is not a map");
  checkBytes("payload", payload);
  checkBytes("signature", signature);
  const { alg, kid } = decodeProtectedHeader(bodyProtected);
  if (unprotected.size !== 0) throw malformed("unprotected header must be empty");
  if (signature.length !== SIGNATURE_BYTES) throw malformed(`signature must be ${SIGNATURE_BYTES} bytes`);

  const key = resolveKey(kid.slice(), alg);
  if (key === null) throw new LatchkeyError("LK_ENVELOPE_SIGNATURE", "signature does not verify");
  if (key.alg !== alg)
    throw new LatchkeyError("LK_ENVELOPE_ALG", "the key's algorithm differs from the header's");
  checkPublicKey(alg, key.publicKey);

  const toBeSigned = sigStructure1(bodyProtected, externalAad, payload);
  const ok =
    alg === CoseAlg.EdDSA
      ? crypto.ed25519Verify(key.publicKey, toBeSigned, signature)
      : crypto.p256Verify(key.publicKey, toBeSigned, signature);
  if (!ok) throw new LatchkeyError("LK_ENVELOPE_SIGNATURE", "signature does not verify");
  return { payload, kid, alg };
}

/**
 * The payload and kid of a COSE_Sign1 WITHOUT verifying its signature: only for bytes this replica
 * verified earlier (a row of its own store). Checks the same structure as {@link verifySign1} steps 1–3.
 * @throws LatchkeyError `LK_ENVELOPE_MALFORMED` / `LK_ENVELOPE_TOO_LARGE`.
 */
export function decodeSign1Unverified(
  bytes: Uint8Array,
  limits: Sign1Limits = {},
): { payload: Uint8Array; kid: Uint8Array; alg: CoseAlg } {
  const decoded = decodeStrict(bytes, {
    maxBytes: limits.maxBytes ?? DEFAULT_MAX_BYTES,
    tags: [COSE_SIGN1_TAG],
  });
  if (!(decoded instanceof Tagged) || decoded.tag !== COSE_SIGN1_TAG) {
    throw malformed("not a tagged COSE_Sign1 (tag 18)");
  }
  const body: unknown = decoded.value;
  if (!Array.isArray(body) || body.length !== 4) throw malformed("COSE_Sign1 is not an array of four");
  const [bodyProtected, , payload] = body as unknown[];
  checkBytes("protected header", bodyProtected);
  checkBytes("payload", payload);
  const { alg, kid } = decodeProtectedHeader(bodyProtected);
  return { payload, kid, alg };
}
