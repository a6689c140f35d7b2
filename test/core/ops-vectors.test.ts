/**
 * The test vectors of docs/protocol/operations.md (test/vectors/operations.json, written by
 * scripts/gen-op-vectors.ts): HLC encodings, every operation kind's canonical bytes, id and signed
 * envelope, and the state a small out-of-order operation set folds to.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "../../src/core/crypto.ts";
import { CoseAlg, type KeyResolver } from "../../src/core/envelope/cose-sign1.ts";
import { hlc, hlcFromBytes, hlcFromText, hlcToBytes, hlcToText } from "../../src/core/ops/hlc.ts";
import { encodeReplicaState, foldOps, genesisOf } from "../../src/core/ops/merge.ts";
import {
  decodeOperation,
  encodeOperation,
  operationToJson,
  signOperation,
  verifyOperation,
} from "../../src/core/ops/operation.ts";
import { nodeCrypto as c } from "../../src/platform/node-crypto.ts";

interface Vectors {
  readonly owner: { readonly seedHex: string; readonly publicKeyHex: string; readonly keyId: string };
  readonly hlc: readonly {
    readonly wallMs: number;
    readonly counter: number;
    readonly nodeId: string;
    readonly text: string;
    readonly bytesHex: string;
  }[];
  readonly operations: readonly {
    readonly name: string;
    readonly op: Record<string, unknown> & { readonly id: string };
    readonly canonicalHex: string;
    readonly envelopeHex: string;
  }[];
  readonly merge: {
    readonly genesisOwnerPublicKeysHex: readonly string[];
    readonly opsHex: readonly string[];
    readonly stateHex: string;
  };
}

const v = JSON.parse(readFileSync(new URL("../vectors/operations.json", import.meta.url), "utf8")) as Vectors;
const ownerKey = fromHex(v.owner.publicKeyHex);
const resolve: KeyResolver = (kid, alg) =>
  toHex(kid) === v.owner.keyId && alg === CoseAlg.EdDSA ? { alg, publicKey: ownerKey } : null;

describe("operation vectors", () => {
  it("HLC stamps encode as the vectors say, both ways", () => {
    for (const s of v.hlc) {
      const h = hlc(s.wallMs, s.counter, s.nodeId);
      expect(hlcToText(h)).toBe(s.text);
      expect(toHex(hlcToBytes(h))).toBe(s.bytesHex);
      expect(hlcFromText(s.text)).toEqual(h);
      expect(hlcFromBytes(fromHex(s.bytesHex))).toEqual(h);
    }
  });

  it("every operation decodes, re-encodes, verifies and re-signs to the same bytes", () => {
    expect(toHex(c.ed25519PublicKey(fromHex(v.owner.seedHex)))).toBe(v.owner.publicKeyHex);
    const signer = { alg: CoseAlg.EdDSA, kid: fromHex(v.owner.keyId), privateKey: fromHex(v.owner.seedHex) };
    for (const x of v.operations) {
      const op = decodeOperation(c, fromHex(x.canonicalHex));
      expect(operationToJson(op)).toEqual(x.op);
      expect(toHex(encodeOperation(c, op))).toBe(x.canonicalHex);
      expect(verifyOperation(c, fromHex(x.envelopeHex), resolve)).toEqual(op);
      expect(toHex(signOperation(c, signer, op))).toBe(x.envelopeHex);
    }
    console.log(`operation vectors: ${v.operations.length} operations, ${v.hlc.length} HLC stamps`);
  });

  it("the merge vector folds to the recorded state in any order", () => {
    const genesis = genesisOf(
      c,
      v.merge.genesisOwnerPublicKeysHex.map((k) => ({ alg: CoseAlg.EdDSA, key: fromHex(k) })),
    );
    const ops = v.merge.opsHex.map((h) => decodeOperation(c, fromHex(h)));
    expect(toHex(encodeReplicaState(foldOps(genesis, ops)))).toBe(v.merge.stateHex);
    expect(toHex(encodeReplicaState(foldOps(genesis, ops.slice().reverse())))).toBe(v.merge.stateHex);
  });
});
