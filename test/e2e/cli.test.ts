import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { logValue, safe } from "../../src/cli/format.ts";
import { parseOtpauthUri, totpAt } from "../../src/core/credentials/totp.ts";
import { EpochMs } from "../../src/core/units.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { cli, startHubProcess, waitExit } from "../support/processes.ts";

// The hub runs in a zone with a fixed offset and no DST, so times in the CLI's output are predictable.
const ZONE = "Asia/Kolkata";
const OFFSET = "+05:30";

let dir: string;
let hub: Awaited<ReturnType<typeof startHubProcess>>;
const run = (...args: string[]) => cli(["--data-dir", dir, ...args]);
const withStdin = (input: string, ...args: string[]) => cli(["--data-dir", dir, ...args], input);

interface Envelope<T> {
  ok: boolean;
  data: T;
  error: { code: string; message: string };
}
interface UserRow {
  id: string;
  name: string;
  weekDaySchedules: unknown[];
}

/** Call the hub API directly with the owner's token (the CLI saved it at claim). */
async function apiCall<T = unknown>(method: string, path: string, body?: unknown) {
  const token = readFileSync(join(dir, "cli-token"), "utf8").trim();
  const res = await fetch(hub.url + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as Envelope<T> };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "latchkey-cli-"));
  hub = await startHubProcess(dir, ["--tz", ZONE]);
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
    expect(r.stderr).toMatch(
      /^error LK_DATA_DIR_LOCKED: another Latchkey hub \(pid \d+\) is already running/m,
    );
  });

  it("walks through claim, add a user, set a PIN, open at the keypad, read and verify the log", async () => {
    expect((await run("status")).stderr).toMatch(/^error LK_UNAUTHENTICATED: /);
    const claim = await run("claim", "--name", "Olivia Owner");
    expect(claim.code, claim.stderr).toBe(0);
    expect(statSync(join(dir, "cli-token")).mode & 0o777).toBe(0o600);

    const add = await run("user", "add", "Bob");
    expect(add.stdout).toMatch(/Added Bob \(usr_[0-9a-z]+\), role member/);
    const weak = await withStdin("111111\n", "pin", "set", "Bob");
    expect(weak.code).toBe(2);
    expect(weak.stderr).toMatch(/^error LK_PIN_WEAK: /);
    const pin = await withStdin("480613\n", "pin", "set", "Bob");
    expect(pin.stdout).toMatch(/PIN set for Bob \(credential cred_\w+\)/);
    expect((await run("keypad", "480613")).stdout).toContain("keypad: granted");
    expect((await run("keypad", "480614")).stdout).toContain("keypad: denied");
    expect((await run("card", "add", "Bob", "--uid", "04A1B2C3")).code).toBe(0);
    expect((await run("tap", "04a1b2c3")).stdout).toContain("reader: granted");
    expect((await run("fingerprint", "add", "Bob", "--slot", "4")).code).toBe(0);

    const tail = await run("log", "tail", "-n", "50");
    expect(tail.stdout).toMatch(
      /access\.granted\s+credentialId=cred_\w+ credentialType=pin source=keypad userId=usr_\w+\(Bob\)/,
    );
    expect(tail.stdout).toMatch(
      /access\.denied\s+credentialType=pin reason=unknown_credential source=keypad/,
    );
    // Times in the lock's zone with the offset; the owner's name next to their id.
    expect(tail.stdout).toMatch(
      new RegExp(`^#\\d+ \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\${OFFSET} front-door`, "m"),
    );
    expect(tail.stdout).toMatch(/actorId=usr_\w+\("Olivia Owner"\)/);
    expect(tail.stdout).not.toContain("480613");
    const verify = await run("log", "verify");
    expect(verify.stdout).toMatch(/audit log OK/);

    const status = await run("status");
    expect(status.stdout).toMatch(
      /front-door \(Front door\): (locked|unlocked|unlocking|locking), door closed/,
    );
    const users = await run("user", "list");
    expect(users.stdout).toMatch(/^ID\s+NAME\s+ROLE\s+TYPE\s+STATUS\s+SCHEDULES$/m);
    expect(users.stdout).toMatch(/^usr_\w+\s+Bob\s+member\s+unrestricted\s+enabled\s+-$/m);
    const lockAdd = await run("lock", "add", "--id", "garage", "--name", "Garage");
    expect(lockAdd.stdout).toContain("Added lock garage");
    expect((await run("unlock", "--lock", "garage")).stdout).toBe("garage: unlocked\n");
    expect((await run("lock", "--lock", "garage")).stdout).toBe("garage: locked\n");
    const exp = await run("export");
    expect(JSON.parse(exp.stdout)).toMatchObject({ format: "latchkey-export", secretsIncluded: false });
    const rm = await run("user", "remove", "Bob");
    expect(rm.stdout).toContain("Removed Bob");
    expect((await run("keypad", "480613")).stdout).toContain("keypad: denied");
  });

  it("lists and removes credentials; replaces a PIN by default, keeps it with --add", async () => {
    expect((await run("user", "add", "Carol")).code).toBe(0);
    expect((await withStdin("529317\n", "pin", "set", "Carol")).code).toBe(0);
    expect((await run("card", "add", "Carol", "--uid", "04C0FFEE")).code).toBe(0);
    const list = await run("credential", "list", "Carol");
    expect(list.stdout).toMatch(/^ID\s+TYPE\s+LABEL\s+LOCKS\s+CARD\/SLOT\s+DURESS\s+LAST USED$/m);
    expect(list.stdout).toMatch(/^cred_\w+\s+pin \(6 digits\)\s+-\s+all\s+-\s+no\s+never$/m);
    const card = /^(cred_\w+)\s+rfid\s+-\s+all\s+uid:04c0ffee\s+-\s+never$/m.exec(list.stdout);
    expect(card, list.stdout).not.toBeNull();
    const rm = await run("credential", "remove", card![1]!);
    expect(rm.stdout).toContain(`Removed credential ${card![1]}`);
    expect((await run("tap", "04c0ffee")).stdout).toContain("reader: denied");

    const carol = (await apiCall<UserRow[]>("GET", "/api/v1/users")).json.data.find(
      (u) => u.name === "Carol",
    )!;
    const pins = async () =>
      (
        await apiCall<{ type: string; duress?: boolean }[]>("GET", `/api/v1/users/${carol.id}/credentials`)
      ).json.data.filter((c) => c.type === "pin" && !c.duress).length;
    const replaced = await withStdin("638204\n", "pin", "set", "Carol");
    expect(replaced.stdout).toContain("any earlier PIN of theirs no longer works");
    expect(await pins()).toBe(1); // needs the hub's replace-by-default (PinBody.replace)
    const added = await withStdin("749315\n", "pin", "set", "Carol", "--add");
    expect(added.stdout).toContain("their other PINs still work");
    expect(await pins()).toBe(2);
    const duress = await withStdin("861402\n", "pin", "set", "Carol", "--duress");
    expect(duress.stdout).toMatch(/^Duress PIN set for Carol .*silent duress alarm/);

    const empty = await withStdin("", "pin", "set", "Carol");
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/^error LK_PIN_FORMAT: no PIN given/);
  });

  it("enrols an authenticator app with a terminal QR code; the PIN then the code opens", async () => {
    expect((await run("user", "add", "Tina Totp")).code).toBe(0);
    expect((await withStdin("590317\n", "pin", "set", "Tina Totp")).code).toBe(0);
    const noType = await run("credential", "add", "Tina Totp");
    expect(noType.code).toBe(2);
    expect(noType.stderr).toMatch(/^error LK_INVALID_INPUT: .*--totp/);

    const add = await run("credential", "add", "Tina Totp", "--totp", "--label", "phone");
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(
      /^Authenticator app enrolled for Tina Totp \(usr_\w+\) \(credential cred_\w+\): at the keypad, type the PIN and then/m,
    );
    expect(add.stdout).toMatch(/[\u2580\u2584\u2588]{5}/); // the QR code, in block characters
    const uri = /^otpauth:\/\/totp\/Latchkey:Tina%20Totp\?secret=[A-Z2-7]+&\S+$/m.exec(add.stdout)?.[0];
    expect(uri).toBeDefined();
    const secret = parseOtpauthUri(uri!).secret;

    const list = await run("credential", "list", "Tina Totp");
    expect(list.stdout).toMatch(/^cred_\w+\s+totp \(PIN \+ code\)\s+phone\s+all\s+-\s+-\s+never$/m);
    expect(list.stdout).not.toContain(uri!.split("secret=")[1]!.slice(0, 32));

    expect((await run("keypad", "590317")).stdout).toBe("keypad: denied\n");
    const lockNow = (await apiCall<{ status: { clock: { now: number } } }>("GET", "/api/v1/locks/front-door"))
      .json.data.status.clock.now;
    const code = totpAt(nodeCrypto, secret, EpochMs(lockNow));
    expect((await run("keypad", `590317${code}`)).stdout).toBe("keypad: granted\n");
    expect((await run("keypad", `590317${code}`)).stdout).toBe("keypad: denied\n");
    const tail = await run("log", "tail", "-n", "2");
    expect(tail.stdout).toMatch(/access\.granted\s+credentialId=cred_\w+ credentialType=totp source=keypad/);
    expect(tail.stdout).toMatch(
      /access\.denied\s+credentialId=cred_\w+ credentialType=totp reason=totp_replayed/,
    );
    expect(tail.stdout).not.toContain(code);

    // --alone and --json: the URI without the SVG.
    const json = await run("--json", "credential", "add", "Tina Totp", "--totp", "--alone");
    const data = JSON.parse(json.stdout) as { credential: { requirePin: boolean }; otpauthUri: string };
    expect(data.credential.requirePin).toBe(false);
    expect(data.otpauthUri).toMatch(/^otpauth:\/\/totp\//);
    expect(data).not.toHaveProperty("qrSvg");
  });

  it("disables and enables a user, schedules and clears their access", async () => {
    expect((await run("user", "disable", "Carol")).stdout).toMatch(/^Disabled Carol/);
    expect((await run("keypad", "638204")).stdout).toBe("keypad: denied\n");
    expect((await run("user", "enable", "Carol")).stdout).toMatch(/^Enabled Carol/);
    expect((await run("keypad", "638204")).stdout).toBe("keypad: granted\n");

    const sched = await run(
      "user",
      "schedule",
      "Carol",
      "--days",
      "daily",
      "--from",
      "00:00",
      "--to",
      "24:00",
    );
    expect(sched.code, sched.stderr).toBe(0);
    expect(sched.stdout).toContain("Added daily 00:00-24:00 (lock time) to Carol");
    expect(sched.stdout).toContain("now a weekDaySchedule user");
    const carol = (await apiCall<UserRow[]>("GET", "/api/v1/users")).json.data.find(
      (u) => u.name === "Carol",
    );
    expect(carol?.weekDaySchedules).toEqual([
      { daysMask: 127, startHour: 0, startMinute: 0, endHour: 24, endMinute: 0 },
    ]);
    const clear = await run("user", "schedule", "Carol", "--clear");
    expect(clear.stdout).toContain("Cleared the schedules of Carol");
    expect(clear.stderr).toMatch(/^warning: Carol is a weekDaySchedule user with no week-day schedule/);

    const wendy = await run("user", "add", "Wendy", "--type", "weekDaySchedule");
    expect(wendy.code).toBe(0);
    expect(wendy.stderr).toMatch(/^warning: Wendy .*cannot open any door until/);
    const weekdays = await run(
      "user",
      "add",
      "Walt",
      "--days",
      "mon-fri",
      "--from",
      "09:00",
      "--to",
      "17:00",
    );
    expect(weekdays.stdout).toContain("type weekDaySchedule, weekdays 09:00-17:00");
    expect(weekdays.stderr).toBe("");
  });

  it("sets the mode, lock settings, the clock; shows a keypad lockout", async () => {
    expect((await run("mode", "set", "vacation")).stdout).toMatch(/^front-door: mode vacation: keypad/);
    const modes = await run("mode");
    expect(modes.stdout).toMatch(/^LOCK\s+MODE\s+MEANING$/m);
    expect(modes.stdout).toMatch(/^front-door\s+vacation\s+keypad, cards and fingerprints only for owners/m);
    expect(modes.stdout).toMatch(/^garage\s+normal\s+every credential/m);
    expect((await run("mode", "set", "normal")).stdout).toMatch(/^front-door: mode normal/);

    const set = await run("lock", "set", "--lock", "garage", "--auto-relock", "7");
    expect(set.stdout).toContain("garage (Garage): auto-relock 7 s");
    const garage = await apiCall<{ settings: { autoRelockTime: number } }>("GET", "/api/v1/locks/garage");
    expect(garage.json.data.settings.autoRelockTime).toBe(7);
    const locks = await run("lock", "list");
    expect(locks.stdout).toMatch(/^ID\s+NAME\s+TIME ZONE\s+MODE\s+STATE\s+AUTO-RELOCK$/m);
    expect(locks.stdout).toMatch(new RegExp(`^garage\\s+Garage\\s+${ZONE}\\s+normal\\s+\\w+\\s+7 s$`, "m"));

    const clock = await run("clock", "set");
    expect(clock.stdout).toMatch(new RegExp(`^front-door: clock set to \\S+\\${OFFSET}, trusted\\.$`, "m"));
    const back = await run("clock", "set", "2020-01-01T00:00:00Z");
    expect(back.code).toBe(2);
    expect(back.stderr).toMatch(/^error LK_CONFLICT: .*--force/);

    for (let i = 0; i < 5; i++) {
      await apiCall("POST", "/api/v1/locks/garage/simulator/keypad", { digits: "000000" });
    }
    expect((await run("keypad", "000000", "--lock", "garage")).stdout).toBe("keypad: locked out\n");
    const status = await run("status", "garage");
    expect(status.stdout).toMatch(/^garage \(Garage\): .*, keypad locked out until \d\d:\d\d:\d\d$/m);
    const tail = await run("log", "tail", "-n", "3", "--lock", "garage");
    expect(tail.stdout).toMatch(
      new RegExp(`alarm\\.lockout\\s+input=keypad strike=1 until=\\d{4}-\\d\\d-\\d\\dT[\\d:]{8}\\${OFFSET}`),
    );
  });

  it("creates, lists and revokes API tokens", async () => {
    const created = await run("token", "create", "--label", "ci");
    expect(created.code, created.stderr).toBe(0);
    const [secret, info] = created.stdout.split("\n");
    expect(secret).toMatch(/^lk_[0-9a-f]+$/);
    const id = /Token (tok_\w+) for Olivia Owner/.exec(info ?? "")?.[1];
    expect(id, info).toBeDefined();
    const list = await run("token", "list");
    expect(list.stdout).toMatch(/^ID\s+LABEL\s+CREATED$/m);
    expect(list.stdout).toMatch(new RegExp(`^${id}\\s+ci\\s+\\S+\\${OFFSET}$`, "m"));
    const me = await fetch(`${hub.url}/api/v1/me`, { headers: { authorization: `Bearer ${secret}` } });
    expect(me.status).toBe(200);
    expect((await run("token", "revoke", id!)).stdout).toBe(`Revoked token ${id}.\n`);
    const after = await fetch(`${hub.url}/api/v1/me`, { headers: { authorization: `Bearer ${secret}` } });
    expect(after.status).toBe(401);
  });

  it("reports usage errors as LK_INVALID_INPUT with exit 2 and a short usage hint", async () => {
    const cases = [
      ["bogus"],
      ["user", "add"],
      ["user", "add", "X", "--role", "emperor"],
      ["user", "list", "--bogus"],
      ["claim"],
      ["fingerprint", "add", "Carol", "--slot", "abc"],
      ["log", "tail", "-n", "abc"],
      ["log", "tail", "-n", "0"],
      ["lock", "explode"],
      ["user", "schedule", "Carol", "--days", "funday", "--from", "09:00", "--to", "10:00"],
    ];
    const results = await Promise.all(cases.map((c) => run(...c)));
    results.forEach((r, i) => {
      expect(r.code, cases[i]!.join(" ")).toBe(2);
      expect(r.stderr, cases[i]!.join(" ")).toMatch(/^error LK_INVALID_INPUT: \S/);
      expect(r.stderr).not.toContain("Commands:");
      expect(r.stdout).toBe("");
    });
    expect(results[1]!.stderr).toContain(
      "missing required argument 'name'\nusage: latchkey user add [options] <name>",
    );
    expect(results[5]!.stderr).toMatch(/--slot <n>.*'abc' is invalid/);
  });

  it("prints errors as JSON with --json, the version, and subcommand help", async () => {
    const [usage, notFound, unreachable, version, userHelp, logHelp] = await Promise.all([
      run("--json", "user", "add", "X", "--role", "emperor"),
      run("user", "remove", "Nobody", "--json"),
      run("--url", "http://127.0.0.1:1", "status"),
      run("--version"),
      run("user", "--help"),
      run("log", "--help"),
    ]);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stderr)).toEqual({
      ok: false,
      error: {
        code: "LK_INVALID_INPUT",
        message: expect.stringMatching(/^LK_INVALID_INPUT: option '--role/),
      },
    });
    expect(notFound.code).toBe(2);
    expect(JSON.parse(notFound.stderr)).toMatchObject({ ok: false, error: { code: "LK_NOT_FOUND" } });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^error LK_HUB_UNREACHABLE: cannot reach the hub/);
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "../../package.json"), "utf8"));
    expect(version.stdout.trim()).toBe(pkg.version);
    expect(userHelp.stdout).toMatch(/schedule \[options\] <user>\s+add a week-day or year-day window/);
    expect(userHelp.stdout).toMatch(/disable <user>\s+disable a user/);
    expect(logHelp.stdout).toMatch(/tail \[options\]\s+the latest audit events/);
    expect(logHelp.stdout).toMatch(/verify \[options\]\s+verify the hash chain/);
  });

  it("refuses control characters and text-direction overrides in names and labels at the hub", async () => {
    for (const name of ["Eve\u001b[31m\n#99 fake", "Mallory\u202etxt.exe"]) {
      const refused = await apiCall("POST", "/api/v1/users", { name });
      expect(refused.status).toBe(400);
      expect(refused.json.error.code).toBe("LK_INVALID_INPUT");
    }
    const label = await run("token", "create", "--label", "ci\u001b[31m\n#999 fake");
    expect(label.code).toBe(2);
    expect(label.stderr).toMatch(/LK_INVALID_INPUT/);
    // Whatever the hub sends, every line of `log tail` is one event.
    const tail = await run("log", "tail", "-n", "30");
    for (const line of tail.stdout.trimEnd().split("\n")) expect(line).toMatch(/^#\d+ \d{4}-/);
  });

  it("escapes control characters in anything it prints (defence in depth)", () => {
    expect(safe("Eve\u001b[31m\nline")).toBe("Eve\\x1b[31m\\nline");
    expect(safe("Mallory\u202etxt")).not.toContain("\u202e");
    expect(logValue("a b")).toBe('"a b"');
  });

  it("verifies the log offline from the data directory; a broken chain exits 3", async () => {
    const r = await run("log", "verify", "--offline");
    expect(r.stdout).toMatch(/audit log OK/);

    const other = join(dir, "other");
    const init = await cli(["--data-dir", other, "init"]);
    expect(init.stdout).toContain(`Start the hub with: npx latchkey --data-dir ${other} start`);
    const db = new Database(join(other, "latchkey.db"));
    db.prepare("UPDATE audit_events SET data = replace(data, 'Front door', 'Back door') WHERE seq = 1").run();
    db.close();
    const broken = await cli(["--data-dir", other, "log", "verify", "--offline"]);
    expect(broken.code).toBe(3);
    expect(broken.stderr).toMatch(/^error LK_AUDIT_CHAIN_BROKEN: audit log BROKEN at seq 1/);
  });
});
