/**
 * The one acceptance suite of the SecureKeyStore port (src/wallet/secure-key-store.ts). Every adapter runs
 * it: runKeyStoreTests("file", () => FileKeyStore.open(path, passphrase)).
 */
import { describe, expect, it } from "vitest";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import type { SecureKeyStore } from "../../src/wallet/secure-key-store.ts";

export function runKeyStoreTests(name: string, open: () => SecureKeyStore | Promise<SecureKeyStore>): void {
  describe(`SecureKeyStore acceptance: ${name}`, () => {
    it("generates ES256 (default) and EdDSA keys whose signatures verify", async () => {
      const s = await open();
      const p = await s.generate("phone");
      const e = await s.generate("soft", CoseAlg.EdDSA);
      expect(p.alg).toBe(CoseAlg.ES256);
      expect(p.key).toHaveLength(65);
      expect(e.key).toHaveLength(32);
      const data = Uint8Array.of(1, 2, 3);
      expect(nodeCrypto.p256Verify(p.key, data, await s.sign("phone", data))).toBe(true);
      expect(nodeCrypto.ed25519Verify(e.key, data, await s.sign("soft", data))).toBe(true);
      expect(await s.publicKey("phone")).toEqual(p);
      expect(await s.list()).toEqual(["phone", "soft"]);
    });

    it("refuses duplicates, bad aliases and unknown keys with coded errors", async () => {
      const s = await open();
      await s.generate("k");
      await expect(s.generate("k")).rejects.toMatchObject({ code: "LK_CONFLICT" });
      await expect(s.generate("bad alias!")).rejects.toMatchObject({ code: "LK_INVALID_INPUT" });
      await expect(s.generate("x", -35 as CoseAlg)).rejects.toMatchObject({ code: "LK_ENVELOPE_ALG" });
      await expect(s.sign("missing", Uint8Array.of(1))).rejects.toMatchObject({ code: "LK_NOT_FOUND" });
      expect(await s.publicKey("missing")).toBeNull();
    });

    it("deletes keys (idempotently)", async () => {
      const s = await open();
      await s.generate("gone");
      await s.delete("gone");
      await s.delete("gone");
      expect(await s.publicKey("gone")).toBeNull();
      expect(await s.list()).not.toContain("gone");
    });
  });
}
