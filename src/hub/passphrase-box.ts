/**
 * The passphrase box (docs/formats/export.md § "Passphrase box"): bytes encrypted to a passphrase, for
 * files that leave the hub (an export with secrets, an encrypted audit export). A versioned JSON envelope:
 *
 * ```json
 * { "box": "latchkey-passphrase-box", "version": 1, "kind": "latchkey-export-secrets",
 *   "kdf": { "alg": "scrypt", "N": 65536, "r": 8, "p": 1, "salt": "<16 bytes, base64url>" },
 *   "aead": { "alg": "A256GCM", "nonce": "<12 bytes, base64url>" },
 *   "ciphertext": "<ciphertext || 16-byte tag, base64url>" }
 * ```
 *
 * - key = scrypt(UTF-8(NFC(passphrase)), salt, N, r, p, dkLen 32) (RFC 7914). The cost parameters are
 *   recorded in the box, so the default can be raised later and old boxes still open.
 * - AES-256-GCM (NIST SP 800-38D), a random 96-bit nonce, a 128-bit tag. The additional authenticated
 *   data is the canonical JSON (sorted keys, no whitespace; src/core/audit/canonical.ts) of the box
 *   without `ciphertext`: it binds the document kind, every KDF parameter, the salt and the nonce, so a
 *   box cannot be passed off as another kind of document, and no header field can be changed unnoticed.
 * - base64url is RFC 4648 § 5 without padding, decoded strictly (a non-canonical encoding is refused).
 *
 * Opening refuses a box whose parameters are out of bounds before any work (a hostile box cannot make
 * the hub spend more than {@link SCRYPT_MAX_MEMORY_BYTES} of memory or {@link SCRYPT_MAX_WORK}·128 bytes
 * of mixing). Key derivation runs on libuv's thread pool (async `crypto.scrypt`), off the event loop.
 *
 * Errors (src/core/errors.ts): LK_PASSPHRASE_WEAK, LK_PASSPHRASE_WRONG, LK_PASSPHRASE_BOX_MALFORMED.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from "node:crypto";
import { z } from "zod";
import { canonicalJson } from "../core/audit/canonical.ts";
import { LatchkeyError } from "../core/errors.ts";

/** The box's `box` member. */
export const PASSPHRASE_BOX_FORMAT = "latchkey-passphrase-box";
/** The box format version this code writes and reads. */
export const PASSPHRASE_BOX_VERSION = 1;

/** scrypt cost parameters (RFC 7914 § 2): N (CPU/memory cost, a power of two), r (block size), p (parallelism). */
export interface ScryptParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/**
 * The default cost: N = 2^16, r = 8, p = 1: 64 MiB of memory and about 0.2 s on a desktop core, several
 * times that on a small hub. Stronger than RFC 7914's interactive example (2^14) and the 2^15 floor.
 */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 16, r: 8, p: 1 };
/** The weakest cost a box may carry unless the caller passes `allowWeakKdf` (tests only). */
export const SCRYPT_FLOOR: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };
/** Most memory a box may ask for: 128·N·r bytes ≤ 256 MiB. */
export const SCRYPT_MAX_MEMORY_BYTES = 256 * 1024 * 1024;
/** Most mixing work a box may ask for: N·r·p ≤ 2^23 (32 times the default). */
export const SCRYPT_MAX_WORK = 2 ** 23;

/** Passphrases are 12 to 1024 characters (Unicode code points after NFC). */
export const PASSPHRASE_MIN_CHARS = 12;
export const PASSPHRASE_MAX_CHARS = 1024;

/** Most plaintext a box holds: 32 MiB (an audit export of 100,000 events fits). */
export const BOX_MAX_PLAINTEXT_BYTES = 32 * 1024 * 1024;

const SALT_BYTES = 16;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** The box as JSON. All byte strings are base64url without padding. */
export interface PassphraseBox {
  readonly box: typeof PASSPHRASE_BOX_FORMAT;
  readonly version: typeof PASSPHRASE_BOX_VERSION;
  /** What the plaintext is, e.g. `latchkey-export-secrets`: 1–64 characters `[a-z0-9.-]`. */
  readonly kind: string;
  readonly kdf: {
    readonly alg: "scrypt";
    readonly N: number;
    readonly r: number;
    readonly p: number;
    readonly salt: string;
  };
  readonly aead: { readonly alg: "A256GCM"; readonly nonce: string };
  readonly ciphertext: string;
}

