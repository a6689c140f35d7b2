/**
 * The audit-log test vectors (test/vectors/audit-chain.json, spec docs/protocol/audit-log.md): every
 * intermediate value — canonical body, hash input, hash, checkpoint and anchor messages and signatures —
 * is fixed, so another implementation can check itself against the same file.
 */
import { describe, expect, it } from "vitest";
import { canonicalJson, type JsonValue } from "../../src/core/audit/canonical.ts";
import {
  type AuditAnchor,
  type AuditCheckpoint,
  type AuditEvent,
  type AuditKind,
  chainEvent,
  GENESIS_HASH,
  hashEvent,
  signAnchor,
  signCheckpoint,
  verifyChain,
} from "../../src/core/audit/chain.ts";
import { fromHex, toHex, utf8 } from "../../src/core/crypto.ts";
import { EpochMs } from "../../src/core/units.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import vectorFile from "../vectors/audit-chain.json" with { type: "json" };

/** The shape of test/vectors/audit-chain.json. */
interface SignedHead {
  readonly hash: string;
  readonly at: number;
  readonly message: string;
  readonly messageUtf8Hex: string;
  readonly signature: string;
}
interface AuditVectors {
  readonly genesisHash: string;
  readonly key: { readonly deviceId: string; readonly seedHex: string; readonly publicKeyHex: string };
  readonly events: readonly {
    readonly seq: number;
    readonly at: number;
    readonly lockId: string | null;
    readonly kind: AuditKind;
    readonly data: { readonly [k: string]: JsonValue };
    readonly prevHash: string;
    readonly canonicalBody: string;
    readonly hashInput: string;
    readonly hashInputUtf8Hex: string;
    readonly hash: string;
  }[];
  readonly checkpoint: SignedHead & { readonly seq: number };
  readonly anchor: SignedHead & { readonly throughSeq: number };
  readonly verification: Record<"full" | "trimmed", { readonly expected: unknown }>;
}

const vectors = vectorFile as unknown as AuditVectors;

const seed = fromHex(vectors.key.seedHex);
const publicKey = fromHex(vectors.key.publicKeyHex);
const deviceId = vectors.key.deviceId;

const events: AuditEvent[] = vectors.events.map((e) => ({
  seq: e.seq,
  at: EpochMs(e.at),
  lockId: e.lockId,
  kind: e.kind,
  data: e.data,
  prevHash: e.prevHash,
  hash: e.hash,
}));

const checkpoint: AuditCheckpoint = {
  seq: vectors.checkpoint.seq,
  hash: vectors.checkpoint.hash,
  at: EpochMs(vectors.checkpoint.at),
  signature: vectors.checkpoint.signature,
};
const anchor: AuditAnchor = {
  throughSeq: vectors.anchor.throughSeq,
  hash: vectors.anchor.hash,
  at: EpochMs(vectors.anchor.at),
  signature: vectors.anchor.signature,
};
const checkpoints = new Map([[checkpoint.seq, checkpoint]]);

/** The vector events with one character of one string in `data` changed. */
function withOneCharChanged(index: number): AuditEvent[] {
  const e = events[index]!;
  const key = Object.keys(e.data).find((k) => typeof e.data[k] === "string")!;
  const value = e.data[key] as string;
  const last = value.at(-1) === "x" ? "y" : "x";
  const changed = { ...e, data: { ...e.data, [key]: value.slice(0, -1) + last } };
  return events.map((x, i) => (i === index ? changed : x));
}

