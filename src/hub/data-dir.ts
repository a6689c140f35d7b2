/**
 * The hub's data directory (default `./latchkey-data`):
 *
 *   latchkey.db            SQLite edge store (WAL)
 *   secrets/device-key     Ed25519 seed of the hub (32 bytes, mode 0600)
 *   secrets/pin-secret     HMAC key for PIN digests (32 bytes, mode 0600)
 *   secrets/totp-seal-key  AES-256-GCM key sealing authenticator (TOTP) secrets in the database (32 bytes, mode 0600)
 *   secrets/guest-code-secret  IKM of the guest-code issuer keys (HKDF; docs/protocol/guest-codes.md § 1) (32 bytes, 0600)
 *   secrets/key-signer     Ed25519 seed of the hub's signing key (phone keys, lists, tickets, management operations)
 *   secrets/seal-key       X25519 private key: PINs and TOTP secrets set elsewhere arrive sealed to it (32 bytes, 0600)
 *   setup-code             the one-time owner setup code, until it is used (mode 0600)
 *   hub.lock               PID of the running hub: a second hub on the same directory is refused
 *
 * Secrets are kept out of the database so a copied database alone reveals no PIN and no TOTP secret.
 */
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { LatchkeyError } from "../core/errors.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";

export interface DataDir {
  readonly path: string;
  readonly dbPath: string;
  readonly deviceKey: Uint8Array;
  readonly pinSecret: Uint8Array;
  /** AES-256-GCM key that seals TOTP secrets at rest (see store/secret-seal.ts). */
  readonly totpSealKey: Uint8Array;
  /** The guest-code secret: every issuer key is derived from it (docs/protocol/guest-codes.md § 1). */
  readonly guestCodeSecret: Uint8Array;
  /**
   * Seed of the hub's Ed25519 signing key for phone keys, revocation lists and tickets. The owner's root
   * key delegates to it (docs/protocol/digital-keys.md § "Signers of lists and tickets").
   */
  readonly keySignerSeed: Uint8Array;
  /**
   * The hub's X25519 private key: PINs and authenticator secrets set from the cloud travel sealed to its
   * public key (src/core/ops/seal.ts), so no relay can read them.
   */
  readonly sealKey: Uint8Array;
  /** True when this call created the directory's secrets (first run). */
  readonly created: boolean;
}

function readSecret(file: string): Uint8Array {
  const st = statSync(file);
  if ((st.mode & 0o077) !== 0) {
    throw new LatchkeyError(
      "LK_DATA_DIR_INVALID",
      `${file} is readable by other users (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
    );
  }
  const b = readFileSync(file);
  if (b.length !== 32) throw new LatchkeyError("LK_DATA_DIR_INVALID", `${file} is not a 32-byte secret`);
  return new Uint8Array(b);
}

function writeSecret(file: string, bytes: Uint8Array): void {
  writeFileSync(file, bytes, { mode: 0o600, flag: "wx" });
}

/** Open (and on first run create) the data directory and its secrets. Throws LK_DATA_DIR_INVALID. */
export function openDataDir(dir: string): DataDir {
  const path = resolve(dir);
  mkdirSync(join(path, "secrets"), { recursive: true, mode: 0o700 });
  chmodSync(join(path, "secrets"), 0o700);
  const keyFile = join(path, "secrets", "device-key");
  const pinFile = join(path, "secrets", "pin-secret");
  const sealFile = join(path, "secrets", "totp-seal-key");
  const guestFile = join(path, "secrets", "guest-code-secret");
  const signerFile = join(path, "secrets", "key-signer");
  const dbPath = join(path, "latchkey.db");
  let created = false;
  if (!existsSync(keyFile) && !existsSync(pinFile)) {
    if (existsSync(dbPath)) {
      throw new LatchkeyError(
        "LK_DATA_DIR_INVALID",
        `${path} has a database but no secrets: restore secrets/ from a backup`,
      );
    }
    writeSecret(keyFile, nodeCrypto.randomBytes(32));
    writeSecret(pinFile, nodeCrypto.randomBytes(32));
    created = true;
  }
  if (!existsSync(keyFile) || !existsSync(pinFile)) {
    throw new LatchkeyError(
      "LK_DATA_DIR_INVALID",
      `${path}/secrets is incomplete (device-key and pin-secret are both needed)`,
    );
  }
  // Added with TOTP credentials: a data directory from an earlier version gets its key on the next start.
  // (A database with sealed secrets but no key fails when the secrets are read, naming the file.)
  if (!existsSync(sealFile)) writeSecret(sealFile, nodeCrypto.randomBytes(32));
  // Added with guest codes, likewise. Losing it invalidates every issued guest code (issuers re-enrol).
  if (!existsSync(guestFile)) writeSecret(guestFile, nodeCrypto.randomBytes(32));
  // Added with phone keys. Losing it means the owner registers the root again (keys are re-issued).
  if (!existsSync(signerFile)) writeSecret(signerFile, nodeCrypto.randomBytes(32));
  // Added with the cloud sync. Losing it means PINs sealed to the old key no longer open (set them again).
  const sealKeyFile = join(path, "secrets", "seal-key");
  if (!existsSync(sealKeyFile)) writeSecret(sealKeyFile, nodeCrypto.randomBytes(32));
  // SQLite creates the -wal and -shm files with the database's mode: make it owner-only from the start.
  if (!existsSync(dbPath)) writeFileSync(dbPath, "", { mode: 0o600 });
  return {
    path,
    dbPath,
    deviceKey: readSecret(keyFile),
    pinSecret: readSecret(pinFile),
    totpSealKey: readSecret(sealFile),
    guestCodeSecret: readSecret(guestFile),
    keySignerSeed: readSecret(signerFile),
    sealKey: readSecret(sealKeyFile),
    created,
  };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Take the directory's single-hub lock. A lock left by a dead process (crash, SIGKILL) is taken over.
 * Returns a release function. Throws LK_DATA_DIR_LOCKED when a live hub holds it.
 */
export function lockDataDir(dir: string): () => void {
  const file = join(resolve(dir), "hub.lock");
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = openSync(file, "wx", 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(file, "utf8") === String(process.pid)) rmSync(file);
        } catch {
          // already gone
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const pid = Number(readFileSync(file, "utf8"));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) {
        throw new LatchkeyError(
          "LK_DATA_DIR_LOCKED",
          `another Latchkey hub (pid ${pid}) is already running on ${resolve(dir)}; stop it first or use --data-dir`,
        );
      }
      rmSync(file, { force: true });
    }
  }
  throw new LatchkeyError("LK_DATA_DIR_LOCKED", `could not lock ${resolve(dir)}`);
}

/** Where the setup code is kept for scripts until it is used. */
export function setupCodeFile(dir: string): string {
  return join(resolve(dir), "setup-code");
}
