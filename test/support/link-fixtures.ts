/**
 * Parties, key chains and a lock for the link tests (docs/protocol/link.md): an owner, admins and guests
 * with EdDSA or ES256 keys, and chains of one to three links ending at a holder of either algorithm.
 */
import type { CryptoPort } from "../../src/core/crypto.ts";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import { NumericDate } from "../../src/core/envelope/cwt.ts";
import {
  ALL_KEY_RIGHTS,
  type DigitalKey,
  issueKey,
  KeyRight,
  type PublicKey,
} from "../../src/core/keys/digital-key.ts";
import { type AnswerOptions, LockHandshake, type LockLinkConfig } from "../../src/core/link/handshake.ts";
import { IntentKind, LinkAction } from "../../src/core/link/messages.ts";
import { EpochMs, Milliseconds, MonotonicMs } from "../../src/core/units.ts";
import { generateP256, nodeCrypto } from "../../src/platform/node-crypto.ts";

export const c = nodeCrypto;
/** The lock's wall time in every test: 2026-11-22 12:00 UTC. */
export const T = Date.UTC(2026, 10, 22, 12, 0);
export const NOW = EpochMs(T);
export const DAY = 86_400_000;
const sec = (ms: number) => NumericDate(Math.floor(ms / 1000));

export interface Party {
  readonly alg: CoseAlg;
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly pk: PublicKey;
}

export function ed(seed: Uint8Array = c.randomBytes(32)): Party {
  const publicKey = c.ed25519PublicKey(seed);
  return { alg: CoseAlg.EdDSA, privateKey: seed, publicKey, pk: { alg: CoseAlg.EdDSA, key: publicKey } };
}

export function p256(): Party {
  const k = generateP256();
  return {
    alg: CoseAlg.ES256,
    privateKey: k.privateKeyPkcs8Der,
    publicKey: k.publicKeySec1,
    pk: { alg: CoseAlg.ES256, key: k.publicKeySec1 },
  };
}

export type KeyBody = Omit<DigitalKey, "issuer" | "holder">;

/** Link i of a chain: an admin key (site, all rights) for intermediates, a guest key (this lock) for the leaf. */
export function body(i: number, leaf: boolean, over: Partial<KeyBody> = {}): KeyBody {
  return {
    serial: Uint8Array.of(0xa0 + i, 0x5e, 0x41, i),
    scope: leaf ? { kind: "lock", id: "front-door" } : { kind: "site", id: "home" },
    nbf: sec(T - DAY + i * 1000),
    exp: sec(T + 30 * DAY - i * 1000),
    rights: leaf ? KeyRight.Unlock | KeyRight.Lock : ALL_KEY_RIGHTS,
    schedule: null,
    leaseSeconds: null,
    ...over,
  };
}

export interface Wallet {
  readonly owner: Party;
  readonly holders: readonly Party[];
  readonly chain: Uint8Array[];
  readonly holder: Party;
}

/**
 * A chain of `links` keys: owner → holders[0] → … → holders[links-1]; intermediates are EdDSA or ES256 in
 * turn, the leaf holder has `leafAlg`. `leafOver` changes the leaf's body.
 */
export function wallet(
  links: number,
  leafAlg: CoseAlg,
  leafOver: Partial<KeyBody> = {},
  owner: Party = ed(),
): Wallet {
  const holders: Party[] = [];
  for (let i = 0; i < links; i++) {
    const last = i === links - 1;
    const alg = last ? leafAlg : i % 2 === 0 ? CoseAlg.ES256 : CoseAlg.EdDSA;
    holders.push(alg === CoseAlg.EdDSA ? ed() : p256());
  }
  const chain: Uint8Array[] = [];
  for (let i = 0; i < links; i++) {
    const issuer = i === 0 ? owner : holders[i - 1]!;
    const last = i === links - 1;
    chain.push(issueKey(c, issuer, { ...body(i, last, last ? leafOver : {}), holder: holders[i]!.pk }));
  }
  return { owner, holders, chain, holder: holders[links - 1]! };
}

export const userIntent = { kind: IntentKind.UserAction, ageMs: Milliseconds(800) };

export function answerOptions(w: Wallet, over: Partial<AnswerOptions> = {}): AnswerOptions {
  return {
    chain: w.chain,
    holder: { alg: w.holder.alg, privateKey: w.holder.privateKey },
    action: LinkAction.Unlock,
    intent: userIntent,
    ...over,
  };
}

export function lockFor(
  owner: Party,
  over: Partial<LockLinkConfig> = {},
  crypto: CryptoPort = c,
): LockHandshake {
  return new LockHandshake(crypto, { lockId: "front-door", siteId: "home", owner: owner.pk, ...over });
}

export const mono = (ms: number) => MonotonicMs(ms);

/** Does `hay` contain `needle` anywhere? */
export function containsBytes(hay: Uint8Array, needle: Uint8Array): boolean {
  if (needle.length === 0) return true;
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}
