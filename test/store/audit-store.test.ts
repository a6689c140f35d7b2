import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { MemoryAuditStore } from "../../src/store/memory/memory-audit-store.ts";
import { SqliteEdgeStore } from "../../src/store/sqlite/edge-store.ts";
import { runAuditStoreTests } from "./audit-store.acceptance.ts";

runAuditStoreTests("in-memory", () => new MemoryAuditStore(nodeCrypto));
runAuditStoreTests("sqlite", () => new SqliteEdgeStore({ path: ":memory:", crypto: nodeCrypto }));