/** Options of {@link sealWithPassphrase} and {@link openWithPassphrase}. */
export interface BoxOptions {
  /** scrypt cost to seal with (default {@link DEFAULT_SCRYPT}). Recorded in the box. */
  readonly scrypt?: ScryptParams;
  /**
   * Accept a cost below {@link SCRYPT_FLOOR}. **Tests only**, to keep property tests fast: no product
   * path sets it, so the hub never writes or reads a weak box.
   */
  readonly allowWeakKdf?: boolean;
}

const KIND = /^[a-z0-9][a-z0-9.-]{0,63}$/;

function malformed(detail: string): LatchkeyError {
  return new LatchkeyError("LK_PASSPHRASE_BOX_MALFORMED", detail);
}

/** RFC 4648 § 5 without padding, strictly: only the alphabet, and the canonical encoding of its bytes. */
function fromB64url(
  s: unknown,
  what: string,
  bytes?: { min?: number; exact?: number; max?: number },
): Buffer {
  if (typeof s !== "string" || !/^[A-Za-z0-9_-]*$/.test(s)) throw malformed(`${what} is not base64url`);
  const b = Buffer.from(s, "base64url");
  if (b.toString("base64url") !== s) throw malformed(`${what} is not canonical base64url`);
  if (bytes?.exact !== undefined && b.length !== bytes.exact)
    throw malformed(`${what} must be ${bytes.exact} bytes`);
  if (bytes?.min !== undefined && b.length < bytes.min) throw malformed(`${what} is too short`);
  if (bytes?.max !== undefined && b.length > bytes.max) throw malformed(`${what} is too long`);
  return b;
}

function assertKind(kind: unknown): asserts kind is string {
  if (typeof kind !== "string" || !KIND.test(kind))
    throw malformed("kind must be 1–64 characters [a-z0-9.-]");
}

/** Check scrypt parameters against the bounds; throws LK_PASSPHRASE_BOX_MALFORMED. */
function assertScrypt(k: ScryptParams, allowWeak: boolean): void {
  const int = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 1;
  if (!int(k.N) || !int(k.r) || !int(k.p)) throw malformed("scrypt N, r and p must be positive integers");
  if (k.N < 2 || (k.N & (k.N - 1)) !== 0) throw malformed("scrypt N must be a power of two");
  if (128 * k.N * k.r > SCRYPT_MAX_MEMORY_BYTES) throw malformed("scrypt N·r asks for more than 256 MiB");
  if (k.N * k.r * k.p > SCRYPT_MAX_WORK) throw malformed("scrypt N·r·p is over the work bound 2^23");
  if (!allowWeak && (k.N < SCRYPT_FLOOR.N || k.r < SCRYPT_FLOOR.r)) {
    throw malformed(`scrypt cost below the floor (N ≥ 2^15, r ≥ 8): N=${k.N}, r=${k.r}`);
  }
}

/** The passphrase as UTF-8 bytes of its NFC form. Throws LK_PASSPHRASE_WEAK when sealing with a short one. */
function passphraseBytes(passphrase: string, sealing: boolean): Buffer {
  if (typeof passphrase !== "string")
    throw new LatchkeyError("LK_INVALID_INPUT", "the passphrase must be text");
  const nfc = passphrase.normalize("NFC");
  const chars = [...nfc].length;
  if (chars > PASSPHRASE_MAX_CHARS)
    throw new LatchkeyError(
      "LK_PASSPHRASE_WEAK",
      `a passphrase has at most ${PASSPHRASE_MAX_CHARS} characters`,
    );
  if (sealing && chars < PASSPHRASE_MIN_CHARS) {
    throw new LatchkeyError(
      "LK_PASSPHRASE_WEAK",
      `a passphrase needs at least ${PASSPHRASE_MIN_CHARS} characters (several words are easiest to remember)`,
    );
  }
  if (chars === 0) throw new LatchkeyError("LK_PASSPHRASE_WRONG", "no passphrase given");
  return Buffer.from(nfc, "utf8");
}

