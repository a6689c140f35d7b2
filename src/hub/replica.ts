/**
 * The hub as a replica of its site's management operations (docs/protocol/operations.md,
 * docs/protocol/sync.md): every local change is also a signed operation, and operations from elsewhere
 * (the cloud, an admin's own key) are admitted, stored and folded into the same state.
 *
 * - **Genesis**: the owner root key registered at the hub (src/hub/phone-keys.ts). No root, no log.
 * - **The hub's signer**: its Ed25519 key (`secrets/key-signer`, the key the owner's hub link names).
 *   It signs the hub's local changes once an owner has granted it the admin role (`role.set`, signed
 *   with the root at `latchkey claim`, `latchkey key setup` or `latchkey cloud link`). Until then the
 *   log is **inactive**: local changes apply as before but are not recorded as operations.
 * - **Activation** records a snapshot: one operation per existing user, schedule, credential (PIN and
 *   authenticator secrets as `held` boxes: the hub keeps only their digests) and lock mode, so the
 *   replica's state describes everything the hub holds.
 */
import { type CryptoPort, toHex } from "../core/crypto.ts";
import { CoseAlg } from "../core/envelope/cose-sign1.ts";
import { LatchkeyError } from "../core/errors.ts";
import { keyId, type PublicKey } from "../core/keys/digital-key.ts";
import {
  type Admission,
  admitOps,
  decodeHeldOp,
  type KeyDirectory,
  keyDirectoryFrom,
} from "../core/ops/admit.ts";
import { HybridLogicalClock, hlcFromText, hlcToText } from "../core/ops/hlc.ts";
import { type Genesis, genesisOf, OpLog, type ReplicaState } from "../core/ops/merge.ts";
import { type OperationBody, signOperation } from "../core/ops/operation.ts";
import type { SqliteEdgeStore } from "../store/sqlite/edge-store.ts";

/** An operation body before the replica stamps, attributes and scopes it. */
export type LocalChange = Pick<OperationBody, "kind" | "target" | "payload">;

/** Options of {@link HubReplica}. */
export interface HubReplicaOptions {
  readonly crypto: CryptoPort;
  readonly now: () => number;
  readonly store: SqliteEdgeStore;
  readonly siteId: string;
  /** Seed of the hub's Ed25519 signing key. */
  readonly signerSeed: Uint8Array;
}

const HLC_META = "ops.hlc_last";
const GENESIS_META = "ops.genesis";

/** The hub's operation log: genesis from the owner root, the hub's signer, the fold. */
export class HubReplica {
  readonly hubKey: PublicKey;
  readonly hubKeyId: string;
  readonly #o: HubReplicaOptions;
  #log: OpLog | null = null;
  #dir: KeyDirectory | null = null;
  #rootHex: string | null = null;
  readonly #hlc: HybridLogicalClock;

  constructor(o: HubReplicaOptions) {
    this.#o = o;
    this.hubKey = { alg: CoseAlg.EdDSA, key: o.crypto.ed25519PublicKey(o.signerSeed) };
    this.hubKeyId = toHex(keyId(o.crypto, this.hubKey));
    const last = o.store.getMeta(HLC_META);
    this.#hlc = new HybridLogicalClock(this.hubKeyId.slice(0, 16), last ? { last: hlcFromText(last) } : {});
  }

