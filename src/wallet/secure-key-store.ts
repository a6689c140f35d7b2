/**
 * The wallet's key store port (issue 4 groundwork): where a phone keeps its holder keys. The private key
 * never leaves the store; callers get the public key and signatures. On a phone the port is implemented
 * with the Secure Enclave (iOS) or StrongBox/Keystore (Android), which hold only P-256 keys, so ES256 is
 * the default; EdDSA is for keys held in software. Node: {@link FileKeyStore} (src/wallet/file-key-store.ts).
 *
 * Every adapter runs one acceptance suite: test/support/key-store.acceptance.ts.
 */
import { CoseAlg } from "../core/envelope/cose-sign1.ts";
import { LatchkeyError } from "../core/errors.ts";
import type { PublicKey } from "../core/keys/digital-key.ts";

export interface SecureKeyStore {
  /** Create a key pair under `alias` (1..64 of `A-Za-z0-9_.-`). Throws LK_CONFLICT if it exists. */
  generate(alias: string, alg?: CoseAlg): Promise<PublicKey>;
  /** The public key under `alias`, or null. */
  publicKey(alias: string): Promise<PublicKey | null>;
  /** Sign `data` with the key under `alias` (EdDSA: Ed25519; ES256: 64-byte r‖s). Throws LK_NOT_FOUND. */
  sign(alias: string, data: Uint8Array): Promise<Uint8Array>;
  /** Delete the key under `alias` (no error if absent). */
  delete(alias: string): Promise<void>;
  /** The aliases, sorted. */
  list(): Promise<string[]>;
}

const ALIAS = /^[A-Za-z0-9_.-]{1,64}$/;

/** Checks an alias. @throws LatchkeyError `LK_INVALID_INPUT` */
export function assertAlias(alias: string): void {
  if (typeof alias !== "string" || !ALIAS.test(alias)) {
    throw new LatchkeyError("LK_INVALID_INPUT", "a key alias is 1 to 64 letters, digits, '_', '.' or '-'");
  }
}

/** Checks an algorithm of the allow-list. @throws LatchkeyError `LK_ENVELOPE_ALG` */
export function assertStoreAlg(alg: CoseAlg): void {
  if (alg !== CoseAlg.ES256 && alg !== CoseAlg.EdDSA) {
    throw new LatchkeyError("LK_ENVELOPE_ALG", "a wallet key is ES256 (P-256) or EdDSA (Ed25519)");
  }
}
