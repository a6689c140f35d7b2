/**
 * `latchkey` — the command line. `start` and `init` work on the data directory directly; the other
 * commands talk to the running hub's local API (see README "CLI"). Errors print `error LK_...: message`
 * and exit non-zero.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Command, Option } from "commander";
import type { AuditEvent, ChainVerification } from "../core/audit/chain.ts";
import { isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import type { User } from "../core/model.ts";
import { systemClock } from "../platform/system-clock.ts";
import { type ClientOptions, call } from "./client.ts";

const program = new Command();

program
  .name("latchkey")
  .description("Access control for smart locks that keeps working when the internet does not.")
  .addOption(
    new Option("--data-dir <dir>", "hub data directory").env("LATCHKEY_DATA_DIR").default("./latchkey-data"),
  )
  .addOption(
    new Option("--url <url>", "hub API URL (default: the running hub's, else http://127.0.0.1:8080)").env(
      "LATCHKEY_URL",
    ),
  )
  .addOption(new Option("--token <token>", "API token (default: <data-dir>/cli-token)").env("LATCHKEY_TOKEN"))
  .option("--json", "print raw JSON")
  .showHelpAfterError();

function opts(): ClientOptions & { json?: boolean } {
  return program.opts();
}

function out(human: string, data: unknown): void {
  console.log(opts().json ? JSON.stringify(data, null, 2) : human);
}

async function findUser(ref: string): Promise<User> {
  if (/^usr_[0-9a-z]+$/.test(ref)) return call<User>(opts(), "GET", `/api/v1/users/${ref}`);
  const users = await call<User[]>(opts(), "GET", "/api/v1/users");
  const hits = users.filter((u) => u.name.toLowerCase() === ref.toLowerCase());
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1)
    throw new LatchkeyError("LK_CONFLICT", `several users are called "${ref}": use the user id`);
  throw new LatchkeyError("LK_NOT_FOUND", `no user "${ref}"`);
}

function locksOption(v: string | undefined): "all" | string[] | undefined {
  if (v === undefined) return undefined;
  return v === "all"
    ? "all"
    : v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
}

function fmtTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z");
}

/** One audit event as a log line. */
export function formatEvent(e: AuditEvent): string {
  const d = { ...e.data } as Record<string, unknown>;
  const parts = Object.entries(d).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  return `#${e.seq} ${fmtTime(e.at)} ${(e.lockId ?? "hub").padEnd(12)} ${e.kind.padEnd(20)} ${parts.join(" ")}`;
}

// ------------------------------------------------------------------ hub process

