/**
 * Writes docs/formats/passphrase-box-vectors.json: test vectors of the passphrase box
 * (docs/formats/export.md § "Passphrase box"). Run: `node --import tsx scripts/gen-passphrase-box-vectors.ts`.
 *
 * The boxes are built here from the specification with node:crypto alone (scrypt, AES-256-GCM) and a
 * hand-written canonical header, with fixed salts and nonces, not with src/hub/passphrase-box.ts (which
 * always draws them at random): test/hub/export-v2.test.ts then opens every vector with the product's
 * code, so the two implementations check each other.
 */
import { createCipheriv, scryptSync } from "node:crypto";
import { writeFileSync } from "node:fs";

const out = "docs/formats/passphrase-box-vectors.json";
const bytes = (from: number, n: number) =>
  Buffer.from(Array.from({ length: n }, (_, i) => (from + i) & 0xff));

interface Input {
  readonly description: string;
  readonly kind: string;
  readonly passphrase: string;
  readonly plaintext: string;
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly nonce: Buffer;
}

const inputs: Input[] = [
  {
    description: "ASCII passphrase, the default cost (N = 2^16, r = 8, p = 1)",
    kind: "latchkey-export-secrets",
    passphrase: "correct horse battery staple",
    plaintext: '{"hello":"latchkey"}',
    N: 2 ** 16,
    r: 8,
    p: 1,
    salt: bytes(0x00, 16),
    nonce: bytes(0xa0, 12),
  },
  {
    description:
      "a passphrase typed in NFD (e + U+0301): the key is derived from its NFC form; the floor cost (N = 2^15)",
    kind: "latchkey-audit-export",
    passphrase: "cafe\u0301 au lait, s'il vous plai\u0302t",
    plaintext: "",
    N: 2 ** 15,
    r: 8,
    p: 1,
    salt: bytes(0x10, 16),
    nonce: bytes(0xb0, 12),
  },
];

const vectors = inputs.map((v) => {
  const salt = v.salt.toString("base64url");
  const nonce = v.nonce.toString("base64url");
  // The AAD: canonical JSON (keys sorted, no whitespace) of the box without `ciphertext`, written out.
  const aad =
    `{"aead":{"alg":"A256GCM","nonce":${JSON.stringify(nonce)}},"box":"latchkey-passphrase-box",` +
    `"kdf":{"N":${v.N},"alg":"scrypt","p":${v.p},"r":${v.r},"salt":${JSON.stringify(salt)}},` +
    `"kind":${JSON.stringify(v.kind)},"version":1}`;
  const key = scryptSync(Buffer.from(v.passphrase.normalize("NFC"), "utf8"), v.salt, 32, {
    N: v.N,
    r: v.r,
    p: v.p,
    maxmem: 256 * 1024 * 1024,
  });
  const cipher = createCipheriv("aes-256-gcm", key, v.nonce, { authTagLength: 16 });
  cipher.setAAD(Buffer.from(aad, "utf8"));
  const body = Buffer.concat([
    cipher.update(Buffer.from(v.plaintext, "utf8")),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  return {
    description: v.description,
    passphrase: v.passphrase,
    passphraseNfcUtf8Hex: Buffer.from(v.passphrase.normalize("NFC"), "utf8").toString("hex"),
    plaintextUtf8: v.plaintext,
    keyHex: key.toString("hex"),
    aad,
    box: {
      box: "latchkey-passphrase-box",
      version: 1,
      kind: v.kind,
      kdf: { alg: "scrypt", N: v.N, r: v.r, p: v.p, salt },
      aead: { alg: "A256GCM", nonce },
      ciphertext: body.toString("base64url"),
    },
  };
});

writeFileSync(
  out,
  `${JSON.stringify({ description: "Passphrase box test vectors (docs/formats/export.md)", vectors }, null, 2)}\n`,
);
console.log(`wrote ${out}`);