  /** The genesis: the registered owner root, or null before keys are set up. */
  genesis(): Genesis | null {
    const root = this.#o.store.phoneKeys.authority()?.root ?? null;
    return root ? genesisOf(this.#o.crypto, [root]) : null;
  }

  /** The log, (re)loaded from the store when the root changed. Null before keys are set up. */
  log(): OpLog | null {
    const g = this.genesis();
    if (!g) {
      this.#log = null;
      this.#dir = null;
      return null;
    }
    const rootHex = [...g.owners.keys()].join(",");
    if (this.#log && this.#rootHex === rootHex) return this.#log;
    // A new owner root (key setup --replace) is a new genesis: the old log means nothing under it.
    const stored = this.#o.store.getMeta(GENESIS_META);
    if (stored !== rootHex) {
      this.#o.store.transaction(() => {
        if (stored !== null) {
          this.#o.store.ops.clear();
          this.#o.store.deleteMeta("ops.snapshot");
        }
        this.#o.store.setMeta(GENESIS_META, rootHex);
      });
    }
    const ops = this.#o.store.ops.all().map((r) => decodeHeldOp(this.#o.crypto, r.cose));
    const log = new OpLog(g);
    log.add(ops);
    this.#log = log;
    this.#dir = keyDirectoryFrom(g, log.ops());
    this.#rootHex = rootHex;
    return log;
  }

  /** The folded state, or null before keys are set up. */
  state(): ReplicaState | null {
    return this.log()?.state() ?? null;
  }

  /** Does the hub's key hold the standing to sign its local changes (an admin role or owner)? */
  active(): boolean {
    const s = this.state();
    return s !== null && (s.roles.get(this.hubKeyId) === "admin" || s.owners.has(this.hubKeyId));
  }

  /**
   * Sign and store local changes (call inside the store transaction that applies them). Returns the
   * signed bytes; an empty list when the log is inactive.
   * @throws LatchkeyError `LK_OP_MALFORMED` for a change the operation format refuses (a bug upstream).
   */
  record(changes: readonly LocalChange[]): Uint8Array[] {
    if (changes.length === 0 || !this.active()) return [];
    const log = this.#log!;
    const out: Uint8Array[] = [];
    const ops = [];
    const now = this.#o.now();
    for (const c of changes) {
      const body = {
        ...c,
        hlc: this.#hlc.tick(now),
        actor: this.hubKeyId,
        scope: { kind: "site", id: this.#o.siteId },
      } as OperationBody;
      const bytes = signOperation(
        this.#o.crypto,
        { alg: CoseAlg.EdDSA, kid: keyId(this.#o.crypto, this.hubKey), privateKey: this.#o.signerSeed },
        body,
      );
      const op = decodeHeldOp(this.#o.crypto, bytes);
      this.#o.store.ops.insert(op, bytes, "local", false, now);
      ops.push(op);
      out.push(bytes);
    }
    this.#o.store.setMeta(HLC_META, hlcToText(this.#hlc.last));
    log.add(ops);
    return out;
  }

  /**
   * Admit signed operations from elsewhere (call inside a store transaction): verify (src/core/ops/admit.ts),
   * store the new ones, fold them in. `fromCloud` marks them as held by the cloud.
   * @throws LatchkeyError `LK_KEYS_NOT_SET_UP` before an owner root is registered.
   */
  admit(envelopes: readonly Uint8Array[], fromCloud: boolean): Admission & { fresh: number } {
    const log = this.log();
    if (!log || !this.#dir) {
      throw new LatchkeyError(
        "LK_KEYS_NOT_SET_UP",
        "no owner root key is registered at this hub: run `latchkey key setup` as the owner",
      );
    }
    const now = this.#o.now();
    const r = admitOps(this.#o.crypto, this.#dir, envelopes, { nowMs: now });
    const fresh = [];
    for (const a of r.accepted) {
      if (this.#o.store.ops.insert(a.op, a.bytes, "remote", fromCloud, now)) fresh.push(a.op);
      // Keep the hub's clock ahead of every stamp it holds (admission bounded the drift already).
      if (a.op.hlc.wallMs <= now + this.#hlc.maxDriftMs) this.#hlc.receive(a.op.hlc, now);
    }
    this.#o.store.setMeta(HLC_META, hlcToText(this.#hlc.last));
    log.add(fresh);
    return { ...r, fresh: fresh.length };
  }

  /** Forget cached state (after a rollback or a new root). */
  invalidate(): void {
    this.#log = null;
    this.#dir = null;
    this.#rootHex = null;
  }
}
