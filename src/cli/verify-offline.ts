/** `latchkey log verify --offline`: verify a data directory's audit log without a running hub. */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type ChainVerification, verifyChain } from "../core/audit/chain.ts";
import { fromHex } from "../core/crypto.ts";
import { LatchkeyError } from "../core/errors.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";
import { SqliteEdgeStore } from "../store/sqlite/edge-store.ts";

/**
 * Verify `dir`'s audit chain read-only (a running hub may keep writing: WAL). The public key is
 * `publicKeyHex` when given — recorded independently, e.g. from `latchkey log verify` output at setup —
 * otherwise derived from `secrets/device-key`. Creates and changes nothing.
 * Throws LK_DATA_DIR_INVALID when the directory has no database or key.
 */
export function verifyDataDir(dir: string, publicKeyHex?: string): ChainVerification & { publicKey: string } {
  const path = resolve(dir);
  const dbPath = join(path, "latchkey.db");
  if (!existsSync(dbPath)) throw new LatchkeyError("LK_DATA_DIR_INVALID", `${path} has no latchkey.db`);
  let pub: Uint8Array;
  if (publicKeyHex !== undefined) {
    pub = fromHex(publicKeyHex);
    if (pub.length !== 32)
      throw new LatchkeyError("LK_INVALID_INPUT", "--public-key must be 32 bytes of hex");
  } else {
    const keyFile = join(path, "secrets", "device-key");
    if (!existsSync(keyFile))
      throw new LatchkeyError("LK_DATA_DIR_INVALID", `${path} has no secrets/device-key: pass --public-key`);
    pub = nodeCrypto.ed25519PublicKey(new Uint8Array(readFileSync(keyFile)));
  }
  const store = new SqliteEdgeStore({ path: dbPath, crypto: nodeCrypto, readonly: true });
  try {
    const deviceId = store.getMeta("hub.device_id") ?? "";
    const v = verifyChain(nodeCrypto, deviceId, pub, store.anchor(), store.iterate(), store.checkpoints());
    return { ...v, publicKey: Buffer.from(pub).toString("hex") };
  } finally {
    store.close();
  }
}
