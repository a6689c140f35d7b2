/**
 * The unlock handshake, both sides (spec: docs/protocol/link.md § "Handshake").
 *
 *   lock  → phone  Challenge [1, 1, lockId, siteId, lockTime, nonce, eL]               (clear)
 *   phone → lock   Answer    [2, nonce, eP, AEAD_p2l(Proof[chain, action, intent, sig])]
 *   lock  → phone  Result    [3, AEAD_l2p([accepted, code])]   or   Abort [4, code] before keys exist
 *
 * The lock ({@link LockHandshake}) keeps its outstanding challenges (single-use, bounded, expiring), refuses
 * an answer later than the round-trip bound after its challenge (relay resistance), opens the proof,
 * verifies the key chain from its owner key, the holder's signature over the transcript, the caller's
 * revocation check and the intent, and returns a {@link VerifiedPhoneKey} for `decide()`. The phone
 * ({@link answerChallenge}) checks the challenge, derives the session keys and signs.
 *
 * Pure: crypto and randomness through {@link CryptoPort}, wall time and monotonic time passed in.
 */
import { type CryptoPort, toHex } from "../crypto.ts";
import { CoseAlg } from "../envelope/cose-sign1.ts";
import { numericDateOf } from "../envelope/cwt.ts";
import { type ErrorCode, isLatchkeyError, LatchkeyError } from "../errors.ts";
import { unverifiedHolder } from "../keys/authority.ts";
import {
  assertUsablePublicKey,
  type DigitalKey,
  type KeyRefusal,
  type PublicKey,
  type VerifiedLinkCache,
  verifyKeyChain,
} from "../keys/digital-key.ts";
import type { EpochMs, Milliseconds, MonotonicMs, Seconds } from "../units.ts";
import {
  answerToBeSigned,
  type CarriedObject,
  type Carry,
  type Challenge,
  decodeMessage,
  decodeProof,
  decodeResultBody,
  encodeAbort,
  encodeAnswer,
  encodeChallenge,
  encodeProof,
  encodeResultBody,
  encodeSealedMessage,
  type Intent,
  IntentKind,
  type LinkAction,
  MessageType,
  NONCE_BYTES,
  type Proof,
  type ResultBody,
  transcriptHash,
  X25519_KEY_BYTES,
} from "./messages.ts";
import { ChannelState, deriveSessionKeys, SecureChannel } from "./session.ts";
import { type VerifiedPhoneKey, verifiedPhoneKey } from "./verified-phone-key.ts";

/** Default round-trip bound: suits BLE with 244-byte frames (a few connection intervals plus phone compute). */
export const DEFAULT_ROUND_TRIP_BOUND_MS = 1500;
/** An outstanding challenge is forgotten this long after it was sent. */
export const DEFAULT_CHALLENGE_LIFETIME_MS = 30_000;
/** Outstanding challenges a lock keeps at once; the oldest is dropped for a new one. */
export const DEFAULT_MAX_OUTSTANDING = 16;
/** The user action behind an answer may be at most this old. */
export const DEFAULT_MAX_INTENT_AGE_MS = 15_000;
/** Clock skew allowed on key validity. */
export const DEFAULT_KEY_SKEW_S = 60;

