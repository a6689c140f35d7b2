/**
 * Sealing of secrets the hub must read back (unlike PINs, which are only ever compared as keyed digests):
 * the authenticator (TOTP) secrets. AES-256-GCM (NIST SP 800-38D) under a 32-byte key kept in the data
 * directory (`secrets/totp-seal-key`, mode 0600), never in the database, so a copied database alone
 * reveals no secret.
 *
 * Sealed form: `0x01 || nonce (12 random bytes) || ciphertext || tag (16 bytes)`. The additional
 * authenticated data binds a sealed secret to its purpose and row (`latchkey.totp.v1:<credentialId>`):
 * a blob copied to another credential's row does not open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { LatchkeyError } from "../core/errors.ts";

/** Seal and open small secrets bound to a context string (e.g. the credential id). */
export interface SecretSealer {
  seal(plain: Uint8Array, context: string): Uint8Array;
  /** Throws LK_DATA_DIR_INVALID when the blob does not open under this key and context. */
  open(sealed: Uint8Array, context: string): Uint8Array;
}

const VERSION = 0x01;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

function aad(context: string): Buffer {
  return Buffer.from(`latchkey.totp.v1:${context}`, "utf8");
}

/** An AES-256-GCM sealer under `key` (32 bytes). */
export function aesGcmSealer(key: Uint8Array): SecretSealer {
  if (key.length !== 32) throw new LatchkeyError("LK_INTERNAL", "the seal key must be 32 bytes");
  const k = Buffer.from(key);
  return {
    seal(plain, context) {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv("aes-256-gcm", k, nonce, { authTagLength: TAG_BYTES });
      cipher.setAAD(aad(context));
      const body = Buffer.concat([cipher.update(plain), cipher.final()]);
      return new Uint8Array(Buffer.concat([Buffer.of(VERSION), nonce, body, cipher.getAuthTag()]));
    },
    open(sealed, context) {
      const b = Buffer.from(sealed);
      try {
        if (b.length < 1 + NONCE_BYTES + TAG_BYTES || b[0] !== VERSION) throw new Error("bad format");
        const nonce = b.subarray(1, 1 + NONCE_BYTES);
        const tag = b.subarray(b.length - TAG_BYTES);
        const decipher = createDecipheriv("aes-256-gcm", k, nonce, { authTagLength: TAG_BYTES });
        decipher.setAAD(aad(context));
        decipher.setAuthTag(tag);
        const body = b.subarray(1 + NONCE_BYTES, b.length - TAG_BYTES);
        return new Uint8Array(Buffer.concat([decipher.update(body), decipher.final()]));
      } catch {
        throw new LatchkeyError(
          "LK_DATA_DIR_INVALID",
          `the sealed TOTP secret of ${context} does not open with secrets/totp-seal-key: restore the key that belongs to this database`,
        );
      }
    },
  };
}