function deriveKey(pass: Buffer, salt: Buffer, k: ScryptParams): Promise<Buffer> {
  // Node refuses when 128·N·r (plus the p blocks) exceeds maxmem: give it exactly what the bounds allow.
  const maxmem = 128 * k.r * (k.N + k.p + 2) + 1024 * 1024;
  return new Promise((resolve, reject) =>
    scrypt(pass, salt, KEY_BYTES, { N: k.N, r: k.r, p: k.p, maxmem }, (err, key) =>
      err ? reject(new LatchkeyError("LK_INTERNAL", `scrypt failed: ${err.message}`)) : resolve(key),
    ),
  );
}

/** The additional authenticated data: canonical JSON of the box without `ciphertext`. */
function boxAad(header: Omit<PassphraseBox, "ciphertext">): Buffer {
  return Buffer.from(canonicalJson(header), "utf8");
}

/**
 * Encrypt `plaintext` (at most 32 MiB) to `passphrase` as a box of `kind` (1–64 characters `[a-z0-9.-]`,
 * e.g. `latchkey-export-secrets`). A fresh 16-byte salt and 12-byte nonce each call.
 * Throws LK_PASSPHRASE_WEAK (fewer than 12 or more than 1024 characters), LK_PASSPHRASE_BOX_MALFORMED
 * (a bad kind or cost), LK_INVALID_INPUT (plaintext too large).
 * Spec: docs/formats/export.md § "Passphrase box".
 */
export async function sealWithPassphrase(
  kind: string,
  plaintext: Uint8Array,
  passphrase: string,
  opts: BoxOptions = {},
): Promise<PassphraseBox> {
  assertKind(kind);
  const cost = opts.scrypt ?? DEFAULT_SCRYPT;
  assertScrypt(cost, opts.allowWeakKdf === true);
  if (plaintext.length > BOX_MAX_PLAINTEXT_BYTES)
    throw new LatchkeyError("LK_INVALID_INPUT", "too much to seal in one box (32 MiB at most)");
  const pass = passphraseBytes(passphrase, true);
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const header: Omit<PassphraseBox, "ciphertext"> = {
    box: PASSPHRASE_BOX_FORMAT,
    version: PASSPHRASE_BOX_VERSION,
    kind,
    kdf: { alg: "scrypt", N: cost.N, r: cost.r, p: cost.p, salt: salt.toString("base64url") },
    aead: { alg: "A256GCM", nonce: nonce.toString("base64url") },
  };
  const key = await deriveKey(pass, salt, cost);
  try {
    const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(boxAad(header));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return { ...header, ciphertext: body.toString("base64url") };
  } finally {
    key.fill(0);
    pass.fill(0);
  }
}

/**
 * Check that `value` has the box's shape (an object, or its JSON text) without opening it: exact
 * members, known version and algorithms, strict base64url, byte lengths, and cost bounds (the floor
 * unless `opts.allowWeakKdf`). Throws LK_PASSPHRASE_BOX_MALFORMED.
 */
export function parsePassphraseBox(value: unknown, opts: BoxOptions = {}): PassphraseBox {
  let v = value;
  if (typeof v === "string") {
    try {
      v = JSON.parse(v);
    } catch {
      throw malformed("the box is not JSON (truncated or damaged?)");
    }
  }
  const obj = (x: unknown, what: string, keys: readonly string[]): Record<string, unknown> => {
    if (typeof x !== "object" || x === null || Array.isArray(x)) throw malformed(`${what} must be an object`);
    const o = x as Record<string, unknown>;
    const have = Object.keys(o).sort();
    const want = [...keys].sort();
    if (have.length !== want.length || have.some((k, i) => k !== want[i]))
      throw malformed(`${what} must have exactly the members ${keys.join(", ")}`);
    return o;
  };
  const b = obj(v, "the box", ["box", "version", "kind", "kdf", "aead", "ciphertext"]);
  if (b.box !== PASSPHRASE_BOX_FORMAT) throw malformed(`not a ${PASSPHRASE_BOX_FORMAT}`);
  if (b.version !== PASSPHRASE_BOX_VERSION)
    throw malformed(`box version ${JSON.stringify(b.version)} is not known (this hub reads 1)`);
  assertKind(b.kind);
  const kdf = obj(b.kdf, "kdf", ["alg", "N", "r", "p", "salt"]);
  if (kdf.alg !== "scrypt") throw malformed("kdf.alg must be scrypt");
  const cost = { N: kdf.N, r: kdf.r, p: kdf.p } as ScryptParams;
  assertScrypt(cost, opts.allowWeakKdf === true);
  fromB64url(kdf.salt, "kdf.salt", { exact: SALT_BYTES });
  const aead = obj(b.aead, "aead", ["alg", "nonce"]);
  if (aead.alg !== "A256GCM") throw malformed("aead.alg must be A256GCM");
  fromB64url(aead.nonce, "aead.nonce", { exact: NONCE_BYTES });
  // Length bound before decoding: base64url carries 6 bits a character.
  if (
    typeof b.ciphertext === "string" &&
    b.ciphertext.length > Math.ceil(((BOX_MAX_PLAINTEXT_BYTES + TAG_BYTES) * 4) / 3)
  )
    throw malformed("ciphertext is too long");
  fromB64url(b.ciphertext, "ciphertext", { min: TAG_BYTES });
  return {
    box: PASSPHRASE_BOX_FORMAT,
    version: PASSPHRASE_BOX_VERSION,
    kind: b.kind,
    kdf: { alg: "scrypt", N: cost.N, r: cost.r, p: cost.p, salt: kdf.salt as string },
    aead: { alg: "A256GCM", nonce: aead.nonce as string },
    ciphertext: b.ciphertext as string,
  };
}

