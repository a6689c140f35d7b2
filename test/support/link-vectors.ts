/**
 * Builds the link test vectors (test/vectors/link.json, docs/protocol/link.md § "Test vectors") from fixed
 * inputs: RFC 8032 § 7.1 Ed25519 keys for the owner, the admin and the holder, RFC 7748 § 6.1 X25519 keys
 * as the two ephemerals, a counting nonce, a fixed time. Used by scripts/gen-link-vectors.ts (writes the
 * file) and test/core/link-vectors.test.ts (rebuilds and compares, plus independent checks).
 */
import { type CryptoPort, fromHex, toHex } from "../../src/core/crypto.ts";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import { NumericDate } from "../../src/core/envelope/cwt.ts";
import { issueKey, KeyRight, keyId } from "../../src/core/keys/digital-key.ts";
import { splitMessage } from "../../src/core/link/frames.ts";
import { answerChallenge, LockHandshake } from "../../src/core/link/handshake.ts";
import {
  answerToBeSigned,
  decodeMessage,
  encodeProof,
  IntentKind,
  LinkAction,
  MessageType,
  transcriptHash,
} from "../../src/core/link/messages.ts";
import { aeadNonce, deriveSessionKeys } from "../../src/core/link/session.ts";
import { EpochMs, Milliseconds, MonotonicMs } from "../../src/core/units.ts";

export const VECTOR_INPUTS = {
  ownerSeed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", // RFC 8032 TEST 1
  adminSeed: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", // TEST 2
  holderSeed: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", // TEST 3
  lockEphemeralPrivate: "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", // RFC 7748 § 6.1 Alice
  phoneEphemeralPrivate: "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", // § 6.1 Bob
  nonce: "000102030405060708090a0b0c0d0e0f",
  lockId: "front-door",
  siteId: "home",
  /** The lock's wall time at challenge and answer: 2026-11-22T12:00:00Z. */
  lockTimeMs: Date.UTC(2026, 10, 22, 12, 0),
  /** Lock's monotonic time at the challenge and when the answer completed. */
  challengeAtMs: 1000,
  answerAtMs: 1120,
  action: LinkAction.Unlock,
  intent: { kind: IntentKind.UserAction, ageMs: 2500 },
  frameSizes: [20, 244],
} as const;

/** A port whose randomBytes hands out the given values in order (and fails if asked for more). */
export function scriptedRandom(crypto: CryptoPort, values: Uint8Array[]): CryptoPort {
  const queue = values.slice();
  return {
    ...crypto,
    randomBytes(n) {
      const v = queue.shift();
      if (v === undefined || v.length !== n) throw new Error(`unexpected randomBytes(${n})`);
      return v.slice();
    },
  };
}

const frames = (m: Uint8Array, id: number, size: number) => splitMessage(m, id, size).map(toHex);

