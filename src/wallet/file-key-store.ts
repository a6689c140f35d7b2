/**
 * {@link SecureKeyStore} for Node: the keys in one file, encrypted with AES-256-GCM under a key derived
 * from a passphrase with scrypt (RFC 7914; N = 2^15, r = 8, p = 1), mode 0600, written atomically
 * (temp file + rename). The private keys are decrypted only inside {@link FileKeyStore.sign}.
 *
 * File: JSON `{ format: "latchkey-wallet-keys/1", kdf: { name: "scrypt", N, r, p, salt }, iv, sealed }`
 * (base64url); `sealed` = AES-256-GCM ciphertext ‖ tag of JSON `{ alias: { alg, private, public } }`,
 * with the format string as additional data. A wrong passphrase or any change to the file fails with
 * `LK_DATA_DIR_INVALID` and reveals nothing.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from "node:crypto";
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { CoseAlg } from "../core/envelope/cose-sign1.ts";
import { LatchkeyError } from "../core/errors.ts";
import type { PublicKey } from "../core/keys/digital-key.ts";
import { generateP256, nodeCrypto } from "../platform/node-crypto.ts";
import { assertAlias, assertStoreAlg, type SecureKeyStore } from "./secure-key-store.ts";

const FORMAT = "latchkey-wallet-keys/1";
const SCRYPT = { N: 2 ** 15, r: 8, p: 1 } as const;

interface Entry {
  readonly alg: CoseAlg;
  /** EdDSA: 32-byte seed; ES256: PKCS#8 DER (base64url in the file). */
  readonly private: Uint8Array;
  readonly public: Uint8Array;
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64url");
const unb64 = (s: unknown): Buffer => {
  if (typeof s !== "string" || !/^[A-Za-z0-9_-]*$/.test(s)) throw broken();
  return Buffer.from(s, "base64url");
};
const broken = () =>
  new LatchkeyError(
    "LK_DATA_DIR_INVALID",
    "the wallet key file cannot be opened (wrong passphrase or damaged file)",
  );

export class FileKeyStore implements SecureKeyStore {
  private constructor(
    private readonly path: string,
    private readonly key: Buffer,
    private readonly salt: Buffer,
  ) {}

  /**
   * Open the key file at `path` with `passphrase`, creating an empty one if it does not exist.
   * @throws LatchkeyError `LK_INVALID_INPUT` (passphrase shorter than 8 characters), `LK_DATA_DIR_INVALID`
   */
  static open(path: string, passphrase: string): FileKeyStore {
    if (typeof passphrase !== "string" || passphrase.length < 8) {
      throw new LatchkeyError("LK_INVALID_INPUT", "a key file passphrase must be at least 8 characters");
    }
    if (!existsSync(path)) {
      const salt = randomBytes(16);
      const store = new FileKeyStore(path, derive(passphrase, salt), salt);
      store.write(new Map());
      return store;
    }
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    } catch {
      throw broken();
    }
    const kdf = doc.kdf as Record<string, unknown> | undefined;
    if (
      doc.format !== FORMAT ||
      kdf?.name !== "scrypt" ||
      kdf.N !== SCRYPT.N ||
      kdf.r !== SCRYPT.r ||
      kdf.p !== SCRYPT.p
    ) {
      throw broken();
    }
    const salt = unb64(kdf.salt);
    const store = new FileKeyStore(path, derive(passphrase, salt), salt);
    store.read(); // checks the passphrase now rather than at the first use
    return store;
  }

  private read(): Map<string, Entry> {
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(readFileSync(this.path, "utf8")) as Record<string, unknown>;
    } catch {
      throw broken();
    }
    const iv = unb64(doc.iv);
    const sealed = unb64(doc.sealed);
    if (iv.length !== 12 || sealed.length < 16) throw broken();
    let plain: Buffer;
    try {
      const d = createDecipheriv("aes-256-gcm", this.key, iv);
      d.setAAD(Buffer.from(FORMAT));
      d.setAuthTag(sealed.subarray(sealed.length - 16));
      plain = Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]);
    } catch {
      throw broken();
    }
    const entries = new Map<string, Entry>();
    try {
      const obj = JSON.parse(plain.toString("utf8")) as Record<
        string,
        { alg: number; private: string; public: string }
      >;
      for (const [alias, e] of Object.entries(obj)) {
        entries.set(alias, {
          alg: e.alg as CoseAlg,
          private: new Uint8Array(unb64(e.private)),
          public: new Uint8Array(unb64(e.public)),
        });
      }
    } catch {
      throw broken();
    } finally {
      plain.fill(0);
    }
    return entries;
  }

  private write(entries: Map<string, Entry>): void {
    const obj: Record<string, { alg: number; private: string; public: string }> = {};
    for (const [alias, e] of [...entries].sort(([a], [b]) => a.localeCompare(b))) {
      obj[alias] = { alg: e.alg, private: b64(e.private), public: b64(e.public) };
    }
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", this.key, iv);
    c.setAAD(Buffer.from(FORMAT));
    const plain = Buffer.from(JSON.stringify(obj));
    const sealed = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
    plain.fill(0);
    const doc = {
      format: FORMAT,
      kdf: { name: "scrypt", ...SCRYPT, salt: b64(this.salt) },
      iv: b64(iv),
      sealed: b64(sealed),
    };
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(doc)}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.path);
  }

  async generate(alias: string, alg: CoseAlg = CoseAlg.ES256): Promise<PublicKey> {
    assertAlias(alias);
    assertStoreAlg(alg);
    const entries = this.read();
    if (entries.has(alias))
      throw new LatchkeyError("LK_CONFLICT", `a wallet key named ${alias} already exists`);
    let entry: Entry;
    if (alg === CoseAlg.EdDSA) {
      const seed = nodeCrypto.randomBytes(32);
      entry = { alg, private: seed, public: nodeCrypto.ed25519PublicKey(seed) };
    } else {
      const k = generateP256();
      entry = { alg, private: k.privateKeyPkcs8Der, public: k.publicKeySec1 };
    }
    entries.set(alias, entry);
    this.write(entries);
    return { alg, key: entry.public };
  }

  async publicKey(alias: string): Promise<PublicKey | null> {
    assertAlias(alias);
    const e = this.read().get(alias);
    return e ? { alg: e.alg, key: e.public } : null;
  }

  async sign(alias: string, data: Uint8Array): Promise<Uint8Array> {
    assertAlias(alias);
    const e = this.read().get(alias);
    if (!e) throw new LatchkeyError("LK_NOT_FOUND", `no wallet key named ${alias}`);
    return e.alg === CoseAlg.EdDSA
      ? nodeCrypto.ed25519Sign(e.private, data)
      : nodeCrypto.p256Sign(e.private, data);
  }

  async delete(alias: string): Promise<void> {
    assertAlias(alias);
    const entries = this.read();
    if (entries.delete(alias)) this.write(entries);
  }

  async list(): Promise<string[]> {
    return [...this.read().keys()].sort();
  }
}

function derive(passphrase: string, salt: Buffer): Buffer {
  return scryptSync(passphrase.normalize("NFC"), salt, 32, { ...SCRYPT, maxmem: 64 * 1024 * 1024 });
}
