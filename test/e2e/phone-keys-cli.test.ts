/**
 * Phone keys end to end against a real hub process (docs/protocol/digital-keys.md, link.md,
 * wallet-sync.md): the owner's root key is created at claim, a simulated phone gets a key while online,
 * then opens the door over the hub's link bridge with the hub's API unreachable for the phone (the
 * router-unplugged test), queues its events and syncs them later; a revoked key stops working.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, startHubProcess, waitExit } from "../support/processes.ts";

/** A closed port: the hub's API is unreachable there. */
const NOWHERE = "http://127.0.0.1:1";
const ENV = {
  LATCHKEY_KEY_PASSPHRASE: "owner root passphrase",
  LATCHKEY_WALLET_PASSPHRASE: "phone passphrase",
};

let dir: string;
let cfg: string;
let wallet: string;
let hub: Awaited<ReturnType<typeof startHubProcess>> | null = null;
const run = (...args: string[]) => cli(["--data-dir", dir, "--config-dir", cfg, ...args], undefined, ENV);
/** The phone with no route to the hub's API: only the link bridge (the radio, in real life). */
const offline = (...args: string[]) =>
  cli(["--data-dir", dir, "--config-dir", cfg, "--url", NOWHERE, ...args], undefined, ENV);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "latchkey-phone-cli-"));
  cfg = join(dir, "config");
  wallet = join(dir, "phone");
  hub = await startHubProcess(dir);
  const claim = await run("claim", "--name", "Olivia Owner");
  expect(claim.code, claim.stderr).toBe(0);
  expect(claim.stdout).toMatch(/Owner root key for phone keys: .*owner-root-hub_[0-9a-f]+\.key/);
});
afterAll(async () => {
  if (hub) {
    hub.child.kill("SIGTERM");
    await waitExit(hub.child);
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("latchkey key / latchkey phone", () => {
  it("a phone given a key while online opens the door with the hub's API out of reach, and syncs later", async () => {
    const init = await run("phone", "--wallet", wallet, "init", "--json");
    expect(init.code, init.stderr).toBe(0);
    const { publicKey } = JSON.parse(init.stdout) as { publicKey: string };
    expect(publicKey).toMatch(/^lkpk1\.es256\.[A-Za-z0-9_-]+$/);

    const issued = await run("key", "issue", "--to", publicKey, "--until", "2d", "--name", "Sam's phone");
    expect(issued.code, issued.stderr).toBe(0);
    const serial = /^Key ([0-9a-f]{16}) /m.exec(issued.stdout)?.[1];
    expect(serial, issued.stdout).toBeDefined();
    expect(issued.stdout).toContain("latchkey phone add-key lkkey1.");

    const sync = await run("phone", "--wallet", wallet, "sync", "--json");
    expect(sync.code, sync.stderr).toBe(0);
    expect(JSON.parse(sync.stdout)).toMatchObject({ keys: 1, added: 1 });

    // Offline: the API is unreachable for the phone (a sync fails), the link bridge still works.
    const noSync = await offline("phone", "--wallet", wallet, "sync");
    expect(noSync.code).not.toBe(0);
    expect(noSync.stderr).toContain("LK_HUB_UNREACHABLE");
    const open = await offline("phone", "--wallet", wallet, "unlock", "front-door");
    expect(open.code, open.stderr).toBe(0);
    expect(open.stdout).toContain("Unlocked front-door.");

    const status = await run("status", "--json");
    expect(JSON.parse(status.stdout)).toMatchObject([{ status: { lockState: "unlocked" } }]);
    const tail = await run("log", "tail", "--json");
    const granted = (JSON.parse(tail.stdout) as { kind: string; data: Record<string, unknown> }[]).find(
      (e) => e.kind === "access.granted",
    );
    expect(granted?.data).toMatchObject({ source: "phone", serial, credentialType: "phoneKey" });

    const ps = await offline("phone", "--wallet", wallet, "status", "--json");
    expect(JSON.parse(ps.stdout)).toMatchObject({ queuedEvents: 1 });
    expect(statSync(join(wallet, "wallet.json")).mode & 0o777).toBe(0o600);
    // The holder's private key is sealed in its key file, never in clear text in the wallet.
    expect(readFileSync(join(wallet, "wallet.json"), "utf8")).not.toMatch(/PRIVATE|"d":/);

    // Back online: the event reaches the hub.
    const later = await run("phone", "--wallet", wallet, "sync", "--json");
    expect(JSON.parse(later.stdout)).toMatchObject({ eventsAccepted: 1 });
    const events = await run("key", "events", "--json");
    expect(JSON.parse(events.stdout)).toMatchObject([
      { lockId: "front-door", action: "unlock", accepted: true },
    ]);

    // Revoked: refused at the lock with a coded error.
    const revoke = await run("key", "revoke", serial!);
    expect(revoke.code, revoke.stderr).toBe(0);
    const refused = await offline("phone", "--wallet", wallet, "unlock", "front-door");
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("LK_LINK_REVOKED");
    const list = await run("key", "list");
    expect(list.stdout).toMatch(new RegExp(`${serial}.*revoked`));
  });

  it("refuses a malformed public key and a key text for another phone with coded errors", async () => {
    const bad = await run("key", "issue", "--to", "lkpk1.es256.AAAA", "--until", "1d");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("LK_INVALID_INPUT");
    const other = join(dir, "other-phone");
    const init = await run("phone", "--wallet", other, "init", "--alg", "eddsa", "--json");
    const { publicKey } = JSON.parse(init.stdout) as { publicKey: string };
    const issued = await run("key", "issue", "--to", publicKey, "--until", "1d", "--json");
    const { text } = JSON.parse(issued.stdout) as { text: string };
    const wrong = await run("phone", "--wallet", wallet, "add-key", text);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("LK_INVALID_INPUT");
  });
});