/** Every value of the vector file, as lowercase hex where bytes. */
export function buildLinkVectors(crypto: CryptoPort) {
  const v = VECTOR_INPUTS;
  const ed = (seed: string) => {
    const privateKey = fromHex(seed);
    const publicKey = crypto.ed25519PublicKey(privateKey);
    return { alg: CoseAlg.EdDSA, privateKey, publicKey, pk: { alg: CoseAlg.EdDSA, key: publicKey } };
  };
  const owner = ed(v.ownerSeed);
  const admin = ed(v.adminSeed);
  const holder = ed(v.holderSeed);
  const T = v.lockTimeMs;
  const sec = (ms: number) => NumericDate(Math.floor(ms / 1000));
  const adminKey = issueKey(crypto, owner, {
    serial: fromHex("01a1"),
    holder: admin.pk,
    scope: { kind: "site", id: v.siteId },
    nbf: sec(T - 86_400_000),
    exp: sec(T + 365 * 86_400_000),
    rights: 15,
    schedule: null,
    leaseSeconds: null,
  });
  const guestKey = issueKey(crypto, admin, {
    serial: fromHex("02b2"),
    holder: holder.pk,
    scope: { kind: "lock", id: v.lockId },
    nbf: sec(T - 3_600_000),
    exp: sec(T + 7 * 86_400_000),
    rights: KeyRight.Unlock | KeyRight.Lock,
    schedule: [{ daysMask: 0x7f, startMinute: 7 * 60, endMinute: 22 * 60 }],
    leaseSeconds: null,
  });
  const chain = [adminKey, guestKey];

  const lockPort = scriptedRandom(crypto, [fromHex(v.nonce), fromHex(v.lockEphemeralPrivate)]);
  const lock = new LockHandshake(lockPort, { lockId: v.lockId, siteId: v.siteId, owner: owner.pk });
  const challenge = lock.challenge(EpochMs(T), MonotonicMs(v.challengeAtMs));
  const phonePort = scriptedRandom(crypto, [fromHex(v.phoneEphemeralPrivate)]);
  const intent = { kind: v.intent.kind, ageMs: Milliseconds(v.intent.ageMs) };
  const answered = answerChallenge(phonePort, challenge, {
    chain,
    holder: { alg: holder.alg, privateKey: holder.privateKey },
    action: v.action,
    intent,
    expectLockId: v.lockId,
  });
  const outcome = lock.answer(answered.answer, EpochMs(T), MonotonicMs(v.answerAtMs));
  if (!outcome.ok) throw new Error(`vector answer refused: ${outcome.refusal.code}`);
  const result = LockHandshake.reply(outcome);

  const lockEphemeral = crypto.x25519PublicKey(fromHex(v.lockEphemeralPrivate));
  const phoneEphemeral = crypto.x25519PublicKey(fromHex(v.phoneEphemeralPrivate));
  const shared = crypto.x25519SharedSecret(fromHex(v.lockEphemeralPrivate), phoneEphemeral)!;
  const th = transcriptHash(crypto, challenge, phoneEphemeral);
  const keys = deriveSessionKeys(crypto, shared, th);
  const tbs = answerToBeSigned(th, chain, v.action, intent);
  const signature = crypto.ed25519Sign(holder.privateKey, tbs);
  const proof = encodeProof({ chain, action: v.action, intent, signature });
  const answerMsg = decodeMessage(answered.answer);
  const resultMsg = decodeMessage(result);
  if (answerMsg.type !== MessageType.Answer || resultMsg.type !== MessageType.Result)
    throw new Error("shape");

  return {
    description:
      "Latchkey phone-lock link v1 (docs/protocol/link.md): one unlock handshake with fixed keys, nonce and time. Byte strings are lowercase hex. Generated by scripts/gen-link-vectors.ts.",
    notes: [
      "All keys are Ed25519 (RFC 8032 § 7.1 TEST 1-3 seeds), so every byte is reproducible; the ephemerals are the RFC 7748 § 6.1 key pairs (lock = Alice, phone = Bob).",
      "The lock draws the nonce, then its ephemeral private key; the phone draws its ephemeral private key.",
      "Frames: message id 0 for the first message each side sends (the Challenge and the Answer), 1 for the lock's Result.",
      "An implementation must reproduce challenge, transcriptHash, sharedSecret, both session keys, toBeSigned, signature, proof, sealedProof, answer, resultBody, sealedResult, result and all frames, and its lock must accept the answer at answerAtMs.",
    ],
    inputs: v,
    keys: {
      owner: {
        alg: -8,
        seed: v.ownerSeed,
        publicKey: toHex(owner.publicKey),
        keyId: toHex(keyId(crypto, owner.pk)),
      },
      admin: {
        alg: -8,
        seed: v.adminSeed,
        publicKey: toHex(admin.publicKey),
        keyId: toHex(keyId(crypto, admin.pk)),
      },
      holder: {
        alg: -8,
        seed: v.holderSeed,
        publicKey: toHex(holder.publicKey),
        keyId: toHex(keyId(crypto, holder.pk)),
      },
    },
    chain: chain.map(toHex),
    lockEphemeralPublic: toHex(lockEphemeral),
    phoneEphemeralPublic: toHex(phoneEphemeral),
    challenge: toHex(challenge),
    transcriptHash: toHex(th),
    sharedSecret: toHex(shared),
    phoneToLockKey: toHex(keys.phoneToLock),
    lockToPhoneKey: toHex(keys.lockToPhone),
    aeadNonce0: toHex(aeadNonce(0)),
    toBeSigned: toHex(tbs),
    signature: toHex(signature),
    proof: toHex(proof),
    sealedProof: toHex(answerMsg.sealed),
    answer: toHex(answered.answer),
    resultBody: "82f560",
    sealedResult: toHex(resultMsg.sealed),
    result: toHex(result),
    verified: {
      serials: outcome.verified.serials,
      holderKeyId: outcome.verified.holderKeyId,
      roundTripMs: outcome.verified.roundTrip,
    },
    frames: Object.fromEntries(
      v.frameSizes.map((size) => [
        String(size),
        {
          challenge: frames(challenge, 0, size),
          answer: frames(answered.answer, 0, size),
          result: frames(result, 1, size),
        },
      ]),
    ),
  };
}
