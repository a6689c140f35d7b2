/**
 * `latchkey code ...` end to end against a real hub process (docs/protocol/guest-codes.md): enrol once,
 * issue with the hub stopped, open at the simulated keypad once it is back, revoke while it is unreachable
 * (kept as pending) and deliver with `--pending`, then cut codes off by epoch.
 * The lock's zone has a fixed offset and no DST, so the local windows below are easy to compute.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, cli, startHubProcess, waitExit } from "../support/processes.ts";

const ZONE = "Asia/Kolkata";
const OFFSET_MS = 330 * 60_000; // +05:30
const HOUR = 3_600_000;
/** A closed port: the hub is "unreachable" there. */
const NOWHERE = "http://127.0.0.1:1";

let dir: string;
let cfg: string;
let hub: Awaited<ReturnType<typeof startHubProcess>> | null = null;
const run = (...args: string[]) => cli(["--data-dir", dir, "--config-dir", cfg, ...args]);
/** The CLI with the hub out of reach, whatever else is running. */
const cut = (...args: string[]) => cli(["--data-dir", dir, "--config-dir", cfg, "--url", NOWHERE, ...args]);

/** Local date-times (the lock's zone) on the hour: from an hour ago to `hours` later. */
const localHour = Math.floor((Date.now() + OFFSET_MS) / HOUR) * HOUR;
const local = (localMs: number) => new Date(localMs).toISOString().slice(0, 16);
const FROM = local(localHour - HOUR);
const to = (hours: number) => local(localHour - HOUR + hours * HOUR);

async function stopHub() {
  if (!hub) return;
  hub.child.kill("SIGTERM");
  await waitExit(hub.child);
  hub = null;
}

/** The grouped digits `1234 5678 9012` printed by `code issue`, as typed at the keypad. */
function digitsOf(r: CliResult): string {
  const m = /^ {4}(\d{4} \d{4} \d{4})$/m.exec(r.stdout);
  expect(m, `${r.stdout}\n${r.stderr}`).not.toBeNull();
  return m![1]!.replace(/ /g, "");
}

async function keypad(digits: string): Promise<string> {
  const r = await run("keypad", digits);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

const codes: Record<string, string> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "latchkey-gc-cli-"));
  cfg = join(dir, "config");
  hub = await startHubProcess(dir, ["--tz", ZONE]);
  const claim = await run("claim", "--name", "Olivia Owner");
  expect(claim.code, claim.stderr).toBe(0);
});
afterAll(async () => {
  await stopHub();
  rmSync(dir, { recursive: true, force: true });
});