/** A lock's link settings. */
export interface LockLinkConfig {
  readonly lockId: string;
  readonly siteId: string;
  /** The owner key registered when the lock was claimed: root of every chain. */
  readonly owner: PublicKey;
  /** Answers complete later than this after their challenge are refused (`LK_LINK_TOO_LATE`). Default 1500 ms. */
  readonly roundTripBound?: Milliseconds;
  /** How long a challenge stays outstanding (must be ≥ the round-trip bound). Default 30,000 ms. */
  readonly challengeLifetime?: Milliseconds;
  /** Most outstanding challenges. Default 16. */
  readonly maxOutstanding?: number;
  /** Accept answers with intent kind Passive (proximity unlock). Default false. */
  readonly allowPassive?: boolean;
  /** Oldest user action accepted. Default 15,000 ms. */
  readonly maxIntentAge?: Milliseconds;
  /** Skew on key validity. Default 60 s. */
  readonly skew?: Seconds;
  /** Largest message accepted. Default 4096 bytes. */
  readonly maxMessageBytes?: number;
  /**
   * The caller's revocation check, called for every link (root first) of a chain whose signatures verified.
   * True refuses the answer with `LK_LINK_REVOKED`. If it throws, the error passes through.
   */
  readonly isRevoked?: (serial: Uint8Array, link: number, key: DigitalKey) => boolean;
  /**
   * Objects the phone carried (revocation lists, a time ticket), handed over once the answer opened and
   * before its key chain is verified, so a newer list or a fresh time ticket applies to this very answer.
   * Returns the lock's time to verify the chain at (it changes when a time ticket set the clock). Must not
   * throw: a carried object the lock refuses is the caller's to log and ignore.
   */
  readonly onCarry?: (carry: Carry, wallNow: EpochMs, monoNow: MonotonicMs) => EpochMs;
  /**
   * Verify a carried status ticket for `holder` (the key the chain's leaf names, read before the chain is
   * verified; the chain must then verify with that leaf) and return its issue time, or null when it does
   * not verify. Needed for lease keys (`lk.lease`).
   */
  readonly statusTicketAt?: (ticket: CarriedObject, holder: PublicKey, now: EpochMs) => EpochMs | null;
  /** A cache of verified links, so repeat unlocks verify only the transcript signature and what changed. */
  readonly cache?: VerifiedLinkCache;
}

/** Why an answer was refused: a stable code, a safe detail, and for key refusals the link and reason. */
export interface LinkRefusal {
  readonly code: ErrorCode;
  readonly detail: string;
  readonly link?: number;
  readonly keyRefusal?: KeyRefusal;
}

/** The error of a refusal (for callers that throw). */
export function refusalError(r: LinkRefusal): LatchkeyError {
  const data: Record<string, unknown> = {};
  if (r.link !== undefined) data.link = r.link;
  if (r.keyRefusal !== undefined) data.keyRefusal = r.keyRefusal;
  return new LatchkeyError(r.code, r.detail, data);
}

/**
 * The lock's verdict on an answer. `channel` is the session (for the Result and later messages) whenever the
 * answer opened; when it is null, the lock answers with an Abort in the clear.
 */
export type AnswerOutcome =
  | { readonly ok: true; readonly verified: VerifiedPhoneKey; readonly channel: SecureChannel }
  | { readonly ok: false; readonly refusal: LinkRefusal; readonly channel: SecureChannel | null };

interface Outstanding {
  readonly challenge: Uint8Array;
  readonly ephemeralPrivate: Uint8Array;
  readonly sentAt: MonotonicMs;
}

const KEY_REFUSAL_CODES: Readonly<Record<KeyRefusal, ErrorCode>> = {
  malformed: "LK_LINK_KEY_INVALID",
  signature: "LK_LINK_KEY_INVALID",
  widened: "LK_LINK_KEY_INVALID",
  no_issue_right: "LK_LINK_KEY_INVALID",
  chain_too_long: "LK_LINK_KEY_INVALID",
  expired: "LK_LINK_KEY_EXPIRED",
  not_yet_valid: "LK_LINK_KEY_EXPIRED",
  wrong_lock: "LK_LINK_WRONG_LOCK",
  lease_stale: "LK_LINK_LEASE_STALE",
};

function refuse(code: ErrorCode, detail: string, channel: SecureChannel | null = null): AnswerOutcome {
  return { ok: false, refusal: { code, detail }, channel };
}

/** Verify a transcript signature with a holder key of either allowed algorithm. */
function verifyHolderSignature(
  crypto: CryptoPort,
  holder: PublicKey,
  data: Uint8Array,
  sig: Uint8Array,
): boolean {
  if (holder.alg === CoseAlg.EdDSA) return crypto.ed25519Verify(holder.key, data, sig);
  if (holder.alg === CoseAlg.ES256) return crypto.p256Verify(holder.key, data, sig);
  return false;
}