/**
 * Open a box of `kind` (a parsed object or its JSON text) with `passphrase`; returns the plaintext bytes.
 * Throws LK_PASSPHRASE_BOX_MALFORMED (shape, bounds, or a box of another kind: checked before any key
 * derivation) and LK_PASSPHRASE_WRONG (the tag does not verify: wrong passphrase or a modified box).
 * Spec: docs/formats/export.md § "Passphrase box".
 */
export async function openWithPassphrase(
  kind: string,
  box: unknown,
  passphrase: string,
  opts: BoxOptions = {},
): Promise<Uint8Array> {
  assertKind(kind);
  const b = parsePassphraseBox(box, opts);
  if (b.kind !== kind) throw malformed(`this box holds a ${b.kind}, not a ${kind}`);
  const pass = passphraseBytes(passphrase, false);
  const salt = fromB64url(b.kdf.salt, "kdf.salt");
  const nonce = fromB64url(b.aead.nonce, "aead.nonce");
  const body = fromB64url(b.ciphertext, "ciphertext");
  const { ciphertext: _ct, ...header } = b;
  const key = await deriveKey(pass, salt, b.kdf);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(boxAad(header));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    const plain = Buffer.concat([
      decipher.update(body.subarray(0, body.length - TAG_BYTES)),
      decipher.final(),
    ]);
    return new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength);
  } catch {
    throw new LatchkeyError(
      "LK_PASSPHRASE_WRONG",
      "the passphrase is wrong, or the box was modified (nothing was changed)",
    );
  } finally {
    key.fill(0);
    pass.fill(0);
  }
}

/**
 * The box's JSON shape as a zod schema, for documents that embed a box (export version 2, the audit
 * export) and their JSON Schema. Shape only: {@link parsePassphraseBox} checks bounds and encodings.
 */
export const PassphraseBoxSchema = z
  .strictObject({
    box: z.literal(PASSPHRASE_BOX_FORMAT),
    version: z.literal(PASSPHRASE_BOX_VERSION),
    kind: z.string().regex(KIND).describe("what the plaintext is, bound into the AAD"),
    kdf: z.strictObject({
      alg: z.literal("scrypt"),
      N: z.number().int().min(2).describe("scrypt CPU/memory cost, a power of two"),
      r: z.number().int().min(1).describe("scrypt block size"),
      p: z.number().int().min(1).describe("scrypt parallelism"),
      salt: z
        .string()
        .regex(/^[A-Za-z0-9_-]{22}$/)
        .describe("16 random bytes, base64url"),
    }),
    aead: z.strictObject({
      alg: z.literal("A256GCM"),
      nonce: z
        .string()
        .regex(/^[A-Za-z0-9_-]{16}$/)
        .describe("12 random bytes, base64url"),
    }),
    ciphertext: z
      .string()
      .regex(/^[A-Za-z0-9_-]{22,}$/)
      .describe("AES-256-GCM ciphertext || 16-byte tag, base64url"),
  })
  .describe("A passphrase box: scrypt + AES-256-GCM (docs/formats/export.md § Passphrase box)");
