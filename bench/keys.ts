/**
 * Digital-key benchmark (issue 4 groundwork; docs/protocol/digital-keys.md), part of `npm run bench`:
 *
 *   key.verify_chain3.cold   verifyKeyChain on a 3-link Ed25519 chain (owner → admin → guest → holder)
 *                            plus one Ed25519 signature by the leaf holder over a 128-byte stand-in
 *                            transcript (the handshake itself is not built yet), with no cache
 *   key.verify_chain3        the same with a VerifiedLinkCache already holding the three links: what a
 *                            lock pays when a phone it has seen unlocks again (hashing, time, narrowing,
 *                            scope and the transcript signature are still done every time)
 *   baseline.jwt_eddsa_verify  jose (a well-known JOSE library) verifying the same trust decision as three
 *                            EdDSA JWTs, each with its parent's public key, checking exp/nbf; no transcript
 *
 * The three alternate in one loop. Every result is checked; a refusal aborts the bench.
 */
import { importJWK, jwtVerify, SignJWT } from "jose";
import { CoseAlg } from "../src/core/envelope/cose-sign1.ts";
import { NumericDate } from "../src/core/envelope/cwt.ts";
import {
  ALL_KEY_RIGHTS,
  type DigitalKey,
  issueKey,
  VerifiedLinkCache,
  verifyKeyChain,
} from "../src/core/keys/digital-key.ts";
import { EpochMs, Seconds } from "../src/core/units.ts";
import { nodeCrypto as c } from "../src/platform/node-crypto.ts";
import { type Metric, percentiles } from "./stats.ts";

const N = Number(process.env.BENCH_KEYS_N ?? 2_000);
const WARMUP = 200;

const b64u = (b: Uint8Array) => Buffer.from(b).toString("base64url");

export async function benchKeys(): Promise<Metric[]> {
  const T = Date.UTC(2026, 10, 22, 12);
  const parties = Array.from({ length: 4 }, () => {
    const seed = c.randomBytes(32);
    return { seed, pub: c.ed25519PublicKey(seed) };
  });
  const body = (i: number): Omit<DigitalKey, "issuer"> => ({
    serial: Uint8Array.of(i + 1),
    holder: { alg: CoseAlg.EdDSA, key: parties[i + 1]!.pub },
    scope: { kind: "site", id: "home" },
    nbf: NumericDate(T / 1000 - 86_400),
    exp: NumericDate(T / 1000 + 86_400),
    rights: ALL_KEY_RIGHTS,
    schedule: null,
    leaseSeconds: null,
  });
  const chain = [0, 1, 2].map((i) =>
    issueKey(c, { alg: CoseAlg.EdDSA, privateKey: parties[i]!.seed, publicKey: parties[i]!.pub }, body(i)),
  );
  const root = { alg: CoseAlg.EdDSA, key: parties[0]!.pub };
  const ctx = { lockId: "front-door", siteId: "home", now: EpochMs(T), skew: Seconds(60) };
  const transcript = c.randomBytes(128);
  const transcriptSig = c.ed25519Sign(parties[3]!.seed, transcript);
  const cache = new VerifiedLinkCache();

  const ours = (withCache: boolean): boolean => {
    const r = verifyKeyChain(c, root, chain, ctx, withCache ? cache : undefined);
    return r.ok && c.ed25519Verify(r.key.holder.key, transcript, transcriptSig);
  };

  // The same three delegations as JWTs: each signed by the parent, carrying the child's public key.
  const jwk = (i: number) => ({
    kty: "OKP",
    crv: "Ed25519",
    x: b64u(parties[i]!.pub),
    d: b64u(parties[i]!.seed),
  });
  const pubs = await Promise.all(
    [0, 1, 2].map((i) => importJWK({ kty: "OKP", crv: "Ed25519", x: b64u(parties[i]!.pub) }, "EdDSA")),
  );
  const jwts = await Promise.all(
    [0, 1, 2].map(async (i) =>
      new SignJWT({ cnf: { jwk: { kty: "OKP", crv: "Ed25519", x: b64u(parties[i + 1]!.pub) } }, rights: 15 })
        .setProtectedHeader({ alg: "EdDSA" })
        .setAudience("site:home")
        .setNotBefore(T / 1000 - 86_400)
        .setExpirationTime(T / 1000 + 86_400)
        .sign(await importJWK(jwk(i), "EdDSA")),
    ),
  );
  const theirs = async (): Promise<boolean> => {
    for (let i = 0; i < 3; i++) {
      const { payload } = await jwtVerify(jwts[i]!, pubs[i]!, {
        currentDate: new Date(T),
        audience: "site:home",
      });
      if (typeof payload.rights !== "number") return false;
    }
    return true;
  };

  const cold: number[] = [];
  const warm: number[] = [];
  const base: number[] = [];
  ours(true); // fill the cache
  for (let k = 0; k < WARMUP + N; k++) {
    let t = process.hrtime.bigint();
    const a = ours(false);
    const ta = Number(process.hrtime.bigint() - t);
    t = process.hrtime.bigint();
    const b = ours(true);
    const tb = Number(process.hrtime.bigint() - t);
    t = process.hrtime.bigint();
    const d = await theirs();
    const td = Number(process.hrtime.bigint() - t);
    if (!a || !b || !d) throw new Error("a key chain was refused in the bench");
    if (k >= WARMUP) {
      cold.push(ta);
      warm.push(tb);
      base.push(td);
    }
  }
  return [
    { name: "key.verify_chain3.cold", unit: "ms", ...percentiles(cold), n: cold.length },
    { name: "key.verify_chain3", unit: "ms", ...percentiles(warm), n: warm.length },
    { name: "baseline.jwt_eddsa_verify", unit: "ms", ...percentiles(base), n: base.length },
  ];
}
