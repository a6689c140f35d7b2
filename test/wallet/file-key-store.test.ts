/**
 * The wallet's file key store (src/wallet/file-key-store.ts): the port's acceptance suite, then what the
 * file itself must guarantee: private keys never in clear, 0600, a wrong passphrase or any change to the
 * file refused with a coded error, keys kept across reopening.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import { FileKeyStore } from "../../src/wallet/file-key-store.ts";
import { runKeyStoreTests } from "../support/key-store.acceptance.ts";

const dir = mkdtempSync(join(tmpdir(), "lk-wallet-keys-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `keys-${n++}.json`);

runKeyStoreTests("file", () => FileKeyStore.open(fresh(), "correct horse battery"));

describe("file key store", () => {
  it("keeps keys encrypted at rest, 0600, across reopening", async () => {
    const path = fresh();
    const s = FileKeyStore.open(path, "correct horse battery");
    const pub = await s.generate("phone", CoseAlg.EdDSA);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const raw = readFileSync(path, "utf8");
    expect(raw).not.toContain(Buffer.from(pub.key).toString("base64url"));
    expect(raw).not.toContain("phone");
    const again = FileKeyStore.open(path, "correct horse battery");
    expect(await again.publicKey("phone")).toEqual(pub);
  });

  it("refuses a wrong passphrase, a short one, and any change to the file", async () => {
    const path = fresh();
    await FileKeyStore.open(path, "correct horse battery").generate("phone");
    expect(() => FileKeyStore.open(path, "wrong horse battery")).toThrow(/LK_DATA_DIR_INVALID/);
    expect(() => FileKeyStore.open(fresh(), "short")).toThrow(/LK_INVALID_INPUT/);
    const doc = JSON.parse(readFileSync(path, "utf8")) as { sealed: string };
    const bytes = Buffer.from(doc.sealed, "base64url");
    bytes[5] = bytes[5]! ^ 1;
    writeFileSync(path, JSON.stringify({ ...doc, sealed: bytes.toString("base64url") }));
    expect(() => FileKeyStore.open(path, "correct horse battery")).toThrow(/LK_DATA_DIR_INVALID/);
    writeFileSync(path, "not json");
    expect(() => FileKeyStore.open(path, "correct horse battery")).toThrow(/LK_DATA_DIR_INVALID/);
  });
});