describe("latchkey code", () => {
  it("enrols once, then issues with the hub stopped; the code opens once the hub is back", async () => {
    const enrol = await run("code", "enrol");
    expect(enrol.code, enrol.stderr).toBe(0);
    const file = join(cfg, "issuers", "front-door.json");
    expect(enrol.stdout).toContain(`Saved to ${file} (mode 0600)`);
    expect(enrol.stdout).toMatch(/This file is a secret/);
    expect(enrol.stdout).not.toMatch(/[0-9a-f]{64}/); // the key stays in the file
    expect(statSync(file).mode & 0o777).toBe(0o600);

    await stopHub();
    // One at a time: each run rewrites the issuer file's ledger.
    const cleaner = await run(
      "code",
      "issue",
      "--name",
      "Cleaner",
      "--kind",
      "window",
      "--from",
      FROM,
      "--to",
      to(4),
    );
    const painter = await cut(
      "code",
      "issue",
      "--name",
      "Painter",
      "--kind",
      "window",
      "--from",
      FROM,
      "--to",
      to(5),
    );
    const lateFrom = local(localHour - HOUR + 7 * 60_000);
    const widened = await cut(
      "--json",
      "code",
      "issue",
      "--name",
      "Late Guest",
      "--kind",
      "one-time",
      "--from",
      lateFrom,
      "--to",
      to(4),
    );
    for (const r of [cleaner, painter, widened]) expect(r.code, r.stderr).toBe(0);
    codes.cleaner = digitsOf(cleaner);
    codes.painter = digitsOf(painter);
    expect(cleaner.stdout).toMatch(/^Guest code for Cleaner at Front door \(front-door\):$/m);
    expect(cleaner.stdout).toMatch(/^Code id: {2}[0-9a-f]{16} /m);
    expect(cleaner.stdout).toContain(`Valid:    ${FROM} – ${to(4)} (${ZONE})`);
    expect(cleaner.stdout).toMatch(/^Hi Cleaner, your code for Front door is \d{4} \d{4} \d{4}\./m);
    expect(cleaner.stderr).toBe("");
    // Widened to the grid: said on standard error; --json gives the object.
    expect(widened.stderr).toMatch(/^warning: the window was widened to fit the code format: asked /m);
    const json = JSON.parse(widened.stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ kind: "oneTime", exact: false, validFrom: FROM, validTo: to(4) });
    expect(json.code).toMatch(/^\d{12}$/);
    codes.late = json.code as string;

    // The ledger keeps ids and names, never the digits.
    const raw = readFileSync(file, "utf8");
    for (const c of Object.values(codes)) expect(raw).not.toContain(c);
    const list = await cut("code", "list");
    expect(list.stdout).toMatch(/^ID\s+NAME\s+KIND\s+FROM\s+TO\s+STATE$/m);
    expect(list.stdout).toMatch(
      new RegExp(`^[0-9a-f]{16}\\s+Cleaner\\s+window\\s+${FROM}\\s+${to(4)}\\s+issued$`, "m"),
    );
    expect(list.stdout).toMatch(/^[0-9a-f]{16}\s+Late Guest\s+one-time\s+/m);

    hub = await startHubProcess(dir, ["--tz", ZONE]);
    expect(await keypad(codes.cleaner)).toBe("keypad: granted");
    expect(await keypad(codes.late)).toBe("keypad: granted");
    expect(await keypad(codes.late)).toBe("keypad: denied"); // one-time
    const tail = await run("log", "tail", "-n", "20");
    expect(tail.stdout).toMatch(
      /access\.granted\s+codeId=[0-9a-f]{16} codeKind=window credentialType=guestCode/,
    );
    for (const c of Object.values(codes)) expect(tail.stdout).not.toContain(c);
  });

  it("keeps a revocation as pending while the hub is unreachable and delivers it with --pending", async () => {
    const pending = await cut("code", "revoke", "Painter");
    expect(pending.code, pending.stderr).toBe(0);
    expect(pending.stdout).toMatch(
      /^PENDING: the hub at http:\/\/127\.0\.0\.1:1 is unreachable, so code [0-9a-f]{16} \(Painter\) STILL OPENS front-door/,
    );
    expect(pending.stdout).toContain("latchkey code revoke --pending");
    expect((await cut("code", "list")).stdout).toMatch(/^[0-9a-f]{16}\s+Painter\s+.*revoke pending$/m);
    expect(await keypad(codes.painter!)).toBe("keypad: granted");

    const stillDown = await cut("code", "revoke", "--pending");
    expect(stillDown.code).toBe(1);
    expect(stillDown.stderr).toMatch(/^error LK_HUB_UNREACHABLE: /);
    expect((await cut("code", "list")).stdout).toMatch(/Painter\s+.*revoke pending$/m);

    const sent = await run("code", "revoke", "--pending");
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stdout).toMatch(/^[0-9a-f]{16} \(Painter\) on front-door: revoked$/m);
    expect((await run("code", "list")).stdout).toMatch(/^[0-9a-f]{16}\s+Painter\s+.*\srevoked$/m);
    expect(await keypad(codes.painter!)).toBe("keypad: denied");
    expect((await run("log", "tail", "-n", "1")).stdout).toMatch(/access\.denied\s.*reason=revoked/);
    expect((await run("code", "revoke", "--pending")).stdout).toBe("No pending revocations.\n");
    // Revoking by id prefix with the hub up: sent at once.
    const id = /^([0-9a-f]{16})\s+Cleaner\s/m.exec((await run("code", "list")).stdout)?.[1];
    expect(id).toBeDefined();
    const direct = await run("code", "revoke", id!.slice(0, 6));
    expect(direct.stdout).toBe(`Revoked code ${id} (Cleaner): it no longer opens front-door.\n`);
    expect(await keypad(codes.cleaner!)).toBe("keypad: denied");
  });

  it("cuts off an issuer's codes by epoch (--issuer, --all); enrol fetches the new key and keeps the ledger", async () => {
    const issuers = await run("code", "issuers");
    const iss = /^(iss_[0-9a-f]{12})\s+Olivia Owner\s+usr_\w+\s+0\s+yes\s+\S+\s+this machine$/m.exec(
      issuers.stdout,
    )?.[1];
    expect(iss, issuers.stdout).toBeDefined();

    const fresh = digitsOf(
      await cut("code", "issue", "--name", "Nanny", "--kind", "window", "--from", FROM, "--to", to(6)),
    );
    expect(await keypad(fresh)).toBe("keypad: granted");
    const raised = await run("code", "revoke", "--issuer", iss!);
    expect(raised.stdout).toBe(
      `Issuer ${iss} on front-door is now at epoch 1: every code it issued before no longer opens.\n`,
    );
    expect(raised.stderr).toMatch(/^warning: this machine's issuer file for front-door is at epoch 0/);
    expect(await keypad(fresh)).toBe("keypad: denied");

    const again = await run("code", "enrol");
    expect(again.stdout).toContain("epoch 1 (was epoch 0");
    expect(again.stdout).toContain("keeping its ledger of 4 code(s)");
    expect((await run("code", "list")).stdout).toMatch(/^[0-9a-f]{16}\s+Nanny\s+.*revoked \(epoch\)$/m);
    const next = digitsOf(
      await cut("code", "issue", "--name", "Nanny 2", "--kind", "window", "--from", FROM, "--to", to(6)),
    );
    expect(await keypad(next)).toBe("keypad: granted");

    const all = await run("code", "revoke", "--all");
    expect(all.stdout).toMatch(new RegExp(`^  ${iss} now at epoch 2$`, "m"));
    expect(await keypad(next)).toBe("keypad: denied");
  });

  it("refuses bad input with LK_ codes and exit 2, and needs an issuer file to issue", async () => {
    const cases = [
      ["code", "issue", "--kind", "window", "--from", FROM, "--to", to(2)],
      ["code", "issue", "--name", "X", "--kind", "bogus"],
      ["code", "issue", "--name", "X", "--kind", "window", "--from", FROM, "--to", to(2), "--uses", "3"],
      ["code", "issue", "--name", "X", "--kind", "uses", "--from", FROM, "--to", to(2), "--uses", "4"],
      ["code", "issue", "--name", "X", "--kind", "window", "--from", "tomorrow", "--to", to(2)],
      ["code", "issue", "--name", "X", "--kind", "recurring", "--days", "mon", "--at", "25"],
      ["code", "revoke"],
      ["code", "revoke", "Nobody", "--all"],
    ];
    const results = await Promise.all(cases.map((c) => cut(...c)));
    results.forEach((r, i) => {
      expect(r.code, cases[i]!.join(" ")).toBe(2);
      expect(r.stderr, cases[i]!.join(" ")).toMatch(/^error LK_INVALID_INPUT: \S/);
      expect(r.stdout).toBe("");
    });
    const [wrongKind, unknownRef, noFile] = await Promise.all([
      cut(
        "code",
        "issue",
        "--name",
        "X",
        "--kind",
        "first-use",
        "--from",
        FROM,
        "--to",
        to(2),
        "--duration",
        "2h",
      ),
      cut("code", "revoke", "nobody-by-that-name"),
      cli([
        "--config-dir",
        join(dir, "empty"),
        "code",
        "issue",
        "--name",
        "X",
        "--kind",
        "window",
        "--from",
        FROM,
        "--to",
        to(2),
      ]),
    ]);
    expect(wrongKind.stderr).toMatch(/^error LK_INVALID_INPUT: --duration must be 1h, 4h, 24h/);
    expect(unknownRef.stderr).toMatch(/^error LK_NOT_FOUND: /);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toMatch(
      /^error LK_NOT_FOUND: no guest-code issuer on this machine: run `latchkey code enrol`/,
    );
  });
});
