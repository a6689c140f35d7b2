import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, startHubProcess, waitExit } from "../support/processes.ts";

let dir: string;
let hub: Awaited<ReturnType<typeof startHubProcess>>;
const run = (...args: string[]) => cli(["--data-dir", dir, ...args]);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "latchkey-cli-"));
  hub = await startHubProcess(dir);
});
afterAll(async () => {
  hub.child.kill("SIGTERM");
  await waitExit(hub.child);
  rmSync(dir, { recursive: true, force: true });
});

describe("latchkey CLI against a running hub", () => {
  it("prints the owner setup code once and keeps it in a 0600 file; secrets are 0600", () => {
    expect(hub.output()).toMatch(/Owner setup code \(shown once\): [0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}/);
    expect(statSync(join(dir, "setup-code")).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "secrets", "device-key")).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "secrets", "pin-secret")).mode & 0o777).toBe(0o600);
  });

  it("refuses a second hub on the same data directory with a clear error", async () => {
    const r = await cli(["--data-dir", dir, "start", "--port", "0"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/LK_DATA_DIR_LOCKED: another Latchkey hub \(pid \d+\) is already running/);
  });

  it("walks through claim, add a user, set a PIN, open at the keypad, read and verify the log", async () => {
    expect((await run("status")).stderr).toMatch(/LK_UNAUTHENTICATED/);
    const claim = await run("claim", "--name", "Olivia Owner");
    expect(claim.code, claim.stderr).toBe(0);
    expect(statSync(join(dir, "cli-token")).mode & 0o777).toBe(0o600);

    const add = await run("user", "add", "Bob");
    expect(add.stdout).toMatch(/Added Bob \(usr_[0-9a-z]+\), role member/);
    const weak = await cli(["--data-dir", dir, "pin", "set", "Bob"], "111111\n");
    expect(weak.code).toBe(2);
    expect(weak.stderr).toMatch(/LK_PIN_WEAK/);
    const pin = await cli(["--data-dir", dir, "pin", "set", "Bob"], "480613\n");
    expect(pin.stdout).toMatch(/PIN set for Bob/);
    expect((await run("keypad", "480613")).stdout).toContain("keypad: granted");
    expect((await run("keypad", "480614")).stdout).toContain("keypad: denied");
    expect((await run("card", "add", "Bob", "--uid", "04A1B2C3")).code).toBe(0);
    expect((await run("tap", "04a1b2c3")).stdout).toContain("reader: granted");
    expect((await run("fingerprint", "add", "Bob", "--slot", "4")).code).toBe(0);

    const tail = await run("log", "tail", "-n", "50");
    expect(tail.stdout).toMatch(
      /access\.granted\s+credentialId=cred_\w+ credentialType=pin source=keypad userId=usr_/,
    );
    expect(tail.stdout).toMatch(
      /access\.denied\s+credentialType=pin reason=unknown_credential source=keypad/,
    );
    expect(tail.stdout).not.toContain("480613");
    const verify = await run("log", "verify");
    expect(verify.stdout).toMatch(/audit log OK/);

    const status = await run("status");
    expect(status.stdout).toMatch(
      /front-door \(Front door\): (locked|unlocked|unlocking|locking), door closed/,
    );
    expect((await run("user", "list")).stdout).toMatch(/Bob/);
    const lockAdd = await run("lock", "add", "--id", "garage", "--name", "Garage");
    expect(lockAdd.stdout).toContain("Added lock garage");
    expect((await run("unlock", "--lock", "garage")).stdout).toContain("garage: granted");
    expect((await run("lock", "--lock", "garage")).stdout).toContain("garage: locked");
    const exp = await run("export");
    expect(JSON.parse(exp.stdout)).toMatchObject({ format: "latchkey-export", secretsIncluded: false });
    const rm = await run("user", "remove", "Bob");
    expect(rm.stdout).toContain("Removed Bob");
    expect((await run("keypad", "480613")).stdout).toContain("keypad: denied");
  });

  it("fails with a coded error and non-zero exit on bad input", async () => {
    const r = await run("user", "add", "X", "--role", "emperor");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error LK_INVALID_INPUT: /m);
    const unknown = await run("lock", "explode");
    expect(unknown.code).toBe(2);
  });

  it("verifies the log offline from the data directory", async () => {
    const r = await run("log", "verify", "--offline");
    expect(r.stdout).toMatch(/audit log OK/);
  });
});