/** A lock's side of the handshake. One instance per lock; it serves every connection. */
export class LockHandshake {
  readonly #crypto: CryptoPort;
  readonly #config: LockLinkConfig;
  readonly #roundTripBound: number;
  readonly #lifetime: number;
  readonly #maxOutstanding: number;
  readonly #maxIntentAge: number;
  /** Outstanding challenges by nonce (hex), oldest first. */
  readonly #outstanding = new Map<string, Outstanding>();

  constructor(crypto: CryptoPort, config: LockLinkConfig) {
    assertUsablePublicKey(config.owner);
    encodeChallenge({
      lockId: config.lockId,
      siteId: config.siteId,
      lockTime: numericDateOf(0 as EpochMs),
      nonce: new Uint8Array(NONCE_BYTES),
      ephemeral: new Uint8Array(X25519_KEY_BYTES),
    }); // validates the ids
    this.#crypto = crypto;
    this.#config = config;
    this.#roundTripBound = config.roundTripBound ?? DEFAULT_ROUND_TRIP_BOUND_MS;
    this.#lifetime = config.challengeLifetime ?? DEFAULT_CHALLENGE_LIFETIME_MS;
    this.#maxOutstanding = config.maxOutstanding ?? DEFAULT_MAX_OUTSTANDING;
    this.#maxIntentAge = config.maxIntentAge ?? DEFAULT_MAX_INTENT_AGE_MS;
    const ok =
      this.#roundTripBound > 0 &&
      Number.isFinite(this.#roundTripBound) &&
      this.#lifetime >= this.#roundTripBound &&
      Number.isFinite(this.#lifetime) &&
      Number.isInteger(this.#maxOutstanding) &&
      this.#maxOutstanding >= 1 &&
      this.#maxOutstanding <= 1024 &&
      this.#maxIntentAge >= 0;
    if (!ok) throw new LatchkeyError("LK_INVALID_INPUT", "link settings out of range");
  }

  /** Challenges outstanding now (after the last call's expiry). */
  get outstanding(): number {
    return this.#outstanding.size;
  }

  /**
   * A fresh Challenge to send: a random nonce and ephemeral key, the lock's ids and its time `wallNow`.
   * The challenge stays outstanding until answered, until its lifetime passes, or until newer challenges
   * push it out.
   */
  challenge(wallNow: EpochMs, monoNow: MonotonicMs): Uint8Array {
    this.#expire(monoNow);
    while (this.#outstanding.size >= this.#maxOutstanding) {
      const oldest = this.#outstanding.keys().next().value as string;
      this.#forget(oldest);
    }
    const nonce = this.#crypto.randomBytes(NONCE_BYTES);
    const ephemeralPrivate = this.#crypto.randomBytes(X25519_KEY_BYTES);
    const bytes = encodeChallenge({
      lockId: this.#config.lockId,
      siteId: this.#config.siteId,
      lockTime: numericDateOf(wallNow),
      nonce,
      ephemeral: this.#crypto.x25519PublicKey(ephemeralPrivate),
    });
    const key = toHex(nonce);
    this.#forget(key); // a repeated nonce (a broken RNG) replaces, never duplicates
    this.#outstanding.set(key, { challenge: bytes, ephemeralPrivate, sentAt: monoNow });
    return bytes;
  }

  /**
   * Judge an Answer that completed at `monoNow` (lock's time `wallNow`). Consumes its challenge whatever
   * the verdict: one answer per challenge. Never throws for any input bytes (except from `isRevoked`).
   */
  answer(bytes: Uint8Array, wallNow: EpochMs, monoNow: MonotonicMs): AnswerOutcome {
    let msg: ReturnType<typeof decodeMessage>;
    try {
      msg = decodeMessage(bytes, { maxBytes: this.#config.maxMessageBytes });
    } catch (e) {
      return { ok: false, refusal: refusalOf(e), channel: null };
    }
    if (msg.type !== MessageType.Answer) return refuse("LK_LINK_PROTOCOL", "expected an Answer");
    const key = toHex(msg.nonce);
    const entry = this.#outstanding.get(key);
    if (entry === undefined) return refuse("LK_LINK_NONCE", "no such challenge outstanding");
    // Single use: whatever follows, this challenge is gone.
    const ephemeralPrivate = entry.ephemeralPrivate.slice();
    this.#forget(key);
    const elapsed = monoNow - entry.sentAt;
    if (!(elapsed <= this.#lifetime) || !(elapsed <= this.#roundTripBound)) ephemeralPrivate.fill(0);
    if (!(elapsed <= this.#lifetime)) return refuse("LK_LINK_NONCE", "no such challenge outstanding");
    if (!(elapsed <= this.#roundTripBound)) {
      return refuse(
        "LK_LINK_TOO_LATE",
        `answer after ${Math.round(elapsed)} ms; bound ${this.#roundTripBound} ms`,
      );
    }

    const shared = this.#crypto.x25519SharedSecret(ephemeralPrivate, msg.ephemeral);
    ephemeralPrivate.fill(0);
    if (shared === null) return refuse("LK_LINK_MALFORMED", "unusable ephemeral key");
    const th = transcriptHash(this.#crypto, entry.challenge, msg.ephemeral);
    const channel = SecureChannel.of(this.#crypto, deriveSessionKeys(this.#crypto, shared, th), "lock");
    shared.fill(0);
    let proof: Proof;
    try {
      proof = decodeProof(channel.open(MessageType.Answer, msg.sealed), {
        maxBytes: this.#config.maxMessageBytes,
      });
    } catch (e) {
      const r = refusalOf(e);
      return { ok: false, refusal: r, channel: r.code === "LK_LINK_DECRYPT" ? null : channel };
    }

    const carry = proof.carry ?? null;
    let now = wallNow;
    if (carry !== null && this.#config.onCarry !== undefined)
      now = this.#config.onCarry(carry, wallNow, monoNow);
    let statusAt: EpochMs | null = null;
    if (carry?.status && this.#config.statusTicketAt !== undefined) {
      let holder: PublicKey | null = null;
      try {
        holder = unverifiedHolder(proof.chain[proof.chain.length - 1]!);
      } catch {
        holder = null; // the chain fails to verify below
      }
      if (holder !== null) statusAt = this.#config.statusTicketAt(carry.status, holder, now);
    }
    const chain = verifyKeyChain(
      this.#crypto,
      this.#config.owner,
      proof.chain,
      {
        lockId: this.#config.lockId,
        siteId: this.#config.siteId,
        now,
        skew: this.#config.skew ?? (DEFAULT_KEY_SKEW_S as Seconds),
        statusTicketAt: statusAt,
      },
      this.#config.cache,
    );
    if (!chain.ok) {
      const refusal: LinkRefusal = {
        code: KEY_REFUSAL_CODES[chain.reason],
        detail: `key chain refused at link ${chain.link}: ${chain.reason}`,
        link: chain.link,
        keyRefusal: chain.reason,
      };
      return { ok: false, refusal, channel };
    }
    const tbs = answerToBeSigned(th, proof.chain, proof.action, proof.intent);
    if (!verifyHolderSignature(this.#crypto, chain.key.holder, tbs, proof.signature)) {
      return refuse("LK_LINK_SIGNATURE", "transcript signature does not verify", channel);
    }
    const isRevoked = this.#config.isRevoked;
    if (isRevoked !== undefined) {
      for (let i = 0; i < chain.links.length; i++) {
        const link = chain.links[i]!;
        if (isRevoked(link.serial, i, link)) {
          return {
            ok: false,
            refusal: { code: "LK_LINK_REVOKED", detail: `link ${i} is revoked`, link: i },
            channel,
          };
        }
      }
    }
    if (proof.intent.kind === IntentKind.Passive) {
      if (this.#config.allowPassive !== true) {
        return refuse("LK_LINK_NO_INTENT", "passive unlock is off: the user must act", channel);
      }
    } else if (proof.intent.ageMs > this.#maxIntentAge) {
      return refuse("LK_LINK_NO_INTENT", "the user action is too old", channel);
    }
    return {
      ok: true,
      verified: verifiedPhoneKey(
        this.#crypto,
        chain.links,
        proof.action,
        proof.intent,
        now,
        elapsed as Milliseconds,
      ),
      channel,
    };
  }

  /**
   * The message the lock sends back: a sealed Result when the session is up, else a clear Abort.
   * `decision` is what the runtime decided about a verified key (default: accepted). A refused answer
   * replies with its refusal code, or with `decision` when that is a refusal too (the runtime may name
   * another code, such as LK_CLOCK_UNTRUSTED with a time challenge); it is never accepted.
   */
  static reply(outcome: AnswerOutcome, decision?: ResultBody): Uint8Array {
    if (outcome.channel === null || outcome.channel.state !== ChannelState.Open) {
      return encodeAbort(outcome.ok ? "LK_INTERNAL" : outcome.refusal.code);
    }
    let body: ResultBody;
    if (outcome.ok) body = decision ?? { accepted: true };
    else if (decision !== undefined && !decision.accepted)
      body = decision; // e.g. with a time challenge
    else body = { accepted: false, code: outcome.refusal.code };
    return encodeSealedMessage(
      MessageType.Result,
      outcome.channel.seal(MessageType.Result, encodeResultBody(body)),
    );
  }

  #expire(monoNow: MonotonicMs): void {
    for (const [k, e] of this.#outstanding) {
      if (monoNow - e.sentAt > this.#lifetime) this.#forget(k);
      else break; // insertion order is send order (monotonic time never goes back)
    }
  }

  #forget(key: string): void {
    const e = this.#outstanding.get(key);
    if (e !== undefined) {
      e.ephemeralPrivate.fill(0);
      this.#outstanding.delete(key);
    }
  }
}

function refusalOf(e: unknown): LinkRefusal {
  if (isLatchkeyError(e) && e.code.startsWith("LK_LINK_")) return { code: e.code, detail: e.detail };
  return { code: "LK_LINK_MALFORMED", detail: "answer is not well-formed" };
}

/** The holder's private key, as the envelope's signer takes it. */
export interface HolderSigner {
  readonly alg: CoseAlg;
  /** EdDSA: the 32-byte Ed25519 seed. ES256: the P-256 private key as PKCS#8 DER. */
  readonly privateKey: Uint8Array;
}

/** What the phone puts in its answer. */
export interface AnswerOptions {
  /** The key chain, root first (the wallet's stored keys). */
  readonly chain: readonly Uint8Array[];
  readonly holder: HolderSigner;
  readonly action: LinkAction;
  /** Set from a real user action only (docs/protocol/link.md § "Intent"). */
  readonly intent: Intent;
  /** Refuse a challenge from any other lock (`LK_LINK_WRONG_LOCK`). */
  readonly expectLockId?: string;
  /** Largest message accepted. Default 4096 bytes. */
  readonly maxMessageBytes?: number;
  /** Revocation lists, status and time tickets to hand to the lock (the wallet's latest). */
  readonly carry?: Carry | null;
}

/** A phone's answer and the session it opened. */
export interface PhoneAnswer {
  readonly challenge: Challenge;
  readonly answer: Uint8Array;
  readonly session: PhoneSession;
}

/** The phone's side after answering: reads the lock's Result (or Abort) and holds the session. */
export class PhoneSession {
  readonly channel: SecureChannel;
  readonly #maxBytes: number | undefined;

  constructor(channel: SecureChannel, maxBytes?: number) {
    this.channel = channel;
    this.#maxBytes = maxBytes;
  }

  /** Read the lock's reply. @throws LatchkeyError LK_LINK_MALFORMED / LK_LINK_DECRYPT / LK_LINK_PROTOCOL */
  readResult(bytes: Uint8Array): ResultBody {
    const msg = decodeMessage(bytes, { maxBytes: this.#maxBytes });
    if (msg.type === MessageType.Abort) return { accepted: false, code: msg.code };
    if (msg.type !== MessageType.Result) {
      throw new LatchkeyError("LK_LINK_PROTOCOL", "expected a Result or an Abort");
    }
    return decodeResultBody(this.channel.open(MessageType.Result, msg.sealed));
  }
}

/** A holder key kept in a secure store: only its algorithm and a signing call (the wallet's SecureKeyStore). */
export interface AsyncHolderSigner {
  readonly alg: CoseAlg;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** A challenge checked and the session derived; the answer waits for the holder's signature. */
export interface PreparedAnswer {
  readonly challenge: Challenge;
  /** What the holder signs ({@link answerToBeSigned}). */
  readonly toBeSigned: Uint8Array;
  /** Seal the proof with the holder's 64-byte signature and encode the Answer. */
  finish(signature: Uint8Array): PhoneAnswer;
}

/**
 * The phone's side, first half: check a Challenge, make an ephemeral key, derive the session keys and the
 * input the holder signs. Randomness (the ephemeral key) from the port.
 * @throws LatchkeyError LK_LINK_MALFORMED / LK_LINK_VERSION / LK_LINK_PROTOCOL / LK_LINK_WRONG_LOCK
 */
export function prepareAnswer(
  crypto: CryptoPort,
  challengeBytes: Uint8Array,
  options: Omit<AnswerOptions, "holder">,
): PreparedAnswer {
  const msg = decodeMessage(challengeBytes, { maxBytes: options.maxMessageBytes });
  if (msg.type !== MessageType.Challenge) throw new LatchkeyError("LK_LINK_PROTOCOL", "expected a Challenge");
  if (options.expectLockId !== undefined && msg.lockId !== options.expectLockId) {
    throw new LatchkeyError("LK_LINK_WRONG_LOCK", "the challenge comes from another lock");
  }
  const ephemeralPrivate = crypto.randomBytes(X25519_KEY_BYTES);
  const ephemeral = crypto.x25519PublicKey(ephemeralPrivate);
  const shared = crypto.x25519SharedSecret(ephemeralPrivate, msg.ephemeral);
  ephemeralPrivate.fill(0);
  if (shared === null) throw new LatchkeyError("LK_LINK_MALFORMED", "unusable ephemeral key");
  const th = transcriptHash(crypto, challengeBytes, ephemeral);
  const channel = SecureChannel.of(crypto, deriveSessionKeys(crypto, shared, th), "phone");
  shared.fill(0);
  const toBeSigned = answerToBeSigned(th, options.chain, options.action, options.intent);
  const challenge: Challenge = {
    version: msg.version,
    lockId: msg.lockId,
    siteId: msg.siteId,
    lockTime: msg.lockTime,
    nonce: msg.nonce,
    ephemeral: msg.ephemeral,
  };
  return {
    challenge,
    toBeSigned,
    finish(signature: Uint8Array): PhoneAnswer {
      const proof = encodeProof({
        chain: options.chain,
        action: options.action,
        intent: options.intent,
        signature,
        carry: options.carry ?? null,
      });
      const sealed = channel.seal(MessageType.Answer, proof);
      return {
        challenge,
        answer: encodeAnswer({ nonce: msg.nonce, ephemeral, sealed }),
        session: new PhoneSession(channel, options.maxMessageBytes),
      };
    },
  };
}

/**
 * The phone's side with the holder's private key at hand: {@link prepareAnswer}, sign, seal.
 * @throws LatchkeyError LK_LINK_MALFORMED / LK_LINK_VERSION / LK_LINK_PROTOCOL / LK_LINK_WRONG_LOCK /
 *   LK_INVALID_INPUT (holder algorithm)
 */
export function answerChallenge(
  crypto: CryptoPort,
  challengeBytes: Uint8Array,
  options: AnswerOptions,
): PhoneAnswer {
  const prepared = prepareAnswer(crypto, challengeBytes, options);
  const h = options.holder;
  let signature: Uint8Array;
  if (h.alg === CoseAlg.EdDSA) signature = crypto.ed25519Sign(h.privateKey, prepared.toBeSigned);
  else if (h.alg === CoseAlg.ES256) signature = crypto.p256Sign(h.privateKey, prepared.toBeSigned);
  else throw new LatchkeyError("LK_INVALID_INPUT", "holder algorithm must be EdDSA or ES256");
  return prepared.finish(signature);
}
