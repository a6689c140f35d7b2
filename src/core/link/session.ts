/**
 * The link's key schedule and sealed channel (spec: docs/protocol/link.md § "Key schedule").
 *
 *   shared      = X25519(own ephemeral private, peer ephemeral public)            RFC 7748 § 6.1
 *   th          = transcriptHash(challenge, phoneEphemeral)                        messages.ts
 *   phoneToLock = HKDF-SHA-256(ikm = shared, salt = th, info = "LK-LINK-1 phone to lock", 32)   RFC 5869
 *   lockToPhone = HKDF-SHA-256(ikm = shared, salt = th, info = "LK-LINK-1 lock to phone", 32)
 *
 * Each direction has its own key and its own message counter, starting at 0. The AES-256-GCM nonce of
 * message n is 4 zero bytes ‖ n as 8 bytes big-endian; the AAD is the one-byte message type. Counters are
 * implicit (never sent): a replayed, dropped, reordered or re-typed message fails to open.
 */
import { type CryptoPort, utf8 } from "../crypto.ts";
import { LatchkeyError } from "../errors.ts";
import { hkdfSha256 } from "../hkdf.ts";
import { LinkLabel, type MessageType } from "./messages.ts";

/** Messages one direction may seal with one key before a new handshake is needed (2^32). */
export const MAX_MESSAGES_PER_KEY = 2 ** 32;
export const SESSION_KEY_BYTES = 32;

export interface SessionKeys {
  readonly phoneToLock: Uint8Array;
  readonly lockToPhone: Uint8Array;
}

/** The two direction keys from the X25519 shared secret and the transcript hash. */
export function deriveSessionKeys(crypto: CryptoPort, shared: Uint8Array, th: Uint8Array): SessionKeys {
  return {
    phoneToLock: hkdfSha256(crypto, shared, th, utf8(LinkLabel.phoneToLock), SESSION_KEY_BYTES),
    lockToPhone: hkdfSha256(crypto, shared, th, utf8(LinkLabel.lockToPhone), SESSION_KEY_BYTES),
  };
}

/** The 12-byte AES-GCM nonce of message `counter`: 4 zero bytes ‖ counter (u64 big-endian). */
export function aeadNonce(counter: number): Uint8Array {
  if (!Number.isInteger(counter) || counter < 0 || counter >= MAX_MESSAGES_PER_KEY) {
    throw new LatchkeyError("LK_LINK_LIMIT", "message counter exhausted: start a new handshake");
  }
  const n = new Uint8Array(12);
  const hi = Math.floor(counter / 2 ** 32);
  const lo = counter >>> 0;
  n[4] = hi >>> 24;
  n[5] = (hi >>> 16) & 0xff;
  n[6] = (hi >>> 8) & 0xff;
  n[7] = hi & 0xff;
  n[8] = lo >>> 24;
  n[9] = (lo >>> 16) & 0xff;
  n[10] = (lo >>> 8) & 0xff;
  n[11] = lo & 0xff;
  return n;
}

/** The states of a {@link SecureChannel}. */
export const ChannelState = {
  /** Sealing and opening. */
  Open: "open",
  /** A message failed to open, or the channel was closed: every further call throws. */
  Failed: "failed",
} as const;
export type ChannelState = (typeof ChannelState)[keyof typeof ChannelState];

/**
 * One side's view of an established session: a send key and a receive key, each with its counter.
 * Opening a message that does not authenticate fails the channel for good (`LK_LINK_DECRYPT`).
 */
export class SecureChannel {
  readonly #crypto: CryptoPort;
  readonly #sendKey: Uint8Array;
  readonly #receiveKey: Uint8Array;
  #sent = 0;
  #received = 0;
  #state: ChannelState = ChannelState.Open;

  constructor(crypto: CryptoPort, sendKey: Uint8Array, receiveKey: Uint8Array) {
    this.#crypto = crypto;
    this.#sendKey = sendKey.slice();
    this.#receiveKey = receiveKey.slice();
  }

  /** The channel of the phone (sends with phoneToLock) or the lock (sends with lockToPhone). */
  static of(crypto: CryptoPort, keys: SessionKeys, side: "phone" | "lock"): SecureChannel {
    return side === "phone"
      ? new SecureChannel(crypto, keys.phoneToLock, keys.lockToPhone)
      : new SecureChannel(crypto, keys.lockToPhone, keys.phoneToLock);
  }

  get state(): ChannelState {
    return this.#state;
  }

  /** Messages sealed and opened so far. */
  get counters(): { readonly sent: number; readonly received: number } {
    return { sent: this.#sent, received: this.#received };
  }

  /** Seal the next outgoing message of `type`. */
  seal(type: MessageType, plaintext: Uint8Array): Uint8Array {
    this.#checkOpen();
    const nonce = aeadNonce(this.#sent);
    const sealed = this.#crypto.aeadSeal(this.#sendKey, nonce, plaintext, Uint8Array.of(type));
    this.#sent++;
    return sealed;
  }

  /** Open the next incoming message of `type`. @throws LatchkeyError LK_LINK_DECRYPT (and the channel fails) */
  open(type: MessageType, sealed: Uint8Array): Uint8Array {
    this.#checkOpen();
    const nonce = aeadNonce(this.#received);
    const plain = this.#crypto.aeadOpen(this.#receiveKey, nonce, sealed, Uint8Array.of(type));
    if (plain === null) {
      this.close();
      throw new LatchkeyError("LK_LINK_DECRYPT", "sealed message does not authenticate");
    }
    this.#received++;
    return plain;
  }

  /** Forget the keys; every further call throws. */
  close(): void {
    this.#state = ChannelState.Failed;
    this.#sendKey.fill(0);
    this.#receiveKey.fill(0);
  }

  #checkOpen(): void {
    if (this.#state !== ChannelState.Open) {
      throw new LatchkeyError("LK_LINK_DECRYPT", "the session has failed or was closed");
    }
  }
}
