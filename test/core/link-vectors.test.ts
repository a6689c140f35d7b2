/**
 * The link test vectors (test/vectors/link.json, docs/protocol/link.md § "Test vectors"): rebuilt byte
 * for byte from their inputs, and checked against independent computations with node:crypto (X25519 per
 * RFC 7748 § 6.1, HKDF via hkdfSync, AES-256-GCM via createDecipheriv, Ed25519 via verify, the transcript
 * CBOR written out by hand), so the file is evidence, not just a snapshot.
 */
import { createDecipheriv, createHash, createPublicKey, hkdfSync, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { concatBytes, fromHex, toHex, utf8 } from "../../src/core/crypto.ts";
import { Reassembler } from "../../src/core/link/frames.ts";
import { LockHandshake } from "../../src/core/link/handshake.ts";
import {
  decodeMessage,
  decodeProof,
  decodeResultBody,
  encodeProof,
  encodeResultBody,
  encodeSelect,
} from "../../src/core/link/messages.ts";
import { EpochMs, MonotonicMs } from "../../src/core/units.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { buildLinkVectors, scriptedRandom } from "../support/link-vectors.ts";
import vectors from "../vectors/link.json" with { type: "json" };

const h = fromHex;

function gcmOpen(key: string, nonce: string, sealed: string, aad: number): string {
  const s = h(sealed);
  const d = createDecipheriv("aes-256-gcm", h(key), h(nonce), { authTagLength: 16 });
  d.setAuthTag(s.subarray(s.length - 16));
  d.setAAD(Uint8Array.of(aad));
  return Buffer.concat([d.update(s.subarray(0, s.length - 16)), d.final()]).toString("hex");
}

describe("link test vectors", () => {
  it("rebuild byte for byte from their inputs", () => {
    expect(JSON.parse(JSON.stringify(buildLinkVectors(nodeCrypto)))).toEqual(vectors);
    console.log(
      `vectors: challenge ${vectors.challenge.length / 2} B, answer ${vectors.answer.length / 2} B, result ${vectors.result.length / 2} B; ` +
        `${vectors.frames["20"].answer.length} answer frames at 20 B, ${vectors.frames["244"].answer.length} at 244 B`,
    );
  });

  it("match independent computations", () => {
    // RFC 7748 § 6.1: the ephemerals are Alice's and Bob's keys, so the shared secret is the RFC's.
    expect(vectors.lockEphemeralPublic).toBe(
      "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
    );
    expect(vectors.phoneEphemeralPublic).toBe(
      "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
    );
    expect(vectors.sharedSecret).toBe("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    // Transcript hash: SHA-256 of the CBOR array [text label, bstr challenge, bstr phone ephemeral], by hand.
    const challenge = h(vectors.challenge);
    expect(challenge.length).toBeLessThan(256);
    const thInput = concatBytes(
      Uint8Array.of(0x83, 0x60 + 20),
      utf8("LK-LINK-1 transcript"),
      Uint8Array.of(0x58, challenge.length),
      challenge,
      Uint8Array.of(0x58, 32),
      h(vectors.phoneEphemeralPublic),
    );
    expect(createHash("sha256").update(thInput).digest("hex")).toBe(vectors.transcriptHash);
    // Session keys: RFC 5869 HKDF-SHA-256 (node's hkdfSync).
    const hk = (info: string) =>
      Buffer.from(
        hkdfSync("sha256", h(vectors.sharedSecret), h(vectors.transcriptHash), utf8(info), 32),
      ).toString("hex");
    expect(hk("LK-LINK-1 phone to lock")).toBe(vectors.phoneToLockKey);
    expect(hk("LK-LINK-1 lock to phone")).toBe(vectors.lockToPhoneKey);
    expect(vectors.aeadNonce0).toBe("000000000000000000000000");
    // Sealed boxes: AES-256-GCM, AAD = the message type byte.
    expect(gcmOpen(vectors.phoneToLockKey, vectors.aeadNonce0, vectors.sealedProof, 2)).toBe(vectors.proof);
    expect(gcmOpen(vectors.lockToPhoneKey, vectors.aeadNonce0, vectors.sealedResult, 3)).toBe(
      vectors.resultBody,
    );
    // Transcript signature: Ed25519 by the holder over toBeSigned.
    const spki = Buffer.concat([
      Buffer.from("302a300506032b6570032100", "hex"),
      h(vectors.keys.holder.publicKey),
    ]);
    const holderKey = createPublicKey({ key: spki, format: "der", type: "spki" });
    expect(verify(null, h(vectors.toBeSigned), holderKey, h(vectors.signature))).toBe(true);
    expect(toHex(h(vectors.proof))).toContain(vectors.signature);
    expect(vectors.toBeSigned).toContain(vectors.transcriptHash);
  });

  it("a lock built from the inputs accepts the answer, and the frames reassemble", () => {
    const v = vectors.inputs;
    const port = scriptedRandom(nodeCrypto, [h(v.nonce), h(v.lockEphemeralPrivate)]);
    const owner = { alg: -8 as const, key: h(vectors.keys.owner.publicKey) };
    const lock = new LockHandshake(port, { lockId: v.lockId, siteId: v.siteId, owner });
    expect(toHex(lock.challenge(EpochMs(v.lockTimeMs), MonotonicMs(v.challengeAtMs)))).toBe(
      vectors.challenge,
    );
    const o = lock.answer(h(vectors.answer), EpochMs(v.lockTimeMs), MonotonicMs(v.answerAtMs));
    expect(o.ok).toBe(true);
    if (o.ok) expect(o.verified.serials).toEqual(vectors.verified.serials);
    for (const [size, f] of Object.entries(vectors.frames)) {
      for (const [name, list] of Object.entries(f)) {
        const r = new Reassembler({ frameSize: Number(size) });
        const out = list.map((x) => r.push(h(x), MonotonicMs(0)));
        expect(toHex(out[out.length - 1]!)).toBe((vectors as unknown as Record<string, string>)[name]);
      }
    }
  });
});

describe("link message vectors of issue 4 (test/vectors/link-messages.json)", () => {
  const m = JSON.parse(readFileSync(new URL("../vectors/link-messages.json", import.meta.url), "utf8")) as {
    select: { lockId: string; hex: string };
    resultWithTimeChallenge: { code: string; timeChallengeHex: string; hex: string };
    proofWithCarry: {
      chainHex: string[];
      signatureHex: string;
      carry: { lists: { signerChainHex: string[]; objectHex: string }[]; status: { objectHex: string } };
      hex: string;
    };
  };
  const unhex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));

  it("decode to the documented fields and re-encode to the same bytes", () => {
    const sel = decodeMessage(unhex(m.select.hex));
    expect(sel).toEqual({ type: 6, lockId: m.select.lockId });
    expect(Buffer.from(encodeSelect(m.select.lockId)).toString("hex")).toBe(m.select.hex);

    const r = decodeResultBody(unhex(m.resultWithTimeChallenge.hex));
    expect(r).toMatchObject({ accepted: false, code: m.resultWithTimeChallenge.code });
    expect(Buffer.from((r as { timeChallenge: Uint8Array }).timeChallenge).toString("hex")).toBe(
      m.resultWithTimeChallenge.timeChallengeHex,
    );
    expect(Buffer.from(encodeResultBody(r)).toString("hex")).toBe(m.resultWithTimeChallenge.hex);

    const p = decodeProof(unhex(m.proofWithCarry.hex));
    expect(p.chain.map((c) => Buffer.from(c).toString("hex"))).toEqual(m.proofWithCarry.chainHex);
    expect(p.carry?.lists.map((l) => Buffer.from(l.object).toString("hex"))).toEqual(
      m.proofWithCarry.carry.lists.map((l) => l.objectHex),
    );
    expect(Buffer.from(p.carry!.status!.object).toString("hex")).toBe(
      m.proofWithCarry.carry.status.objectHex,
    );
    expect(p.carry?.time).toBeNull();
    expect(Buffer.from(encodeProof(p)).toString("hex")).toBe(m.proofWithCarry.hex);
  });
});
