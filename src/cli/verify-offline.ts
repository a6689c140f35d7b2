/** `latchkey log verify --offline`: verify a data directory's audit log without a running hub. */
import { type ChainVerification, verifyChain } from "../core/audit/chain.ts";
import { openDataDir } from "../hub/data-dir.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";
import { SqliteEdgeStore } from "../store/sqlite/edge-store.ts";

/** Open `dir` (read-only use; WAL lets a running hub keep writing) and verify its chain. */
export function verifyDataDir(dir: string): ChainVerification {
  const dd = openDataDir(dir);
  const store = new SqliteEdgeStore({ path: dd.dbPath, crypto: nodeCrypto });
  try {
    const deviceId = store.getMeta("hub.device_id") ?? "";
    const pub = nodeCrypto.ed25519PublicKey(dd.deviceKey);
    return verifyChain(nodeCrypto, deviceId, pub, store.anchor(), store.iterate(), store.checkpoints());
  } finally {
    store.close();
  }
}
