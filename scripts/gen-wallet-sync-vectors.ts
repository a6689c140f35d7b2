/**
 * Writes test/vectors/wallet-sync.json: a wallet sync request signed by a fixed Ed25519 holder key
 * (docs/protocol/wallet-sync.md). Ed25519 is deterministic (RFC 8032), so the signature is reproducible.
 * Run: npx tsx scripts/gen-wallet-sync-vectors.ts
 */
import { writeFileSync } from "node:fs";
import { toHex } from "../src/core/crypto.ts";
import { encodeDeterministic } from "../src/core/envelope/cbor.ts";
import { nodeCrypto as c } from "../src/platform/node-crypto.ts";

const seed = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const publicKey = c.ed25519PublicKey(seed);
const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64url");
const request = {
  v: 1,
  holder: { alg: -8, key: b64(publicKey) },
  at: Date.UTC(2026, 10, 22, 12, 0),
  nonce: b64(Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i)),
  timeChallenges: [{ lockId: "front-door", challenge: b64(Uint8Array.from({ length: 16 }, (_, i) => i)) }],
  events: [
    {
      id: "0123456789abcdef0123456789abcdef",
      at: Date.UTC(2026, 10, 22, 11, 58),
      lockId: "front-door",
      action: "unlock",
      accepted: true,
      code: null,
      serial: "0000000000000001",
    },
  ],
};
const requestBytes = new TextEncoder().encode(JSON.stringify(request));
const toBeSigned = encodeDeterministic(["LK-WALLET-1 sync", requestBytes]);
const signature = c.ed25519Sign(seed, toBeSigned);
const vectors = {
  description:
    'A wallet sync request (docs/protocol/wallet-sync.md): request = base64url(requestJson), signature = Ed25519(seed, toBeSigned), toBeSigned = CBOR ["LK-WALLET-1 sync", requestBytes]',
  holderSeedHex: toHex(seed),
  holderPublicKeyHex: toHex(publicKey),
  requestJson: new TextDecoder().decode(requestBytes),
  toBeSignedHex: toHex(toBeSigned),
  signatureHex: toHex(signature),
  body: { request: b64(requestBytes), signature: b64(signature) },
};
writeFileSync(
  new URL("../test/vectors/wallet-sync.json", import.meta.url),
  `${JSON.stringify(vectors, null, 2)}\n`,
);
console.log("wrote test/vectors/wallet-sync.json");
