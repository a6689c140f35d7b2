/**
 * Writes test/vectors/link.json: the phone-lock link test vectors (docs/protocol/link.md § "Test vectors").
 * Run: `node --import tsx scripts/gen-link-vectors.ts`. The test suite rebuilds every value and checks the
 * key schedule and the sealed boxes against node:crypto's own HKDF and AES-GCM, so a regenerated file is
 * checked, not trusted.
 */
import { writeFileSync } from "node:fs";
import { nodeCrypto } from "../src/platform/node-crypto.ts";
import { buildLinkVectors } from "../test/support/link-vectors.ts";

const vectors = buildLinkVectors(nodeCrypto);
writeFileSync(new URL("../test/vectors/link.json", import.meta.url), `${JSON.stringify(vectors, null, 2)}\n`);
console.log(`wrote test/vectors/link.json (answer ${vectors.answer.length / 2} bytes)`);
