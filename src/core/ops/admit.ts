/**
 * Admitting signed operations into a replica (spec: docs/protocol/operations.md § "Admission"): what a
 * hub or the cloud checks before an operation joins its set. Two checks, both the same on every replica:
 *
 * 1. the signature, by a key the operation set itself makes known: the genesis owners, keys added by
 *    `owner.add`, and keys granted a role by `role.set` (which carries the key). Whether that key had the
 *    standing to make the change is the merge's question ({@link authorize}), not admission's;
 * 2. the HLC stamp is not further ahead of this replica's clock than the drift bound.
 *
 * Operations in one batch may introduce keys that later operations of the same batch are signed by, in
 * any order: admission repeats until no more can be verified. What stays unverifiable is refused with
 * `LK_OP_UNKNOWN_SIGNER` and may be sent again once the key's grant has arrived.
 */
import { type CryptoPort, fromHex, toHex } from "../crypto.ts";
import { decodeSign1Unverified } from "../envelope/cose-sign1.ts";
import { isLatchkeyError, LatchkeyError } from "../errors.ts";
import { keyId, type PublicKey } from "../keys/digital-key.ts";
import { DEFAULT_MAX_DRIFT_MS } from "./hlc.ts";
import { type Genesis, genesisOf } from "./merge.ts";
import { decodeOperation, type Operation, verifyOperation } from "./operation.ts";

/** An admitted operation with the signed bytes it travels as (COSE_Sign1). */
export interface SignedOp {
  readonly op: Operation;
  readonly bytes: Uint8Array;
}

/** The keys whose signatures a replica can check: key id (32 hex) → public key. */
export class KeyDirectory {
  private readonly keys = new Map<string, PublicKey>();

  constructor(genesis: Genesis) {
    for (const [id, k] of genesis.owners) this.keys.set(id, k);
  }

  /** Learn the key an operation introduces (owner.add, role.set grant); a no-op for other kinds. */
  learn(op: Operation): void {
    if (op.kind === "owner.add") this.keys.set(op.target, op.payload.key);
    else if (op.kind === "role.set" && op.payload.role !== null) this.keys.set(op.target, op.payload.key);
  }

  /** The public key with this id, or null. */
  get(kid: string): PublicKey | null {
    return this.keys.get(kid) ?? null;
  }

  /** How many keys are known. */
  get size(): number {
    return this.keys.size;
  }
}

/** A directory from the genesis and every operation already held (already verified when admitted). */
export function keyDirectoryFrom(genesis: Genesis, held: Iterable<Operation>): KeyDirectory {
  const dir = new KeyDirectory(genesis);
  for (const op of held) dir.learn(op);
  return dir;
}

/** The genesis from its JSON form `[{ alg, publicKey: hex }]` (as the cloud stores it). Throws LK_INVALID_INPUT. */
export function genesisFromJson(crypto: CryptoPort, json: unknown): Genesis {
  if (!Array.isArray(json))
    throw new LatchkeyError("LK_INVALID_INPUT", "genesis must be a list of owner keys");
  const keys: PublicKey[] = json.map((k: unknown) => {
    const o = k as { alg?: unknown; publicKey?: unknown };
    if (
      typeof o !== "object" ||
      o === null ||
      (o.alg !== -8 && o.alg !== -7) ||
      typeof o.publicKey !== "string" ||
      !/^([0-9a-f]{2}){32,65}$/.test(o.publicKey)
    ) {
      throw new LatchkeyError("LK_INVALID_INPUT", "an owner key is { alg: -8 | -7, publicKey: hex }");
    }
    return { alg: o.alg, key: fromHex(o.publicKey) } as PublicKey;
  });
  return genesisOf(crypto, keys);
}

/** The JSON form of a genesis (sorted by key id), the inverse of {@link genesisFromJson}. */
export function genesisToJson(genesis: Genesis): { alg: number; publicKey: string }[] {
  return [...genesis.owners.values()].map((k) => ({ alg: k.alg, publicKey: toHex(k.key) }));
}

/**
 * Decode signed bytes that were verified when they were admitted (a database row, the local log),
 * without checking the signature again. Throws as {@link decodeOperation} for bytes that are not an
 * operation envelope at all.
 */
export function decodeHeldOp(crypto: CryptoPort, bytes: Uint8Array): Operation {
  return decodeOperation(crypto, decodeSign1Unverified(bytes).payload);
}

/** The result of {@link admitOps}: what joins the set, and what was refused (index into the input, code). */
export interface Admission {
  readonly accepted: SignedOp[];
  readonly refused: { readonly index: number; readonly code: string }[];
}

/**
 * Verify a batch of signed operations against `dir` (which learns the keys the accepted ones introduce).
 * Never throws for bad input: each refusal carries its code (`LK_ENVELOPE_*`, `LK_OP_MALFORMED`,
 * `LK_OP_CLOCK_DRIFT`, `LK_OP_UNKNOWN_SIGNER`). Duplicates within the batch are accepted once.
 *
 * @param nowMs this replica's wall clock (ms since the Unix epoch), for the drift bound
 */
export function admitOps(
  crypto: CryptoPort,
  dir: KeyDirectory,
  envelopes: readonly Uint8Array[],
  opts: { readonly nowMs: number; readonly maxDriftMs?: number },
): Admission {
  const maxDrift = opts.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS;
  const accepted: SignedOp[] = [];
  const seen = new Set<string>();
  const final = new Map<number, string>();
  let pending = envelopes.map((bytes, index) => ({ bytes, index }));
  for (;;) {
    const retry: typeof pending = [];
    for (const p of pending) {
      let unknownKid = false;
      try {
        const op = verifyOperation(crypto, p.bytes, (kid) => {
          const k = dir.get(toHex(kid));
          if (!k) unknownKid = true;
          return k ? { alg: k.alg, publicKey: k.key } : null;
        });
        if (op.hlc.wallMs > opts.nowMs + maxDrift) {
          final.set(p.index, "LK_OP_CLOCK_DRIFT");
          continue;
        }
        dir.learn(op);
        if (!seen.has(op.id)) {
          seen.add(op.id);
          accepted.push({ op, bytes: p.bytes });
        }
      } catch (e) {
        const code = isLatchkeyError(e) ? e.code : "LK_INTERNAL";
        if (unknownKid) retry.push(p);
        else final.set(p.index, code);
      }
    }
    if (retry.length === 0 || retry.length === pending.length) {
      for (const p of retry) final.set(p.index, "LK_OP_UNKNOWN_SIGNER");
      break;
    }
    pending = retry;
  }
  const refused = [...final].sort((a, b) => a[0] - b[0]).map(([index, code]) => ({ index, code }));
  return { accepted, refused };
}

/** Key id (hex) of a public key. */
export function keyIdHex(crypto: CryptoPort, key: PublicKey): string {
  return toHex(keyId(crypto, key));
}
