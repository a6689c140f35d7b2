/**
 * The messages of the phone ↔ lock link, version 1 (spec: docs/protocol/link.md § "Messages"), and the
 * transcript hash and signature input of the unlock handshake. Every message is one deterministic CBOR
 * array (RFC 8949 § 4.2.1, the envelope's {@link encodeDeterministic}) whose first item is its type:
 *
 *   Challenge  [1, version, lockId, siteId, lockTime, nonce, lockEphemeral]       lock → phone, clear
 *   Answer     [2, nonce, phoneEphemeral, sealed(Proof)]                          phone → lock
 *   Result     [3, sealed(ResultBody)]                                            lock → phone
 *   Abort      [4, code]                                                          either way, clear
 *   Data       [5, sealed(bytes)]                                                 either way (reserved)
 *   Select     [6, lockId]                                                        phone → bridge, clear
 *
 *   Proof      [chain, action, [intentKind, intentAgeMs], signature (, carry)]    inside the Answer
 *   Carry      [lists: [* Signed], status: Signed / null, time: Signed / null]    objects the phone carries
 *   Signed     [signerChain: [* bstr], object: bstr]
 *   ResultBody [true, ""] / [false, code] / [false, code, timeChallenge]
 *
 * Decoders accept exactly what the encoders write and throw `LK_LINK_MALFORMED` (`LK_LINK_LIMIT` for an
 * oversized message, `LK_LINK_VERSION` for a challenge of another version) for anything else.
 */
import type { CryptoPort } from "../crypto.ts";
import { decodeStrict, encodeDeterministic } from "../envelope/cbor.ts";
import type { NumericDate } from "../envelope/cwt.ts";
import { type ErrorCode, ErrorCodes, isLatchkeyError, LatchkeyError } from "../errors.ts";
import { MAX_CHAIN_LINKS } from "../keys/digital-key.ts";
import type { Milliseconds } from "../units.ts";
import { DEFAULT_MAX_MESSAGE_BYTES } from "./frames.ts";

/** The link protocol version this code speaks. */
export const LINK_VERSION = 1;