program
  .command("start")
  .description("start the hub (creates the data directory, keys and a simulated lock on first run)")
  .addOption(new Option("--port <port>", "TCP port").env("LATCHKEY_PORT").default("8080"))
  .addOption(
    new Option("--host <address>", "bind address (binding beyond 127.0.0.1 exposes the API to your network)")
      .env("LATCHKEY_HOST")
      .default("127.0.0.1"),
  )
  .option("--tz <zone>", "IANA time zone for new locks (default: this machine's)")
  .action(async (o: { port: string; host: string; tz?: string }) => {
    const port = Number(o.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new LatchkeyError("LK_INVALID_INPUT", "--port must be 0–65535");
    const { startHub } = await import("../hub/server.ts");
    const running = await startHub({
      dataDir: opts().dataDir,
      port,
      host: o.host,
      ...(o.tz ? { timeZone: o.tz } : {}),
    });
    const stop = async () => {
      await running.close();
      process.exit(0);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });

program
  .command("init")
  .description(
    "create the data directory, device key, PIN secret, the front-door lock and a setup code, without starting",
  )
  .option("--tz <zone>", "IANA time zone for the lock")
  .action(async (o: { tz?: string }) => {
    const { openDataDir, lockDataDir } = await import("../hub/data-dir.ts");
    const { Hub } = await import("../hub/hub.ts");
    const { realScheduler } = await import("../device/fake-clock.ts");
    const dir = openDataDir(opts().dataDir);
    const release = lockDataDir(dir.path);
    try {
      const hub = new Hub({
        dataDir: dir,
        clock: systemClock,
        scheduler: realScheduler,
        ...(o.tz ? { timeZone: o.tz } : {}),
      });
      const { setupCode } = hub.initialize();
      hub.close();
      out(
        setupCode
          ? `Initialised ${dir.path}\nOwner setup code (shown once): ${setupCode}\nStart the hub with: npm start`
          : `${dir.path} is already initialised.`,
        { dataDir: dir.path, setupCode },
      );
    } finally {
      release();
    }
  });

program
  .command("claim")
  .description(
    "claim the hub with the one-time setup code; saves the owner's API token to <data-dir>/cli-token",
  )
  .option("--code <code>", "setup code (default: read <data-dir>/setup-code)")
  .requiredOption("--name <name>", "the owner's name")
  .action(async (o: { code?: string; name: string }) => {
    const dir = resolve(opts().dataDir);
    let code = o.code;
    if (!code) {
      try {
        code = readFileSync(join(dir, "setup-code"), "utf8").trim();
      } catch {
        throw new LatchkeyError(
          "LK_SETUP_CODE_INVALID",
          `no --code given and no ${join(dir, "setup-code")} (already claimed?)`,
        );
      }
    }
    const r = await call<{ user: User; token: string }>(
      opts(),
      "POST",
      "/api/v1/claim",
      { setupCode: code, ownerName: o.name },
      false,
    );
    writeFileSync(join(dir, "cli-token"), `${r.token}\n`, { mode: 0o600 });
    out(`Claimed. Owner ${r.user.name} (${r.user.id}). API token saved to ${join(dir, "cli-token")}.`, r);
  });

program
  .command("status")
  .description("lock, door, battery, alarms and clock of every lock")
  .argument("[lockId]", "one lock")
  .action(async (lockId?: string) => {
    type L = {
      id: string;
      name: string;
      status: Record<string, unknown> & {
        battery: { percent: number; level: string };
        clock: { trusted: boolean };
      };
    };
    const list = lockId
      ? [await call<L>(opts(), "GET", `/api/v1/locks/${encodeURIComponent(lockId)}`)]
      : await call<L[]>(opts(), "GET", "/api/v1/locks");
    out(
      list
        .map((l) => {
          const s = l.status;
          return `${l.id} (${l.name}): ${s.lockState}, door ${s.doorState}, mode ${s.operatingMode}, battery ${s.battery.percent}% (${s.battery.level}), clock ${s.clock.trusted ? "trusted" : "UNTRUSTED"}${s.tampered ? ", TAMPER" : ""}`;
        })
        .join("\n"),
      list,
    );
  });

// ------------------------------------------------------------------ users and credentials

const user = program.command("user").description("manage users");
user
  .command("add")
  .argument("<name>")
  .option("--role <role>", "owner | admin | member | guest | service", "member")
  .option(
    "--type <userType>",
    "Matter UserType: unrestricted, weekDaySchedule, yearDaySchedule, programming, nonAccess, disposable, expiringDisposable, scheduleRestricted",
  )
  .option("--from <local>", "year-day schedule start, YYYY-MM-DDTHH:MM (lock time zone)")
  .option("--until <local>", "year-day schedule end, YYYY-MM-DDTHH:MM")
  .action(async (name: string, o: { role: string; type?: string; from?: string; until?: string }) => {
    const body: Record<string, unknown> = { name, role: o.role };
    if (o.type) body.userType = o.type;
    if (o.from || o.until) {
      body.yearDaySchedules = [{ start: o.from, end: o.until }];
      body.userType ??= "yearDaySchedule";
    }
    const u = await call<User>(opts(), "POST", "/api/v1/users", body);
    out(`Added ${u.name} (${u.id}), role ${u.role}, type ${u.userType}`, u);
  });
user.command("list").action(async () => {
  const users = await call<User[]>(opts(), "GET", "/api/v1/users");
  out(
    users
      .map(
        (u) => `${u.id}  ${u.name.padEnd(20)} ${u.role.padEnd(8)} ${u.userType.padEnd(18)} ${u.userStatus}`,
      )
      .join("\n"),
    users,
  );
});
user
  .command("remove")
  .argument("<user>", "user id or name")
  .action(async (ref: string) => {
    const u = await findUser(ref);
    await call(opts(), "DELETE", `/api/v1/users/${u.id}`);
    out(`Removed ${u.name} (${u.id}) and all their credentials.`, { removed: u.id });
  });

program
  .command("pin")
  .description("manage PINs")
  .command("set")
  .argument("<user>", "user id or name")
  .option("--duress", "a duress PIN: opens and raises a silent alarm")
  .option("--replace", "replace the user's existing PIN")
  .option("--locks <ids>", '"all" or comma-separated lock ids')
  .action(async (ref: string, o: { duress?: boolean; replace?: boolean; locks?: string }) => {
    // Read from standard input only: a PIN on the command line would land in shell history and `ps`.
    const pin = readFileSync(0, "utf8").trim();
    const u = await findUser(ref);
    const c = await call<{ id: string }>(opts(), "POST", `/api/v1/users/${u.id}/pin`, {
      pin,
      duress: o.duress ?? false,
      replace: o.replace ?? false,
      ...(o.locks ? { locks: locksOption(o.locks) } : {}),
    });
    out(`PIN set for ${u.name} (credential ${c.id}). The PIN itself is not stored.`, c);
  });

program
  .command("card")
  .description("manage RFID cards")
  .command("add")
  .argument("<user>", "user id or name")
  .option("--uid <hex>", "ISO 14443 UID (4, 7 or 10 bytes)")
  .option("--card-id <id>", "normalised Wiegand card id, e.g. h10301:123:45678")
  .option("--locks <ids>", '"all" or comma-separated lock ids')
  .action(async (ref: string, o: { uid?: string; cardId?: string; locks?: string }) => {
    const u = await findUser(ref);
    const c = await call<{ id: string; cardId: string }>(opts(), "POST", `/api/v1/users/${u.id}/cards`, {
      ...(o.uid ? { uid: o.uid } : {}),
      ...(o.cardId ? { cardId: o.cardId } : {}),
      ...(o.locks ? { locks: locksOption(o.locks) } : {}),
    });
    out(`Card ${c.cardId} enrolled for ${u.name} (credential ${c.id}).`, c);
  });

program
  .command("fingerprint")
  .description("manage fingerprints")
  .command("add")
  .argument("<user>", "user id or name")
  .requiredOption("--slot <n>", "sensor slot holding the template")
  .option("--locks <ids>", '"all" or comma-separated lock ids')
  .action(async (ref: string, o: { slot: string; locks?: string }) => {
    const u = await findUser(ref);
    const c = await call<{ id: string }>(opts(), "POST", `/api/v1/users/${u.id}/fingerprints`, {
      slot: Number(o.slot),
      ...(o.locks ? { locks: locksOption(o.locks) } : {}),
    });
    out(`Fingerprint slot ${o.slot} enrolled for ${u.name} (credential ${c.id}).`, c);
  });

// ------------------------------------------------------------------ door

const lockOpt = () => new Option("--lock <id>", "which lock").default("front-door");

program
  .command("keypad")
  .description("simulator: type digits then # on a lock's keypad")
  .argument("<digits>")
  .addOption(lockOpt())
  .action(async (digits: string, o: { lock: string }) => {
    const r = await call<{ feedback: string }>(opts(), "POST", `/api/v1/locks/${o.lock}/simulator/keypad`, {
      digits,
    });
    out(`keypad: ${r.feedback}`, r);
  });

program
  .command("tap")
  .description("simulator: present a card (ISO 14443 UID hex) to a lock's reader")
  .argument("<uid>")
  .addOption(lockOpt())
  .action(async (uid: string, o: { lock: string }) => {
    const r = await call<{ feedback: string }>(opts(), "POST", `/api/v1/locks/${o.lock}/simulator/card`, {
      uid,
    });
    out(`reader: ${r.feedback}`, r);
  });

program
  .command("unlock")
  .description("unlock a lock (decided and audited like any attempt)")
  .addOption(lockOpt())
  .action(async (o: { lock: string }) => {
    const r = await call<{ result: string }>(opts(), "POST", `/api/v1/locks/${o.lock}/unlock`);
    out(`${o.lock}: ${r.result}`, r);
  });

program
  .command("lock")
  .description("lock a lock; `lock add --id <id>` adds a simulated lock; `lock list` lists them")
  .argument("[action]", "add | list")
  .addOption(lockOpt())
  .option("--id <id>", "for add: the new lock's id")
  .option("--name <name>", "for add: display name")
  .option("--tz <zone>", "for add: IANA time zone")
  .action(
    async (action: string | undefined, o: { lock: string; id?: string; name?: string; tz?: string }) => {
      if (action === undefined) {
        const r = await call<{ result: string }>(opts(), "POST", `/api/v1/locks/${o.lock}/lock`);
        out(`${o.lock}: ${r.result}`, r);
      } else if (action === "add") {
        if (!o.id) throw new LatchkeyError("LK_INVALID_INPUT", "lock add needs --id");
        const l = await call<{ id: string; name: string }>(opts(), "POST", "/api/v1/locks", {
          id: o.id,
          ...(o.name ? { name: o.name } : {}),
          ...(o.tz ? { timeZone: o.tz } : {}),
        });
        out(`Added lock ${l.id} (${l.name}).`, l);
      } else if (action === "list") {
        const list = await call<{ id: string; name: string; timeZone: string }[]>(
          opts(),
          "GET",
          "/api/v1/locks",
        );
        out(list.map((l) => `${l.id}  ${l.name}  ${l.timeZone}`).join("\n"), list);
      } else {
        throw new LatchkeyError(
          "LK_INVALID_INPUT",
          `unknown lock action "${action}" (add | list, or none to lock)`,
        );
      }
    },
  );

// ------------------------------------------------------------------ audit log

const log = program.command("log").description("the audit log");
log
  .command("tail")
  .option("-n, --lines <n>", "how many events", "20")
  .option("--lock <id>", "only this lock")
  .action(async (o: { lines: string; lock?: string }) => {
    const q = new URLSearchParams({ limit: String(Math.min(1000, Number(o.lines) || 20)), order: "desc" });
    if (o.lock) q.set("lockId", o.lock);
    const r = await call<{ events: AuditEvent[] }>(opts(), "GET", `/api/v1/audit?${q}`);
    const events = r.events.reverse();
    out(events.map(formatEvent).join("\n") || "(no events)", events);
  });
log
  .command("verify")
  .description(
    "verify the hash chain and the device-key signatures (works offline on the data directory too)",
  )
  .option("--offline", "read the data directory directly, read-only (the hub need not run)")
  .option(
    "--public-key <hex>",
    "with --offline: the device public key recorded earlier (default: derived from secrets/)",
  )
  .action(async (o: { offline?: boolean; publicKey?: string }) => {
    let v: ChainVerification & { publicKey: string };
    if (o.offline) {
      const { verifyDataDir } = await import("./verify-offline.ts");
      v = verifyDataDir(opts().dataDir, o.publicKey);
    } else {
      v = await call<ChainVerification & { publicKey: string }>(opts(), "GET", "/api/v1/audit/verify");
    }
    const human = v.ok
      ? `audit log OK: events ${v.firstSeq}–${v.lastSeq} (${v.eventsChecked} checked), ${v.checkpointsChecked} signed checkpoints, ${v.unsignedTail} events after the last checkpoint\ndevice public key ${v.publicKey}`
      : `audit log BROKEN at seq ${v.problem?.seq}: ${v.problem?.what}`;
    out(human, v);
    if (!v.ok) process.exitCode = 3;
  });

program
  .command("export")
  .description("export users, credentials and rules as JSON (no secrets)")
  .option("--out <file>", "write to a file instead of standard output")
  .action(async (o: { out?: string }) => {
    const data = await call(opts(), "GET", "/api/v1/export");
    const text = `${JSON.stringify(data, null, 2)}\n`;
    if (o.out) {
      writeFileSync(o.out, text, { mode: 0o600 });
      console.log(`Exported to ${o.out}`);
    } else {
      process.stdout.write(text);
    }
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  if (isLatchkeyError(e)) {
    console.error(`error ${e.message}`);
    process.exit(e.fault === "caller" ? 2 : 1);
  }
  console.error(e);
  process.exit(1);
});
