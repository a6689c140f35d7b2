/**
 * The unlock exchange over a {@link MessageLink}, both sides (spec: docs/protocol/link.md § "Handshake"):
 * the lock sends a Challenge, waits for the Answer, judges it with its {@link LockHandshake} and replies
 * with a Result (or an Abort); the phone answers the Challenge and reads the reply.
 *
 * The lock side takes a `decide` callback: the verified key goes there (the lock runtime will call
 * `decide()` and write the audit event), and its verdict goes back to the phone in the Result.
 */
import type { CryptoPort } from "../core/crypto.ts";
import { type ErrorCode, isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import {
  type AnswerOptions,
  type AnswerOutcome,
  type AsyncHolderSigner,
  answerChallenge,
  LockHandshake,
  type PhoneAnswer,
  type PhoneSession,
  prepareAnswer,
} from "../core/link/handshake.ts";
import {
  type Challenge,
  decodeMessage,
  encodeAbort,
  MessageType,
  type ResultBody,
} from "../core/link/messages.ts";
import type { VerifiedPhoneKey } from "../core/link/verified-phone-key.ts";
import { type EpochMs, Milliseconds, type MonotonicMs } from "../core/units.ts";
import { type MessageLink, processMonotonic } from "./message-link.ts";

/** How long each side waits for the other's next message by default. */
export const DEFAULT_STEP_TIMEOUT = Milliseconds(10_000);

export interface ServeUnlockOptions {
  /** The lock's trusted wall time. */
  readonly wallNow: () => EpochMs;
  /** The lock's monotonic clock (the same one the link stamps arrivals with). Default `performance.now()`. */
  readonly monoNow?: () => MonotonicMs;
  /** The runtime's decision on a verified key. Default: accepted. */
  readonly decide?: (verified: VerifiedPhoneKey) => ResultBody;
  /** How long to wait for the answer. Default 10 s. */
  readonly timeout?: Milliseconds;
}

/**
 * Run one unlock at the lock: challenge, judge the answer, reply. Resolves with the handshake outcome
 * (the session stays open for later Data messages); rejects with LK_LINK_TIMEOUT / LK_LINK_CLOSED or a
 * framing error when no answer came.
 */
export async function serveUnlock(
  link: MessageLink,
  lock: LockHandshake,
  options: ServeUnlockOptions,
): Promise<AnswerOutcome> {
  const monoNow = options.monoNow ?? processMonotonic;
  link.send(lock.challenge(options.wallNow(), monoNow()));
  const { message, at } = await link.next(options.timeout ?? DEFAULT_STEP_TIMEOUT);
  const outcome = lock.answer(message, options.wallNow(), at);
  const decision = outcome.ok ? options.decide?.(outcome.verified) : undefined;
  link.send(LockHandshake.reply(outcome, decision));
  return outcome;
}

export interface PhoneUnlockOptions extends Omit<AnswerOptions, "holder"> {
  /** The holder's private key, or a signer in a secure key store (the wallet's). */
  readonly holder: AnswerOptions["holder"] | AsyncHolderSigner;
  /** How long to wait for each of the lock's messages. Default 10 s. */
  readonly timeout?: Milliseconds;
}

export interface PhoneUnlockResult {
  readonly challenge: Challenge;
  readonly result: ResultBody;
  readonly session: PhoneSession;
}

/**
 * Run one unlock on the phone: wait for the Challenge, answer, read the lock's verdict. A challenge the
 * phone refuses (wrong lock, bad version) is answered with an Abort and rethrown.
 */
export async function phoneUnlock(
  crypto: CryptoPort,
  link: MessageLink,
  options: PhoneUnlockOptions,
): Promise<PhoneUnlockResult> {
  const timeout = options.timeout ?? DEFAULT_STEP_TIMEOUT;
  const { message } = await link.next(timeout);
  const early = peekAbort(message);
  if (early !== null) throw new LatchkeyError(early, "the lock ended the exchange before the handshake");
  let answered: PhoneAnswer;
  try {
    const h = options.holder;
    if ("sign" in h) {
      const prepared = prepareAnswer(crypto, message, options);
      answered = prepared.finish(await h.sign(prepared.toBeSigned));
    } else answered = answerChallenge(crypto, message, { ...options, holder: h });
  } catch (e) {
    const err = isLatchkeyError(e) ? e : new LatchkeyError("LK_LINK_MALFORMED", "bad challenge");
    link.send(encodeAbort(err.code));
    throw err;
  }
  link.send(answered.answer);
  const reply = await link.next(timeout);
  return {
    challenge: answered.challenge,
    result: answered.session.readResult(reply.message),
    session: answered.session,
  };
}

/** The code of an Abort message, or null for anything else. */
function peekAbort(bytes: Uint8Array): ErrorCode | null {
  try {
    const m = decodeMessage(bytes);
    return m.type === MessageType.Abort ? m.code : null;
  } catch {
    return null;
  }
}