/** Message types (first item of every message). */
export const MessageType = {
  /** Lock → phone, in the clear: a fresh nonce, the lock's id, site and time, and its ephemeral key. */
  Challenge: 1,
  /** Phone → lock: the echoed nonce, the phone's ephemeral key and the sealed {@link Proof}. */
  Answer: 2,
  /** Lock → phone, sealed: the outcome of the unlock. */
  Result: 3,
  /** Either way, in the clear: the exchange ends with this error code (no session keys exist yet). */
  Abort: 4,
  /** Either way, sealed: application data after the handshake (reserved). */
  Data: 5,
  /**
   * Phone → bridge, in the clear, before the Challenge: which lock of a hub that bridges several locks
   * onto one TCP listener the phone wants (docs/protocol/link.md § "Transports"). Never sent over BLE,
   * where each lock is its own peer.
   */
  Select: 6,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** What the phone asks for; the values are the matching {@link KeyRight} bits. */
export const LinkAction = { Unlock: 1, Lock: 2 } as const;
export type LinkAction = (typeof LinkAction)[keyof typeof LinkAction];

/**
 * How the holder expressed intent for this unlock. The wallet sets it, and signs it into the transcript;
 * the lock refuses {@link IntentKind.Passive} unless passive unlock is enabled.
 */
export const IntentKind = {
  /** No user action: the phone answered on its own (proximity, background). Off by default at the lock. */
  Passive: 0,
  /** The user acted in the app, a widget, a notification or a watch (a tap or a button press). */
  UserAction: 1,
  /** A user action confirmed by the phone's device authentication (biometrics or passcode). */
  UserVerified: 2,
} as const;
export type IntentKind = (typeof IntentKind)[keyof typeof IntentKind];

/** The holder's expression of intent: what kind, and how long ago the user acted (phone's monotonic clock). */
export interface Intent {
  readonly kind: IntentKind;
  /** Milliseconds from the user action to the answer; 0 for passive. 0..2^32 − 1. */
  readonly ageMs: Milliseconds;
}

export const MIN_NONCE_BYTES = 16;
export const MAX_NONCE_BYTES = 32;
/** What a lock sends: 128 random bits. */
export const NONCE_BYTES = 16;
export const X25519_KEY_BYTES = 32;
/** The AES-256-GCM tag appended to every sealed box. */
export const AEAD_TAG_BYTES = 16;
/** A transcript signature (EdDSA or ES256 r ‖ s) is 64 bytes. */
export const TRANSCRIPT_SIGNATURE_BYTES = 64;
/** Longest error code carried in a Result or Abort. */
export const MAX_CODE_CHARS = 40;
const MAX_U32 = 0xffff_ffff;
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const CODE_PATTERN = /^LK_[A-Z0-9_]{1,37}$/;

/** Domain-separation labels: every hash and signature input starts with one (docs/protocol/link.md § "Key schedule"). */
export const LinkLabel = {
  transcript: "LK-LINK-1 transcript",
  answer: "LK-LINK-1 answer",
  phoneToLock: "LK-LINK-1 phone to lock",
  lockToPhone: "LK-LINK-1 lock to phone",
} as const;

export interface Challenge {
  readonly version: number;
  readonly lockId: string;
  readonly siteId: string;
  /** The lock's time at the challenge, NumericDate (whole seconds). */
  readonly lockTime: NumericDate;
  readonly nonce: Uint8Array;
  /** The lock's ephemeral X25519 public key. */
  readonly ephemeral: Uint8Array;
}

export interface Answer {
  readonly nonce: Uint8Array;
  /** The phone's ephemeral X25519 public key. */
  readonly ephemeral: Uint8Array;
  /** AES-256-GCM of the encoded {@link Proof} (ciphertext ‖ tag). */
  readonly sealed: Uint8Array;
}

/**
 * A signed object the phone hands to the lock, with the key chain of its signer (empty when the owner
 * signed it): a revocation list, a status ticket or a time ticket (docs/protocol/digital-keys.md).
 */
export interface CarriedObject {
  readonly signerChain: readonly Uint8Array[];
  readonly object: Uint8Array;
}

/**
 * What the wallet carries to every lock it meets (docs/protocol/link.md § "Carried objects"): its latest
 * revocation lists (site and lock), the status ticket of its holder (lease keys) and a time ticket.
 */
export interface Carry {
  /** At most {@link MAX_CARRIED_LISTS}. */
  readonly lists: readonly CarriedObject[];
  readonly status: CarriedObject | null;
  readonly time: CarriedObject | null;
}

/** Most revocation lists one answer carries (a site list and a lock list, with room for a successor). */
export const MAX_CARRIED_LISTS = 4;

export interface Proof {
  /** The key chain, root first: 1..4 COSE_Sign1 keys (docs/protocol/digital-keys.md). */
  readonly chain: readonly Uint8Array[];
  readonly action: LinkAction;
  readonly intent: Intent;
  /** The leaf holder's signature over {@link answerToBeSigned}. */
  readonly signature: Uint8Array;
  /**
   * Objects carried for the lock, or null. Not covered by the holder's signature: each is signed on its
   * own, and the sealed Answer keeps them from eavesdroppers and from tampering in transit.
   */
  readonly carry?: Carry | null;
}

/** Bytes of the challenge a lock with an untrusted clock sends back for a time ticket. */
export const TIME_CHALLENGE_BYTES = 16;

/**
 * A decoded Result body: accepted, or the error code the lock refused with. A lock that refused because
 * its clock is not trusted adds a fresh `timeChallenge`: a time ticket answering it (signed by the owner or
 * a delegate, carried in the next answer within 2 minutes) gives the lock trusted time again.
 */
export type ResultBody =
  | { readonly accepted: true }
  | { readonly accepted: false; readonly code: ErrorCode; readonly timeChallenge?: Uint8Array };

/** Any message, decoded (sealed parts still sealed). */
export type LinkMessage =
  | ({ readonly type: typeof MessageType.Challenge } & Challenge)
  | ({ readonly type: typeof MessageType.Answer } & Answer)
  | { readonly type: typeof MessageType.Result; readonly sealed: Uint8Array }
  | { readonly type: typeof MessageType.Abort; readonly code: ErrorCode }
  | { readonly type: typeof MessageType.Data; readonly sealed: Uint8Array }
  | { readonly type: typeof MessageType.Select; readonly lockId: string };

function malformed(detail: string): LatchkeyError {
  return new LatchkeyError("LK_LINK_MALFORMED", detail);
}

const isUint = (v: unknown, max: number): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max;

function isBytes(v: unknown, min: number, max: number): v is Uint8Array {
  return v instanceof Uint8Array && v.length >= min && v.length <= max;
}

/** Strict CBOR decode with the link's error codes. */
function decodeCbor(bytes: Uint8Array, maxBytes: number): unknown {
  try {
    return decodeStrict(bytes, { maxBytes });
  } catch (e) {
    if (isLatchkeyError(e, "LK_ENVELOPE_TOO_LARGE")) {
      throw new LatchkeyError("LK_LINK_LIMIT", `message larger than ${maxBytes} bytes`);
    }
    if (isLatchkeyError(e)) throw malformed(`not deterministic CBOR (${e.detail})`);
    throw malformed("not deterministic CBOR");
  }
}

function isCode(v: unknown): v is ErrorCode {
  return typeof v === "string" && CODE_PATTERN.test(v) && Object.hasOwn(ErrorCodes, v);
}

function checkCode(code: ErrorCode): void {
  if (!isCode(code)) throw new LatchkeyError("LK_INVALID_INPUT", "not a Latchkey error code");
}

function checkId(name: string, v: string): void {
  if (typeof v !== "string" || !ID_PATTERN.test(v)) {
    throw new LatchkeyError("LK_INVALID_INPUT", `${name} must be 1-64 of A-Z a-z 0-9 _ -`);
  }
}

/** Options of the decoders. */
export interface DecodeMessageOptions {
  /** Refuse longer messages with `LK_LINK_LIMIT`. Default 4096. */
  readonly maxBytes?: number;
}

/** Decode any link message. @throws LatchkeyError LK_LINK_MALFORMED / LK_LINK_LIMIT / LK_LINK_VERSION */
export function decodeMessage(bytes: Uint8Array, options: DecodeMessageOptions = {}): LinkMessage {
  const v = decodeCbor(bytes, options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
  if (!Array.isArray(v) || v.length < 2) throw malformed("a message is an array [type, ...]");
  switch (v[0]) {
    case MessageType.Challenge: {
      if (v.length !== 7) throw malformed("a Challenge has 7 items");
      const [, version, lockId, siteId, lockTime, nonce, ephemeral] = v;
      if (!isUint(version, 255)) throw malformed("version must be a small unsigned integer");
      if (version !== LINK_VERSION) {
        throw new LatchkeyError("LK_LINK_VERSION", `link version ${version} is not supported (this side: 1)`);
      }
      if (typeof lockId !== "string" || !ID_PATTERN.test(lockId)) throw malformed("bad lock id");
      if (typeof siteId !== "string" || !ID_PATTERN.test(siteId)) throw malformed("bad site id");
      if (!isUint(lockTime, Number.MAX_SAFE_INTEGER)) throw malformed("lockTime must be a NumericDate");
      if (!isBytes(nonce, MIN_NONCE_BYTES, MAX_NONCE_BYTES)) throw malformed("nonce must be 16-32 bytes");
      if (!isBytes(ephemeral, X25519_KEY_BYTES, X25519_KEY_BYTES)) throw malformed("ephemeral key: 32 bytes");
      return {
        type: MessageType.Challenge,
        version,
        lockId,
        siteId,
        lockTime: lockTime as NumericDate,
        nonce,
        ephemeral,
      };
    }
    case MessageType.Answer: {
      if (v.length !== 4) throw malformed("an Answer has 4 items");
      const [, nonce, ephemeral, sealed] = v;
      if (!isBytes(nonce, MIN_NONCE_BYTES, MAX_NONCE_BYTES)) throw malformed("nonce must be 16-32 bytes");
      if (!isBytes(ephemeral, X25519_KEY_BYTES, X25519_KEY_BYTES)) throw malformed("ephemeral key: 32 bytes");
      if (!isBytes(sealed, AEAD_TAG_BYTES + 1, Number.MAX_SAFE_INTEGER))
        throw malformed("sealed proof too short");
      return { type: MessageType.Answer, nonce, ephemeral, sealed };
    }
    case MessageType.Result:
    case MessageType.Data: {
      if (v.length !== 2) throw malformed("a sealed message has 2 items");
      const sealed = v[1];
      if (!isBytes(sealed, AEAD_TAG_BYTES + 1, Number.MAX_SAFE_INTEGER))
        throw malformed("sealed box too short");
      return { type: v[0], sealed };
    }
    case MessageType.Abort: {
      if (v.length !== 2 || !isCode(v[1])) throw malformed("an Abort is [4, code]");
      return { type: MessageType.Abort, code: v[1] };
    }
    case MessageType.Select: {
      if (v.length !== 2 || typeof v[1] !== "string" || !ID_PATTERN.test(v[1]))
        throw malformed("a Select is [6, lockId]");
      return { type: MessageType.Select, lockId: v[1] };
    }
    default:
      throw malformed("unknown message type");
  }
}

/** Encode a Challenge. Throws `LK_INVALID_INPUT` on fields out of range. */
export function encodeChallenge(c: Omit<Challenge, "version">): Uint8Array {
  checkId("lock id", c.lockId);
  checkId("site id", c.siteId);
  if (!isUint(c.lockTime, Number.MAX_SAFE_INTEGER)) throw new LatchkeyError("LK_INVALID_INPUT", "lockTime");
  if (!isBytes(c.nonce, MIN_NONCE_BYTES, MAX_NONCE_BYTES) || !isBytes(c.ephemeral, 32, 32)) {
    throw new LatchkeyError("LK_INVALID_INPUT", "nonce 16-32 bytes and a 32-byte ephemeral key");
  }
  return encodeDeterministic([
    MessageType.Challenge,
    LINK_VERSION,
    c.lockId,
    c.siteId,
    c.lockTime,
    c.nonce,
    c.ephemeral,
  ]);
}

export function encodeAnswer(a: Answer): Uint8Array {
  return encodeDeterministic([MessageType.Answer, a.nonce, a.ephemeral, a.sealed]);
}

export function encodeSealedMessage(
  type: typeof MessageType.Result | typeof MessageType.Data,
  sealed: Uint8Array,
) {
  return encodeDeterministic([type, sealed]);
}

/** Encode a Select (phone → bridge: the lock it wants). Throws `LK_INVALID_INPUT` on a bad id. */
export function encodeSelect(lockId: string): Uint8Array {
  checkId("lock id", lockId);
  return encodeDeterministic([MessageType.Select, lockId]);
}

export function encodeAbort(code: ErrorCode): Uint8Array {
  checkCode(code);
  return encodeDeterministic([MessageType.Abort, code]);
}

function checkIntent(i: Intent): void {
  const kinds: readonly number[] = Object.values(IntentKind);
  if (!kinds.includes(i.kind) || !isUint(i.ageMs, MAX_U32)) {
    throw new LatchkeyError("LK_INVALID_INPUT", "intent kind 0..2 and age 0..2^32-1 ms");
  }
}

function checkAction(a: number): void {
  if (a !== LinkAction.Unlock && a !== LinkAction.Lock) {
    throw new LatchkeyError("LK_INVALID_INPUT", "action must be 1 (unlock) or 2 (lock)");
  }
}

function checkCarried(o: CarriedObject): void {
  if (
    !Array.isArray(o.signerChain) ||
    o.signerChain.length > MAX_CHAIN_LINKS ||
    !o.signerChain.every((l) => isBytes(l, 1, Number.MAX_SAFE_INTEGER)) ||
    !isBytes(o.object, 1, Number.MAX_SAFE_INTEGER)
  ) {
    throw new LatchkeyError("LK_INVALID_INPUT", "a carried object is 0-4 signer links and the object");
  }
}

function carriedWire(o: CarriedObject | null): unknown {
  if (o === null) return null;
  checkCarried(o);
  return [[...o.signerChain], o.object];
}

export function encodeProof(p: Proof): Uint8Array {
  checkAction(p.action);
  checkIntent(p.intent);
  const items: unknown[] = [[...p.chain], p.action, [p.intent.kind, p.intent.ageMs], p.signature];
  const c = p.carry ?? null;
  if (c !== null) {
    if (c.lists.length > MAX_CARRIED_LISTS) {
      throw new LatchkeyError("LK_INVALID_INPUT", `at most ${MAX_CARRIED_LISTS} carried lists`);
    }
    items.push([c.lists.map((l) => carriedWire(l)), carriedWire(c.status), carriedWire(c.time)]);
  }
  return encodeDeterministic(items);
}

function decodeCarried(v: unknown, what: string): CarriedObject {
  if (!Array.isArray(v) || v.length !== 2) throw malformed(`${what} is [signerChain, object]`);
  const [chain, object] = v;
  if (!Array.isArray(chain) || chain.length > MAX_CHAIN_LINKS) {
    throw malformed(`${what}: signer chain of 0-4 keys`);
  }
  for (const k of chain)
    if (!isBytes(k, 1, Number.MAX_SAFE_INTEGER)) throw malformed(`${what}: a key is a byte string`);
  if (!isBytes(object, 1, Number.MAX_SAFE_INTEGER)) throw malformed(`${what}: object is a byte string`);
  return { signerChain: chain as Uint8Array[], object };
}

function decodeCarry(v: unknown): Carry {
  if (!Array.isArray(v) || v.length !== 3) throw malformed("carry is [lists, status, time]");
  const [lists, status, time] = v;
  if (!Array.isArray(lists) || lists.length > MAX_CARRIED_LISTS) {
    throw malformed(`carry holds 0-${MAX_CARRIED_LISTS} lists`);
  }
  return {
    lists: lists.map((l) => decodeCarried(l, "a carried list")),
    status: status === null ? null : decodeCarried(status, "the status ticket"),
    time: time === null ? null : decodeCarried(time, "the time ticket"),
  };
}

/** Decode the plaintext of an Answer's sealed box. @throws LatchkeyError LK_LINK_MALFORMED / LK_LINK_LIMIT */
export function decodeProof(bytes: Uint8Array, options: DecodeMessageOptions = {}): Proof {
  const v = decodeCbor(bytes, options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
  if (!Array.isArray(v) || (v.length !== 4 && v.length !== 5)) {
    throw malformed("a Proof is [chain, action, intent, signature (, carry)]");
  }
  const [chain, action, intent, signature, carry] = v;
  if (!Array.isArray(chain) || chain.length < 1 || chain.length > MAX_CHAIN_LINKS) {
    throw malformed("chain must hold 1-4 keys");
  }
  for (const k of chain)
    if (!isBytes(k, 1, Number.MAX_SAFE_INTEGER)) throw malformed("a key is a byte string");
  if (action !== LinkAction.Unlock && action !== LinkAction.Lock) throw malformed("unknown action");
  if (!Array.isArray(intent) || intent.length !== 2) throw malformed("intent is [kind, ageMs]");
  const [kind, ageMs] = intent;
  if (kind !== IntentKind.Passive && kind !== IntentKind.UserAction && kind !== IntentKind.UserVerified) {
    throw malformed("unknown intent kind");
  }
  if (!isUint(ageMs, MAX_U32)) throw malformed("intent age must be 0..2^32-1 ms");
  if (!isBytes(signature, TRANSCRIPT_SIGNATURE_BYTES, TRANSCRIPT_SIGNATURE_BYTES)) {
    throw malformed("signature must be 64 bytes");
  }
  return {
    chain: chain as Uint8Array[],
    action,
    intent: { kind, ageMs: ageMs as Milliseconds },
    signature,
    carry: v.length === 5 ? decodeCarry(carry) : null,
  };
}

export function encodeResultBody(r: ResultBody): Uint8Array {
  if (r.accepted) return encodeDeterministic([true, ""]);
  checkCode(r.code);
  if (r.timeChallenge === undefined) return encodeDeterministic([false, r.code]);
  if (!isBytes(r.timeChallenge, TIME_CHALLENGE_BYTES, TIME_CHALLENGE_BYTES)) {
    throw new LatchkeyError("LK_INVALID_INPUT", `a time challenge is ${TIME_CHALLENGE_BYTES} bytes`);
  }
  return encodeDeterministic([false, r.code, r.timeChallenge]);
}

/** Decode the plaintext of a Result's sealed box. @throws LatchkeyError LK_LINK_MALFORMED */
export function decodeResultBody(bytes: Uint8Array): ResultBody {
  const v = decodeCbor(bytes, 96);
  if (!Array.isArray(v) || (v.length !== 2 && v.length !== 3)) {
    throw malformed("a Result body is [accepted, code (, timeChallenge)]");
  }
  if (v.length === 2 && v[0] === true && v[1] === "") return { accepted: true };
  if (v.length === 2 && v[0] === false && isCode(v[1])) return { accepted: false, code: v[1] };
  if (v[0] === false && isCode(v[1]) && isBytes(v[2], TIME_CHALLENGE_BYTES, TIME_CHALLENGE_BYTES)) {
    return { accepted: false, code: v[1], timeChallenge: v[2] };
  }
  throw malformed('a Result body is [true, ""], [false, code] or [false, code, timeChallenge]');
}

/**
 * The transcript hash: SHA-256 of `[ "LK-LINK-1 transcript", challenge, phoneEphemeral ]` (deterministic
 * CBOR), where `challenge` is the Challenge message exactly as the lock sent it. It is the HKDF salt of
 * the session keys and is signed by the holder, so it binds both ephemeral keys, the nonce, the lock's
 * id, site and time.
 */
export function transcriptHash(
  crypto: CryptoPort,
  challenge: Uint8Array,
  phoneEphemeral: Uint8Array,
): Uint8Array {
  return crypto.sha256(encodeDeterministic([LinkLabel.transcript, challenge, phoneEphemeral]));
}

/**
 * What the holder signs: `[ "LK-LINK-1 answer", transcriptHash, chain, action, [intentKind, intentAgeMs] ]`
 * (deterministic CBOR). The label keeps it from ever being a COSE Sig_structure ("Signature1", RFC 9052
 * § 4.4), so a handshake signature is never a signed envelope and the reverse.
 */
export function answerToBeSigned(
  th: Uint8Array,
  chain: readonly Uint8Array[],
  action: LinkAction,
  intent: Intent,
): Uint8Array {
  checkAction(action);
  checkIntent(intent);
  return encodeDeterministic([LinkLabel.answer, th, [...chain], action, [intent.kind, intent.ageMs]]);
}
