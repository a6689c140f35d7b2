/**
 * Writes test/vectors/link-messages.json: the issue-4 additions to the link's messages
 * (docs/protocol/link.md § "Messages"): a Select, a Result body with a time challenge, and a Proof that
 * carries a revocation list, a status ticket and a time ticket. Everything is fixed bytes, so the file is
 * reproducible. Run: npx tsx scripts/gen-link-message-vectors.ts
 */
import { readFileSync, writeFileSync } from "node:fs";
import { toHex } from "../src/core/crypto.ts";
import {
  encodeProof,
  encodeResultBody,
  encodeSelect,
  IntentKind,
  LinkAction,
} from "../src/core/link/messages.ts";
import type { Milliseconds } from "../src/core/units.ts";

const link = JSON.parse(readFileSync(new URL("../test/vectors/link.json", import.meta.url), "utf8")) as {
  chain: string[];
};
const hex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));
const chain = link.chain.map(hex);
const fill = (n: number, b: number) => new Uint8Array(n).fill(b);
const carry = {
  lists: [{ signerChain: [chain[0]!], object: fill(24, 0x11) }],
  status: { signerChain: [], object: fill(20, 0x22) },
  time: null,
};
const proof = {
  chain,
  action: LinkAction.Unlock,
  intent: { kind: IntentKind.UserVerified, ageMs: 1200 as Milliseconds },
  signature: fill(64, 0x5a),
  carry,
};
const vectors = {
  description:
    "Link messages added with issue 4 (docs/protocol/link.md): Select, a ResultBody with a time challenge, a Proof with carried objects. Objects and the signature are stand-in bytes: these vectors are about encoding.",
  select: { lockId: "front-door", hex: toHex(encodeSelect("front-door")) },
  resultWithTimeChallenge: {
    code: "LK_CLOCK_UNTRUSTED",
    timeChallengeHex: toHex(fill(16, 0x0c)),
    hex: toHex(
      encodeResultBody({ accepted: false, code: "LK_CLOCK_UNTRUSTED", timeChallenge: fill(16, 0x0c) }),
    ),
  },
  proofWithCarry: {
    chainHex: chain.map(toHex),
    action: proof.action,
    intent: [proof.intent.kind, proof.intent.ageMs],
    signatureHex: toHex(proof.signature),
    carry: {
      lists: carry.lists.map((l) => ({
        signerChainHex: l.signerChain.map(toHex),
        objectHex: toHex(l.object),
      })),
      status: { signerChainHex: [], objectHex: toHex(carry.status.object) },
      time: null,
    },
    hex: toHex(encodeProof(proof)),
  },
};
writeFileSync(
  new URL("../test/vectors/link-messages.json", import.meta.url),
  `${JSON.stringify(vectors, null, 2)}\n`,
);
console.log("wrote test/vectors/link-messages.json");
