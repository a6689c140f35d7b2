/**
 * Builds test/vectors/key-objects.json (spec: docs/protocol/digital-keys.md § "Test vectors"): revocation
 * lists, time tickets and status tickets signed with fixed Ed25519 keys (RFC 8032 § 7.1 TEST 1–3), so
 * every byte is reproducible. The tests compare the file with a fresh build; to rewrite the file after a
 * deliberate format change: `node --import tsx test/support/key-object-vectors.ts`.
 */
import { writeFileSync } from "node:fs";
import { fromHex, toHex } from "../../src/core/crypto.ts";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import { NumericDate } from "../../src/core/envelope/cwt.ts";
import type { Issuer } from "../../src/core/keys/authority.ts";
import { issueKey, KeyRight, keyId, type PublicKey } from "../../src/core/keys/digital-key.ts";
import { rangesFromSerials, type SerialRange, signRevocationList } from "../../src/core/keys/revocation.ts";
import { signStatusTicket, signTimeTicket } from "../../src/core/keys/tickets.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";

const c = nodeCrypto;

function party(seedHex: string): Issuer & { pk: PublicKey } {
  const seed = fromHex(seedHex);
  const publicKey = c.ed25519PublicKey(seed);
  return { alg: CoseAlg.EdDSA, privateKey: seed, publicKey, pk: { alg: CoseAlg.EdDSA, key: publicKey } };
}

/** RFC 8032 § 7.1 TEST 1, 2 and 3. */
export const owner = party("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
export const admin = party("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
export const phone = party("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7");

/** 2026-11-22T12:00:00Z. */
export const VECTOR_TIME = NumericDate(Date.UTC(2026, 10, 22, 12, 0) / 1000);
export const VECTOR_LOCK = { lockId: "front-door", siteId: "home" } as const;

const serial = (n: number): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
};
const rangesHex = (rs: readonly SerialRange[]) => rs.map((r) => [toHex(r.first), toHex(r.last)]);

/** The whole vector file as a JSON value. */
export function buildKeyObjectVectors() {
  const T = VECTOR_TIME;
  const adminLink = issueKey(c, owner, {
    serial: serial(1),
    holder: admin.pk,
    scope: { kind: "site", id: "home" },
    nbf: NumericDate(T - 86_400),
    exp: NumericDate(T + 365 * 86_400),
    rights: KeyRight.Unlock | KeyRight.IssueKeys,
    schedule: null,
    leaseSeconds: null,
  });
  const revokedSerials = [serial(7), serial(100), serial(101), serial(102), serial(103), serial(500)];
  const ranges = rangesFromSerials(revokedSerials);
  const keys = [
    ["owner", owner],
    ["admin", admin],
    ["phone", phone],
  ] as const;
  const challenge = fromHex("000102030405060708090a0b0c0d0e0f");
  return {
    description:
      "Latchkey revocation lists, time tickets and status tickets (docs/protocol/digital-keys.md). Ed25519 is deterministic: every byte must be reproduced.",
    lock: { ...VECTOR_LOCK, now: T, skew: 60, root: "owner" },
    keys: keys.map(([name, p]) => ({
      name,
      alg: p.alg,
      seed: toHex(p.privateKey),
      publicKey: toHex(p.publicKey),
      keyId: toHex(keyId(c, p.pk)),
    })),
    adminChain: {
      note: "The admin's key: issued by the owner, site:home, rights unlock|issue-keys (9), serial 0000000000000001, valid T-1 day .. T+365 days. The delegate's signer chain.",
      links: [toHex(adminLink)],
    },
    revocations: [
      {
        name: "owner-signed site list, version 1",
        signer: "owner",
        signerChain: [],
        list: { scope: "site:home", version: 1, iat: T - 3600, ranges: rangesHex(ranges) },
        revokedSerials: revokedSerials.map(toHex),
        coseSign1: toHex(
          signRevocationList(c, owner, {
            scope: { kind: "site", id: "home" },
            version: 1,
            issuedAt: NumericDate(T - 3600),
            ranges,
          }),
        ),
      },
      {
        name: "delegate-signed lock list, version 2 (adds serial 0000000000000009)",
        signer: "admin",
        signerChain: [toHex(adminLink)],
        list: {
          scope: "lock:front-door",
          version: 2,
          iat: T - 60,
          ranges: rangesHex(rangesFromSerials([...revokedSerials, serial(9)])),
        },
        coseSign1: toHex(
          signRevocationList(c, admin, {
            scope: { kind: "lock", id: "front-door" },
            version: 2,
            issuedAt: NumericDate(T - 60),
            ranges: rangesFromSerials([...revokedSerials, serial(9)]),
          }),
        ),
      },
      {
        name: "owner-signed empty site list",
        signer: "owner",
        signerChain: [],
        list: { scope: "site:home", version: 3, iat: T, ranges: [] },
        coseSign1: toHex(
          signRevocationList(c, owner, {
            scope: { kind: "site", id: "home" },
            version: 3,
            issuedAt: T,
            ranges: [],
          }),
        ),
      },
    ],
    timeTickets: [
      {
        name: "owner-signed, answering the lock's challenge",
        signer: "owner",
        signerChain: [],
        ticket: { scope: "lock:front-door", time: T, challenge: toHex(challenge) },
        coseSign1: toHex(
          signTimeTicket(c, owner, { scope: { kind: "lock", id: "front-door" }, time: T, challenge }),
        ),
      },
      {
        name: "delegate-signed, no challenge (carried by the wallet; raises the floor only)",
        signer: "admin",
        signerChain: [toHex(adminLink)],
        ticket: { scope: "site:home", time: T - 600, challenge: null },
        coseSign1: toHex(
          signTimeTicket(c, admin, {
            scope: { kind: "site", id: "home" },
            time: NumericDate(T - 600),
            challenge: null,
          }),
        ),
      },
    ],
    statusTickets: [
      {
        name: "delegate-signed status ticket for the phone's key",
        signer: "admin",
        signerChain: [toHex(adminLink)],
        ticket: { scope: "site:home", holder: toHex(keyId(c, phone.pk)), iat: T - 1800 },
        coseSign1: toHex(
          signStatusTicket(c, admin, {
            scope: { kind: "site", id: "home" },
            holder: phone.pk,
            issuedAt: NumericDate(T - 1800),
          }),
        ),
      },
    ],
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const path = new URL("../vectors/key-objects.json", import.meta.url);
  writeFileSync(path, `${JSON.stringify(buildKeyObjectVectors(), null, 2)}\n`);
  console.log(`wrote ${path.pathname}`);
}