describe("audit-log test vectors", () => {
  it("derives the public key from the seed", () => {
    expect(vectors.genesisHash).toBe(GENESIS_HASH);
    expect(toHex(nodeCrypto.ed25519PublicKey(seed))).toBe(vectors.key.publicKeyHex);
  });

  it("encodes each event body as the vector's canonical JSON and hash input", () => {
    for (const v of vectors.events) {
      const body = canonicalJson({ seq: v.seq, at: v.at, lockId: v.lockId, kind: v.kind, data: v.data });
      expect(body).toBe(v.canonicalBody);
      const hashInput = `LK-AUDIT-v1\n${v.prevHash}\n${body}`;
      expect(hashInput).toBe(v.hashInput);
      expect(toHex(utf8(hashInput))).toBe(v.hashInputUtf8Hex);
      expect(toHex(nodeCrypto.sha256(utf8(hashInput)))).toBe(v.hash);
    }
  });

  it("hashEvent gives each vector hash", () => {
    for (const e of events) expect(hashEvent(nodeCrypto, e.seq, e.prevHash, e)).toBe(e.hash);
  });

  it("chainEvent links the events from the genesis hash", () => {
    let seq = 0;
    let hash = GENESIS_HASH;
    for (const e of events) {
      const linked = chainEvent(nodeCrypto, seq, hash, {
        at: e.at,
        lockId: e.lockId,
        kind: e.kind,
        data: e.data,
      });
      expect(linked).toEqual(e);
      seq = linked.seq;
      hash = linked.hash;
    }
  });

  it("the checkpoint and the trim anchor verify with the device public key, and re-sign identically", () => {
    const cpMessage = `LK-AUDIT-CHECKPOINT-v1\n${deviceId}\n${checkpoint.seq}\n${checkpoint.hash}`;
    expect(cpMessage).toBe(vectors.checkpoint.message);
    expect(toHex(utf8(cpMessage))).toBe(vectors.checkpoint.messageUtf8Hex);
    expect(nodeCrypto.ed25519Verify(publicKey, utf8(cpMessage), fromHex(checkpoint.signature))).toBe(true);
    expect(signCheckpoint(nodeCrypto, deviceId, seed, checkpoint, checkpoint.at)).toEqual(checkpoint);

    const anMessage = `LK-AUDIT-ANCHOR-v1\n${deviceId}\n${anchor.throughSeq}\n${anchor.hash}`;
    expect(anMessage).toBe(vectors.anchor.message);
    expect(toHex(utf8(anMessage))).toBe(vectors.anchor.messageUtf8Hex);
    expect(nodeCrypto.ed25519Verify(publicKey, utf8(anMessage), fromHex(anchor.signature))).toBe(true);
    expect(
      signAnchor(nodeCrypto, deviceId, seed, { seq: anchor.throughSeq, hash: anchor.hash }, anchor.at),
    ).toEqual(anchor);

    // Domain separation: the checkpoint signature is not an anchor signature over the same head.
    const asAnchor = `LK-AUDIT-ANCHOR-v1\n${deviceId}\n${checkpoint.seq}\n${checkpoint.hash}`;
    expect(nodeCrypto.ed25519Verify(publicKey, utf8(asAnchor), fromHex(checkpoint.signature))).toBe(false);
  });

  it("verifyChain passes on the whole log and on the trimmed log", () => {
    expect(verifyChain(nodeCrypto, deviceId, publicKey, null, events, checkpoints)).toEqual(
      vectors.verification.full.expected,
    );
    const afterTrim = events.filter((e) => e.seq > anchor.throughSeq);
    expect(verifyChain(nodeCrypto, deviceId, publicKey, anchor, afterTrim, checkpoints)).toEqual(
      vectors.verification.trimmed.expected,
    );
  });

  it("fails verification when one character of any event's data changes", () => {
    events.forEach((e, i) => {
      const v = verifyChain(nodeCrypto, deviceId, publicKey, null, withOneCharChanged(i), checkpoints);
      expect(v.ok).toBe(false);
      expect(v.problem).toEqual({ seq: e.seq, what: "event hash does not match its content" });
    });
  });

  it("fails verification when one character of a signature or of the device id changes", () => {
    const flip = (hex: string) => (hex[0] === "0" ? "1" : "0") + hex.slice(1);
    const badCp = new Map([[checkpoint.seq, { ...checkpoint, signature: flip(checkpoint.signature) }]]);
    expect(verifyChain(nodeCrypto, deviceId, publicKey, null, events, badCp).problem?.what).toBe(
      "checkpoint signature does not verify",
    );
    const badAnchor = { ...anchor, signature: flip(anchor.signature) };
    const afterTrim = events.filter((e) => e.seq > anchor.throughSeq);
    expect(
      verifyChain(nodeCrypto, deviceId, publicKey, badAnchor, afterTrim, checkpoints).problem?.what,
    ).toBe("trim anchor signature does not verify");
    expect(verifyChain(nodeCrypto, `${deviceId}x`, publicKey, null, events, checkpoints).ok).toBe(false);
  });
});
