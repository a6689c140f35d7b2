/**
 * `latchkey` — the command line. `start` and `init` work on the data directory directly; the other
 * commands are a thin client of the running hub's local API (see README "CLI").
 *
 * Every failure prints one line `error LK_CODE: message` on standard error (with `--json`:
 * `{"ok":false,"error":{"code","message"}}`) and exits 2 when it is the caller's fault (bad input,
 * usage, refused), 3 when `log verify` finds the audit log broken, 1 otherwise. Every string that
 * comes from the hub is printed escaped (see format.ts).
 */
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Argument, Command, type HelpContext, Option } from "commander";
import QRCode from "qrcode";
import type { AuditEvent, ChainVerification } from "../core/audit/chain.ts";
import { type ErrorCode, isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import type { User, WeekDaySchedule, YearDaySchedule } from "../core/model.ts";
import { systemClock } from "../platform/system-clock.ts";
import { intArg, parseDays, parseHm, parseInstant, parseLocalDateTime, parseLocks } from "./args.ts";
import { type ClientOptions, call, resolveToken, resolveUrl } from "./client.ts";
import { registerCloudCommands } from "./cloud-commands.ts";
import {
  clockInZone,
  formatEvent,
  isoInZone,
  MODE_MEANINGS,
  modeMeaning,
  safe,
  safeJson,
  schedulesText,
  shellWord,
  table,
} from "./format.ts";
import { registerCodeCommands } from "./guest-code-commands.ts";
import { configDir } from "./issuer-wallet.ts";
import { type HubIdentity, hubKeyOf, registerCloudLink, signAdminGrants } from "./owner-ops.ts";
import { ownerAuthority, registerPhoneCommands } from "./phone-commands.ts";
import { pinFromTerminal, readHidden, readPin } from "./prompt.ts";

// ------------------------------------------------------------------ commander, with errors as exceptions

/** A command-line usage error (unknown command or option, missing argument): LK_INVALID_INPUT, exit 2. */
class UsageError extends Error {
  constructor(
    message: string,
    readonly command: Command,
  ) {
    super(message);
  }
}

/** Commander's Command, reporting usage errors by throwing instead of printing the whole help and exiting. */
class CliCommand extends Command {
  override createCommand(name?: string): CliCommand {
    return new CliCommand(name);
  }

  override error(message: string): never {
    // Commander's messages start with "error: " and may add "\n(Did you mean ...?)".
    throw new UsageError(
      message
        .replace(/^error: /, "")
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean)
        .join(" "),
      this,
    );
  }

  /** Called with `{ error: true }` when a command group is run without one of its commands. */
  override help(context?: HelpContext | ((str: string) => string)): never {
    if (context && typeof context === "object" && context.error) {
      const names = this.commands.map((c) => c.name()).filter((n) => n !== "help");
      throw new UsageError(`${fullName(this)} needs a command: ${names.join(", ")}`, this);
    }
    return super.help(context as HelpContext);
  }
}

function fullName(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

const program = new CliCommand();

program
  .name("latchkey")
  .description("Access control for smart locks that keeps working when the internet does not.")
  .version(VERSION, "-V, --version", "print the version")
  .addOption(
    new Option("--data-dir <dir>", "hub data directory").env("LATCHKEY_DATA_DIR").default("./latchkey-data"),
  )
  .addOption(
    new Option("--url <url>", "hub API URL (default: the running hub's, else http://127.0.0.1:8080)").env(
      "LATCHKEY_URL",
    ),
  )
  .addOption(new Option("--token <token>", "API token (default: <data-dir>/cli-token)").env("LATCHKEY_TOKEN"))
  .addOption(
    new Option(
      "--config-dir <dir>",
      "where guest-code issuer files, the owner's phone-key root and the default phone wallet are kept (default: $XDG_CONFIG_HOME/latchkey or ~/.config/latchkey)",
    ).env("LATCHKEY_CONFIG_DIR"),
  )
  .option("--json", "print JSON (errors too, on standard error)")
  .addHelpText(
    "after",
    "\nExit status: 0 ok, 1 hub or system failure, 2 bad input or refused, 3 audit log broken (log verify).",
  );

function opts(): ClientOptions & { json?: boolean; configDir?: string } {
  return program.opts();
}

function jsonMode(): boolean {
  return Boolean(program.opts().json) || process.argv.slice(2).includes("--json");
}

/** Print the human text (already escaped) or, with --json, the data. */
function out(human: string, data: unknown): void {
  console.log(jsonMode() ? safeJson(data, 2) : human);
}

function warn(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}

function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  return call<T>(opts(), method, path, body);
}

const enc = encodeURIComponent;

// ------------------------------------------------------------------ shapes the API returns

interface LockStatusView {
  readonly lockState: string;
  readonly doorState: string;
  readonly operatingMode: string;
  readonly battery: { readonly percent: number; readonly level: string };
  readonly tampered: boolean;
  readonly clock: { readonly now: number; readonly trusted: boolean; readonly distrust: string | null };
  readonly lockouts?: Readonly<Record<string, { readonly disabledUntil: number | null }>>;
  readonly autoRelockTime?: number;
}

interface LockView {
  readonly id: string;
  readonly name: string;
  readonly timeZone: string;
  readonly operatingMode: string;
  readonly settings: Readonly<Record<string, number>>;
  readonly status: LockStatusView;
}

interface CredentialView {
  readonly id: string;
  readonly userId: string;
  readonly type: "pin" | "rfid" | "fingerprint" | "totp";
  readonly locks: "all" | readonly string[];
  readonly label: string | null;
  readonly lastUsedAt: number | null;
  readonly duress?: boolean;
  readonly cardId?: string;
  readonly slot?: number;
  readonly pinLength?: number;
  readonly requirePin?: boolean;
}

interface TokenView {
  readonly id: string;
  readonly userId: string;
  readonly label: string;
  readonly createdAt: number;
}

function hostZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** The zone hub-wide times are shown in: the first lock's (the site's), else this machine's. */
function siteZone(locks: readonly LockView[]): string {
  return locks[0]?.timeZone ?? hostZone();
}

async function findUser(ref: string): Promise<User> {
  if (/^usr_[0-9a-z]+$/.test(ref)) return api<User>("GET", `/api/v1/users/${ref}`);
  const users = await api<User[]>("GET", "/api/v1/users");
  const hits = users.filter((u) => u.name.toLowerCase() === ref.toLowerCase());
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1)
    throw new LatchkeyError("LK_CONFLICT", `several users are called "${ref}": use the user id`);
  throw new LatchkeyError("LK_NOT_FOUND", `no user "${ref}" (see latchkey user list)`);
}

/** `Name (usr_...)`, escaped. */
function who(u: { name: string; id: string }): string {
  return `${safe(u.name)} (${u.id})`;
}

const ROLES = ["owner", "admin", "member", "guest", "service"];
const USER_TYPES = [
  "unrestricted",
  "weekDaySchedule",
  "yearDaySchedule",
  "scheduleRestricted",
  "programming",
  "nonAccess",
  "disposable",
  "expiringDisposable",
];
const MODES = Object.keys(MODE_MEANINGS);

/** Why `u` cannot open any door for lack of a schedule, or null. */
function missingSchedule(u: User): string | null {
  const week = u.weekDaySchedules.length > 0;
  const year = u.yearDaySchedules.length > 0;
  const name = safe(shellWord(u.name));
  const weekHint = `latchkey user schedule ${name} --days weekdays --from 09:00 --to 17:00`;
  const yearHint = `latchkey user schedule ${name} --from YYYY-MM-DDTHH:MM --until YYYY-MM-DDTHH:MM`;
  if (u.userType === "weekDaySchedule" && !week)
    return `${safe(u.name)} is a weekDaySchedule user with no week-day schedule: they cannot open any door until you give one, e.g. ${weekHint}`;
  if (u.userType === "yearDaySchedule" && !year)
    return `${safe(u.name)} is a yearDaySchedule user with no year-day schedule (--from/--until): they cannot open any door until you give one, e.g. ${yearHint}`;
  if (u.userType === "scheduleRestricted" && !week && !year)
    return `${safe(u.name)} is a scheduleRestricted user with no schedule: they cannot open any door until you give one, e.g. ${weekHint}`;
  return null;
}

/** The window given by --days/--from/--to (week-day) or --from/--until (year-day), if any. */
function windowFromOptions(o: { days?: string; from?: string; to?: string; until?: string }): {
  week?: WeekDaySchedule;
  year?: YearDaySchedule;
} {
  const weekly = o.days !== undefined || o.to !== undefined;
  if (weekly && o.until !== undefined)
    throw new LatchkeyError(
      "LK_INVALID_INPUT",
      "give either --days --from HH:MM --to HH:MM (week-day) or --from DATE --until DATE (year-day), not both",
    );
  if (weekly) {
    if (o.days === undefined || o.from === undefined || o.to === undefined)
      throw new LatchkeyError(
        "LK_INVALID_INPUT",
        "a week-day window needs --days, --from HH:MM and --to HH:MM",
      );
    const from = parseHm(o.from, "--from");
    const to = parseHm(o.to, "--to", true);
    return {
      week: {
        daysMask: parseDays(o.days),
        startHour: from.hour,
        startMinute: from.minute,
        endHour: to.hour,
        endMinute: to.minute,
      },
    };
  }
  if (o.until !== undefined || o.from !== undefined) {
    if (o.until === undefined || o.from === undefined)
      throw new LatchkeyError(
        "LK_INVALID_INPUT",
        "a year-day window needs --from and --until (YYYY-MM-DDTHH:MM); a week-day window needs --days, --from and --to",
      );
    return {
      year: { start: parseLocalDateTime(o.from, "--from"), end: parseLocalDateTime(o.until, "--until") },
    };
  }
  return {};
}

const windowOptions = (cmd: Command): Command =>
  cmd
    .option("--days <days>", "week-day window: mon,tue,... or mon-fri, weekdays, weekend, daily")
    .option("--from <time>", "window start: HH:MM with --days/--to, or YYYY-MM-DDTHH:MM with --until")
    .option("--to <HH:MM>", "week-day window end (may cross midnight; 24:00 = end of day)")
    .option("--until <local>", "year-day window end, YYYY-MM-DDTHH:MM (exclusive), lock time zone");

function windowText(w: { week?: WeekDaySchedule; year?: YearDaySchedule }): string {
  if (w.week) return schedulesText({ weekDaySchedules: [w.week] });
  if (w.year) return schedulesText({ yearDaySchedules: [w.year] });
  return "";
}

// ------------------------------------------------------------------ hub process

program
  .command("start")
  .description("start the hub (creates the data directory, keys and a simulated lock on first run)")
  .addOption(
    new Option("--port <port>", "TCP port").env("LATCHKEY_PORT").default(8080).argParser(intArg(0, 65535)),
  )
  .addOption(
    new Option("--host <address>", "bind address (beyond 127.0.0.1 the API is plain HTTP on your network)")
      .env("LATCHKEY_HOST")
      .default("127.0.0.1"),
  )
  .addOption(
    new Option(
      "--link-port <port>",
      "TCP port of the phone link bridge (default: --port + 1; 0 picks a free one; -1 turns it off)",
    )
      .env("LATCHKEY_LINK_PORT")
      .argParser(intArg(-1, 65535)),
  )
  .option("--tz <zone>", "IANA time zone for new locks (default: this machine's)")
  .addOption(
    new Option(
      "--audit-max-events <n>",
      "audit log retention: older events are trimmed behind a signed anchor",
    )
      .env("LATCHKEY_AUDIT_MAX_EVENTS")
      .default(1_000_000)
      .argParser(intArg(1000, 1_000_000_000)),
  )
  .option("--no-supervise", "run the hub in this process (no restart after an audit durability failure)")
  .addOption(
    new Option(
      "--matter [udp-port]",
      "expose every lock as a Matter Door Lock (default UDP port 5540); prints the pairing code and QR payload",
    ).env("LATCHKEY_MATTER"),
  )
  .addOption(
    new Option(
      "--mqtt <mqtt-url>",
      "publish Home Assistant MQTT discovery for every lock on this broker (docs/protocol/home-assistant.md)",
    ).env("LATCHKEY_MQTT"),
  )
  .addOption(
    new Option(
      "--cloud <mqtt-url>",
      "sync with a Latchkey cloud through this MQTT 5 broker (e.g. mqtt://127.0.0.1:1883); the hub keeps working without it",
    ).env("LATCHKEY_CLOUD"),
  )
  .action(
    async (o: {
      cloud?: string;
      mqtt?: string;
      matter?: string | boolean;
      port: number | string;
      linkPort?: number | string;
      host: string;
      tz?: string;
      auditMaxEvents: number | string;
      supervise: boolean;
    }) => {
      const port = typeof o.port === "number" ? o.port : intArg(0, 65535)(o.port);
      const maxAuditEvents =
        typeof o.auditMaxEvents === "number"
          ? o.auditMaxEvents
          : intArg(1000, 1_000_000_000)(o.auditMaxEvents);
      const { supervise, exitWithSupervisor, SUPERVISED_ENV } = await import("./supervise.ts");
      if (o.supervise && process.env[SUPERVISED_ENV] !== "1") {
        // The supervisor restarts the hub if it stops on an audit durability failure (exit code 70).
        const entry = process.argv[1] ?? "";
        process.exit(await supervise({ entry, args: process.argv.slice(2) }));
      }
      if (!["127.0.0.1", "::1", "localhost"].includes(o.host)) {
        warn(
          `binding to ${safe(o.host)}: the API is plain HTTP, so API tokens (and PINs being set) cross the network unencrypted. Use 127.0.0.1 unless a TLS proxy or a trusted network protects it.`,
        );
      }
      const { startHub } = await import("../hub/server.ts");
      const running = await startHub({
        dataDir: opts().dataDir,
        port,
        host: o.host,
        maxAuditEvents,
        ...(o.tz ? { timeZone: o.tz } : {}),
        ...(o.linkPort !== undefined ? { linkPort: linkPortOf(o.linkPort) } : {}),
        ...(o.cloud ? { cloud: cloudUrlOf(o.cloud) } : {}),
        ...(o.mqtt ? { mqtt: cloudUrlOf(o.mqtt) } : {}),
        ...(o.matter ? { matterPort: o.matter === true ? 5540 : intArg(1, 65535)(String(o.matter)) } : {}),
      });
      // Idempotent: on Ctrl-C the hub hears SIGINT from the terminal and again from the supervisor.
      let stopping: Promise<void> | null = null;
      const stop = () => {
        stopping ??= running.close().then(() => process.exit(0));
        return stopping;
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
      exitWithSupervisor(() => void stop());
    },
  );

/**
 * The owner grants the hub's key the admin role (a `role.set` signed with the root), so the hub records
 * its local changes as signed operations from now on (docs/protocol/operations.md).
 */
async function grantHubKey(rootFile: string, pass: string): Promise<void> {
  const id = await call<HubIdentity>(opts(), "GET", "/api/v1/sync/identity");
  const ops = await signAdminGrants(rootFile, pass, id.siteId, [hubKeyOf(id)]);
  await call(opts(), "POST", "/api/v1/ops", { ops });
}

/** An MQTT broker URL (mqtt:, mqtts:, ws:, wss:); anything else is LK_INVALID_INPUT. */
function cloudUrlOf(v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new LatchkeyError("LK_INVALID_INPUT", "--cloud must be a URL such as mqtt://127.0.0.1:1883");
  }
  if (!["mqtt:", "mqtts:", "ws:", "wss:"].includes(u.protocol)) {
    throw new LatchkeyError("LK_INVALID_INPUT", "--cloud must be an mqtt://, mqtts://, ws:// or wss:// URL");
  }
  return v;
}

function linkPortOf(v: number | string): number | null {
  const n = typeof v === "number" ? v : intArg(-1, 65535)(v);
  return n === -1 ? null : n;
}

program
  .command("init")
  .description("create the data directory, device key, PIN secret, the front-door lock and a setup code")
  .option("--tz <zone>", "IANA time zone for the lock")
  .action(async (o: { tz?: string }) => {
    const { openDataDir, lockDataDir } = await import("../hub/data-dir.ts");
    const { Hub } = await import("../hub/hub.ts");
    const { realScheduler } = await import("../device/fake-clock.ts");
    const given = opts().dataDir;
    const dir = openDataDir(given);
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
      const startCmd =
        resolve(given) === resolve("latchkey-data")
          ? "npm start   (or: npx latchkey start)"
          : `npx latchkey --data-dir ${shellWord(given)} start`;
      out(
        setupCode
          ? `Initialised ${safe(dir.path)}\nOwner setup code (shown once): ${setupCode}\nStart the hub with: ${safe(startCmd)}`
          : `${safe(dir.path)} is already initialised. Start the hub with: ${safe(startCmd)}`,
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
  .option(
    "--no-keys",
    "do not create the owner's root key for phone keys now (default: create it when LATCHKEY_KEY_PASSPHRASE is set or a terminal can ask; later: latchkey key setup)",
  )
  .action(async (o: { code?: string; name: string; keys: boolean }) => {
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
    // The owner's root key for phone keys, registered with the claim (docs/protocol/digital-keys.md).
    let keyAuthority: { root: { alg: -7 | -8; key: string }; hubLink: string } | undefined;
    let rootFile: string | null = null;
    let rootPass = "";
    const canAsk = Boolean(process.env.LATCHKEY_KEY_PASSPHRASE) || process.stdin.isTTY;
    if (o.keys && canAsk) {
      const hub = await call<{
        deviceId: string;
        keySigner: { alg: number; key: string };
        keysReady: boolean;
      }>(opts(), "GET", "/api/v1/hub", undefined, false);
      const pass =
        process.env.LATCHKEY_KEY_PASSPHRASE || (await readHidden("owner root key passphrase (new): "));
      const a = await ownerAuthority(configDir(opts().configDir), hub, pass);
      keyAuthority = { root: a.root, hubLink: a.hubLink };
      rootFile = a.file;
      rootPass = pass;
    }
    const r = await call<{ user: User; token: string; recoveryCode: string }>(
      opts(),
      "POST",
      "/api/v1/claim",
      { setupCode: code, ownerName: o.name, ...(keyAuthority ? { keyAuthority } : {}) },
      false,
    );
    writeFileSync(join(dir, "cli-token"), `${r.token}\n`, { mode: 0o600 });
    if (rootFile) await grantHubKey(rootFile, rootPass);
    const keysLine = rootFile
      ? ` Owner root key for phone keys: ${safe(rootFile)} (keep it and its passphrase safe).`
      : " Phone keys: run `latchkey key setup` to create the owner's root key.";
    out(
      `Claimed. Owner ${who(r.user)}. API token saved to ${safe(join(dir, "cli-token"))}.${keysLine}\n` +
        `Recovery code (shown once; write it down and keep it away from the hub): ${safe(r.recoveryCode)}\n` +
        "  If you lose your token: latchkey recover",
      r,
    );
  });

const INPUT_NAMES: Record<string, string> = {
  keypad: "keypad",
  reader: "card reader",
  fingerprint: "fingerprint reader",
};

function statusLine(l: LockView): string {
  const s = l.status;
  const parts = [
    s.lockState === "jammed" ? "JAMMED (the bolt stalled: lock or unlock to retry)" : safe(s.lockState),
    `door ${safe(s.doorState)}`,
    `mode ${safe(s.operatingMode)}`,
    `battery ${s.battery.percent}% (${safe(s.battery.level)})`,
    s.clock.trusted
      ? "clock trusted"
      : `clock UNTRUSTED${s.clock.distrust ? ` (${safe(s.clock.distrust)})` : ""}: set it with latchkey clock set`,
  ];
  const ph = (s as { phoneKeys?: { ready: boolean; revocationHorizon: number | null } }).phoneKeys;
  if (ph?.ready && ph.revocationHorizon !== null)
    parts.push(`revocation list ${Math.round(ph.revocationHorizon / 60_000)} min old`);
  for (const [input, state] of Object.entries(s.lockouts ?? {})) {
    if (state.disabledUntil !== null && state.disabledUntil > s.clock.now)
      parts.push(
        `${INPUT_NAMES[input] ?? safe(input)} locked out until ${clockInZone(state.disabledUntil, l.timeZone)}`,
      );
  }
  if (s.tampered) parts.push("TAMPER alarm");
  return `${safe(l.id)} (${safe(l.name)}): ${parts.join(", ")}`;
}

program
  .command("status")
  .description("bolt, door, mode, battery, lockouts, tamper, jam and clock of every lock")
  .argument("[lockId]", "one lock")
  .action(async (lockId?: string) => {
    const list = lockId
      ? [await api<LockView>("GET", `/api/v1/locks/${enc(lockId)}`)]
      : await api<LockView[]>("GET", "/api/v1/locks");
    let syncLine = "";
    if (!lockId) {
      // Admins also see the cloud sync (members lack the right: the line is left out for them).
      const sy = await api<SyncView>("GET", "/api/v1/sync").catch(() => null);
      if (sy) syncLine = `\n${cloudLine(sy)}`;
    }
    out(list.map(statusLine).join("\n") + syncLine, list);
  });

interface SyncView {
  ops: { active: boolean; total: number; unacked: number };
  cloud: {
    url: string;
    connected: boolean;
    lastAckAt: number | null;
    pendingEvents: number;
    pendingOps: number;
    problem: { seq: number; what: string } | null;
  } | null;
}

function cloudLine(s: SyncView): string {
  const ops = s.ops.active
    ? `${s.ops.total} signed operations`
    : "changes not yet signed as operations (run latchkey key setup, or latchkey cloud link)";
  if (!s.cloud) return `cloud: not configured (start with --cloud to sync); ${ops}`;
  const c = s.cloud;
  const last = c.lastAckAt ? `, last acknowledgement ${new Date(c.lastAckAt).toISOString()}` : "";
  const problem = c.problem
    ? `; CHAIN PROBLEM flagged by the cloud at seq ${c.problem.seq}: ${safe(c.problem.what)}`
    : "";
  return `cloud: ${c.connected ? "connected to" : "OFFLINE (working locally), broker"} ${safe(c.url)}${last}; ${c.pendingEvents} events and ${c.pendingOps} operations waiting to sync; ${ops}${problem}`;
}

program
  .command("capabilities")
  .description(
    "what this hub and its locks actually support: credential kinds and limits, schedules, events, offline guarantees",
  )
  .action(async () => {
    const c = await api<Record<string, unknown>>("GET", "/api/v1/capabilities");
    out(JSON.stringify(c, null, 2), c);
  });

interface CheckReport {
  id: string;
  startedAt: string;
  passed: boolean;
  steps: { id: string; title: string; ok: boolean; detail: string }[];
  facts: { cloud: string; pendingOperations: number; backupEntry: { methods: string[] } };
}

program
  .command("check")
  .description(
    "readiness check (the router-unplugged test, on the live hub): cut the uplink, decide a credential of each enrolled kind locally, add and remove a person, verify the audit log, restore the uplink; prints a dated report",
  )
  .option("--lock <lockId>", "the lock to exercise (default: the first)")
  .option("--html <file>", "also save the printable HTML report")
  .addHelpText(
    "after",
    "\nThe bolt really moves during the check and is locked again after. Exit status 2 if a step fails.",
  )
  .action(async (o: { lock?: string; html?: string }) => {
    const r = await api<CheckReport>("POST", "/api/v1/check", o.lock ? { lockId: o.lock } : {});
    if (o.html) {
      const res = await fetch(`${resolveUrl(opts())}/api/v1/checks/${enc(r.id)}/report.html`, {
        headers: { authorization: `Bearer ${resolveToken(opts()) ?? ""}` },
      });
      if (!res.ok)
        throw new LatchkeyError("LK_INTERNAL", `could not fetch the HTML report (HTTP ${res.status})`);
      writeFileSync(o.html, await res.text(), { mode: 0o600 });
    }
    const lines = [
      `Readiness check ${safe(r.id)} at ${safe(r.startedAt)}: ${r.passed ? "PASSED" : "NOT PASSED"}`,
      ...r.steps.map((s) => `  ${s.ok ? "pass" : "FAIL"}  ${safe(s.title)}: ${safe(s.detail)}`),
      `  cloud: ${safe(r.facts.cloud)}; operations not yet acknowledged: ${r.facts.pendingOperations}`,
      ...(o.html ? [`Report saved to ${safe(o.html)}`] : []),
    ];
    out(lines.join("\n"), r);
    if (!r.passed) process.exitCode = 2;
  });

program
  .command("recover")
  .description(
    "exchange the owner's recovery code for a new API token (saved to <data-dir>/cli-token); prints the new recovery code",
  )
  .option("--code <code>", "the recovery code (default: asked for, hidden)")
  .action(async (o: { code?: string }) => {
    const code = o.code ?? (await readHidden("recovery code: "));
    const r = await call<{ user: User; token: string; recoveryCode: string }>(
      opts(),
      "POST",
      "/api/v1/recover",
      { recoveryCode: code, label: "cli recovery" },
      false,
    );
    const dir = resolve(opts().dataDir);
    writeFileSync(join(dir, "cli-token"), `${r.token}\n`, { mode: 0o600 });
    out(
      `Recovered: owner ${who(r.user)}; API token saved to ${safe(join(dir, "cli-token"))}.\n` +
        `Your old recovery code is spent. New recovery code (write it down): ${safe(r.recoveryCode)}`,
      r,
    );
  });

// ------------------------------------------------------------------ users

const user = program.command("user").description("manage users (USER = user id or name)");

windowOptions(
  user
    .command("add")
    .description("add a user; a schedule window may be given at once")
    .argument("<name>", "the user's name (unique on this hub)")
    .addOption(new Option("--role <role>", "what they may manage").choices(ROLES).default("member"))
    .addOption(new Option("--type <userType>", "Matter UserType: what opens when").choices(USER_TYPES)),
).action(
  async (
    name: string,
    o: { role: string; type?: string; days?: string; from?: string; to?: string; until?: string },
  ) => {
    const w = windowFromOptions(o);
    const body: Record<string, unknown> = { name, role: o.role };
    if (o.type) body.userType = o.type;
    if (w.week) {
      body.weekDaySchedules = [w.week];
      body.userType ??= "weekDaySchedule";
    }
    if (w.year) {
      body.yearDaySchedules = [w.year];
      body.userType ??= "yearDaySchedule";
    }
    const u = await api<User>("POST", "/api/v1/users", body);
    const sched = u.weekDaySchedules.length + u.yearDaySchedules.length ? `, ${schedulesText(u)}` : "";
    out(`Added ${who(u)}, role ${u.role}, type ${u.userType}${safe(sched)}`, u);
    const missing = missingSchedule(u);
    if (missing) warn(missing);
  },
);

user
  .command("list")
  .description("list users with role, type, status and schedules")
  .action(async () => {
    const users = await api<User[]>("GET", "/api/v1/users");
    out(
      users.length
        ? table(
            ["ID", "NAME", "ROLE", "TYPE", "STATUS", "SCHEDULES"],
            users.map((u) => [
              u.id,
              u.name,
              u.role,
              u.userType,
              u.userStatus === "occupiedEnabled" ? "enabled" : "disabled",
              schedulesText(u),
            ]),
          )
        : "(no users)",
      users,
    );
  });

user
  .command("remove")
  .description("remove a user with all their credentials and tokens")
  .argument("<user>", "user id or name")
  .action(async (ref: string) => {
    const u = await findUser(ref);
    await api("DELETE", `/api/v1/users/${u.id}`);
    out(`Removed ${who(u)} and all their credentials.`, { removed: u.id });
  });

user
  .command("offboard")
  .description(
    "revoke everything this person has in one step: credentials, API tokens, phone keys, guest-code issuers (they stay, disabled, unless --remove)",
  )
  .argument("<user>", "user id or name")
  .option("--remove", "remove the user too")
  .action(async (ref: string, o: { remove?: boolean }) => {
    const u = await findUser(ref);
    const r = await api<{
      credentials: number;
      tokens: number;
      phoneKeys: number;
      guestCodeIssuers: number;
      removed: boolean;
    }>("POST", `/api/v1/users/${u.id}/offboard`, { remove: o.remove === true });
    out(
      `Offboarded ${who(u)}: ${r.credentials} credentials, ${r.tokens} API tokens, ${r.phoneKeys} phone keys and ${r.guestCodeIssuers} guest-code issuers revoked; ${r.removed ? "user removed" : "user disabled"}.`,
      r,
    );
  });

user
  .command("disable")
  .description("disable a user: none of their credentials open anything until enabled")
  .argument("<user>", "user id or name")
  .action(async (ref: string) => {
    const u = await findUser(ref);
    const next = await api<User>("PATCH", `/api/v1/users/${u.id}`, { userStatus: "occupiedDisabled" });
    out(`Disabled ${who(next)}: their credentials open nothing until \`latchkey user enable\`.`, next);
  });

user
  .command("enable")
  .description("enable a disabled user again")
  .argument("<user>", "user id or name")
  .action(async (ref: string) => {
    const u = await findUser(ref);
    const next = await api<User>("PATCH", `/api/v1/users/${u.id}`, { userStatus: "occupiedEnabled" });
    out(`Enabled ${who(next)}.`, next);
    const missing = missingSchedule(next);
    if (missing) warn(missing);
  });

user
  .command("set")
  .description("change a user's name, role or type")
  .argument("<user>", "user id or name")
  .option("--name <name>", "new name")
  .addOption(new Option("--role <role>", "new role").choices(ROLES))
  .addOption(new Option("--type <userType>", "new Matter UserType").choices(USER_TYPES))
  .action(async (ref: string, o: { name?: string; role?: string; type?: string }) => {
    const patch: Record<string, unknown> = {};
    if (o.name !== undefined) patch.name = o.name;
    if (o.role !== undefined) patch.role = o.role;
    if (o.type !== undefined) patch.userType = o.type;
    if (Object.keys(patch).length === 0)
      throw new LatchkeyError("LK_INVALID_INPUT", "nothing to change: give --name, --role or --type");
    const u = await findUser(ref);
    const next = await api<User>("PATCH", `/api/v1/users/${u.id}`, patch);
    out(`Updated ${who(next)}: role ${next.role}, type ${next.userType}.`, next);
    const missing = missingSchedule(next);
    if (missing) warn(missing);
  });

const SCHEDULE_TYPES = new Set(["unrestricted", "weekDaySchedule", "yearDaySchedule"]);

windowOptions(
  user
    .command("schedule")
    .summary("add a week-day or year-day window, or --clear them all")
    .description(
      "add a week-day window (--days --from HH:MM --to HH:MM) or a year-day window (--from --until), or --clear them all; times are the lock's",
    )
    .argument("<user>", "user id or name")
    .option("--clear", "remove all of the user's schedules"),
).action(
  async (ref: string, o: { clear?: boolean; days?: string; from?: string; to?: string; until?: string }) => {
    const w = windowFromOptions(o);
    if (o.clear && (w.week || w.year))
      throw new LatchkeyError("LK_INVALID_INPUT", "give either --clear or a window, not both");
    if (!o.clear && !w.week && !w.year)
      throw new LatchkeyError(
        "LK_INVALID_INPUT",
        "give a window (--days mon,tue --from 09:00 --to 17:00, or --from 2026-12-24T18:00 --until 2026-12-27T11:00) or --clear",
      );
    const u = await findUser(ref);
    let patch: Record<string, unknown>;
    if (o.clear) {
      patch = { weekDaySchedules: [], yearDaySchedules: [] };
    } else {
      const week = [...u.weekDaySchedules, ...(w.week ? [w.week] : [])];
      const year = [...u.yearDaySchedules, ...(w.year ? [w.year] : [])];
      patch = { weekDaySchedules: week, yearDaySchedules: year };
      // A schedule binds only schedule user types: make the user one, so the window is what they get.
      if (SCHEDULE_TYPES.has(u.userType)) {
        const type =
          week.length && year.length
            ? "scheduleRestricted"
            : week.length
              ? "weekDaySchedule"
              : "yearDaySchedule";
        if (type !== u.userType) patch.userType = type;
      }
    }
    const next = await api<User>("PATCH", `/api/v1/users/${u.id}`, patch);
    const typeNote = patch.userType ? ` (now a ${next.userType} user)` : "";
    out(
      o.clear
        ? `Cleared the schedules of ${who(next)}.`
        : `Added ${safe(windowText(w))} (lock time) to ${who(next)}${typeNote}; schedules: ${safe(schedulesText(next))}.`,
      next,
    );
    if (!o.clear && !SCHEDULE_TYPES.has(u.userType) && u.userType !== "scheduleRestricted")
      warn(
        `${safe(next.name)} is a ${next.userType} user: schedules do not limit this type (see latchkey user set --type)`,
      );
    const missing = missingSchedule(next);
    if (missing) warn(missing);
  },
);

// ------------------------------------------------------------------ credentials

const credential = program
  .command("credential")
  .description("list, add (authenticator apps) and remove a user's credentials");
credential
  .command("list")
  .description("a user's PINs, cards, fingerprints and authenticator apps (never PIN digits or app secrets)")
  .argument("<user>", "user id or name")
  .action(async (ref: string) => {
    const u = await findUser(ref);
    const [creds, locks] = await Promise.all([
      api<CredentialView[]>("GET", `/api/v1/users/${u.id}/credentials`),
      api<LockView[]>("GET", "/api/v1/locks"),
    ]);
    const zone = siteZone(locks);
    out(
      creds.length
        ? table(
            ["ID", "TYPE", "LABEL", "LOCKS", "CARD/SLOT", "DURESS", "LAST USED"],
            creds.map((c) => [
              c.id,
              c.type === "pin"
                ? `pin (${c.pinLength ?? "?"} digits)`
                : c.type === "totp"
                  ? `totp (${c.requirePin ? "PIN + code" : "code alone"})`
                  : c.type,
              c.label ?? "-",
              c.locks === "all" ? "all" : c.locks.join(","),
              c.type === "rfid" ? c.cardId : c.type === "fingerprint" ? `slot ${c.slot}` : "-",
              c.type === "pin" ? (c.duress ? "yes" : "no") : "-",
              c.lastUsedAt !== null ? isoInZone(c.lastUsedAt, zone) : "never",
            ]),
          )
        : `${who(u)} has no credentials.`,
      creds,
    );
  });
credential
  .command("add")
  .description(
    "enrol an authenticator app (--totp): prints the otpauth:// URI and a QR code to scan, once. For PINs, cards and fingerprints see pin set, card add, fingerprint add",
  )
  .argument("<user>", "user id or name")
  .option("--totp", "an authenticator app (RFC 6238 TOTP: SHA-1, 6 digits, 30 s)")
  .option("--alone", "the code opens on its own (default: the user's PIN, then the code, in one entry)")
  .option("--label <text>", "a label, e.g. the phone's name")
  .option("--locks <ids>", '"all" or comma-separated lock ids')
  .action(async (ref: string, o: { totp?: boolean; alone?: boolean; label?: string; locks?: string }) => {
    if (!o.totp) {
      throw new LatchkeyError(
        "LK_INVALID_INPUT",
        "credential add enrols authenticator apps: give --totp (PINs: pin set; cards: card add; fingerprints: fingerprint add)",
      );
    }
    const locks = parseLocks(o.locks);
    const u = await findUser(ref);
    const r = await api<{ credential: CredentialView; otpauthUri: string; qrSvg: string }>(
      "POST",
      `/api/v1/users/${u.id}/totp`,
      {
        requirePin: !o.alone,
        ...(o.label !== undefined ? { label: o.label } : {}),
        ...(locks ? { locks } : {}),
      },
    );
    if (jsonMode()) {
      out("", { credential: r.credential, otpauthUri: r.otpauthUri });
      return;
    }
    // The QR code is drawn here from the URI (ANSI colours on a terminal, block characters otherwise).
    const qr = await QRCode.toString(r.otpauthUri, {
      type: process.stdout.isTTY ? "terminal" : "utf8",
      small: true,
      errorCorrectionLevel: "M",
    });
    const how = r.credential.requirePin
      ? "at the keypad, type the PIN and then the app's 6-digit code as one entry; the PIN alone no longer opens"
      : "at the keypad, the app's 6-digit code opens on its own";
    out(
      [
        `Authenticator app enrolled for ${who(u)} (credential ${r.credential.id}): ${how}.`,
        "Scan this QR code with the app now. It is shown only once and the hub cannot show it again:",
        "",
        qr.trimEnd(),
        "",
        // The URI is made by the hub from a name it validated; escaped all the same.
        safe(r.otpauthUri),
      ].join("\n"),
      r,
    );
  });
credential
  .command("remove")
  .description("remove one credential (see credential list for ids)")
  .argument("<credentialId>", "credential id, e.g. cred_...")
  .action(async (id: string) => {
    const r = await api<{ removed: string }>("DELETE", `/api/v1/credentials/${enc(id)}`);
    out(`Removed credential ${safe(r.removed)}: it opens nothing any more.`, r);
  });

program
  .command("pin")
  .description("manage PINs")
  .command("set")
  .description("set a user's PIN: prompted (hidden) on a terminal, else read from standard input")
  .argument("<user>", "user id or name")
  .option("--duress", "a duress PIN: opens and raises a silent alarm")
  .addOption(
    new Option("--add", "keep the user's existing PIN as well (default: replace it)").conflicts("replace"),
  )
  .option("--replace", "replace the user's existing PIN of the same kind (the default)")
  .option("--locks <ids>", '"all" or comma-separated lock ids')
  .action(async (ref: string, o: { duress?: boolean; add?: boolean; replace?: boolean; locks?: string }) => {
    const locks = parseLocks(o.locks);
    // Never from the command line: a PIN there would land in shell history and `ps`.
    let pin: string | undefined;
    if (!pinFromTerminal()) pin = await readPin(ref);
    const u = await findUser(ref);
    pin ??= await readPin(safe(u.name));
    const c = await api<CredentialView>("POST", `/api/v1/users/${u.id}/pin`, {
      pin,
      duress: o.duress ?? false,
      replace: !o.add,
      ...(locks ? { locks } : {}),
    });
    const what = (c.duress ?? o.duress) ? "Duress PIN" : "PIN";
    const effect = c.duress
      ? "it opens the door and raises a silent duress alarm"
      : o.add
        ? "added; their other PINs still work"
        : "any earlier PIN of theirs no longer works";
    out(`${what} set for ${safe(u.name)} (credential ${c.id}): ${effect}. The PIN itself is not stored.`, c);
  });

program
  .command("card")
  .description("manage RFID cards")
  .command("add")
  .description("enrol a card by its UID or a Wiegand card id")
  .argument("<user>", "user id or name")
  .option("--uid <hex>", "ISO 14443 UID (4, 7 or 10 bytes)")
  .option("--card-id <id>", "normalised Wiegand card id, e.g. h10301:123:45678")
  .option("--locks <ids>", '"all" or comma-separated lock ids')
  .action(async (ref: string, o: { uid?: string; cardId?: string; locks?: string }) => {
    if ((o.uid === undefined) === (o.cardId === undefined))
      throw new LatchkeyError("LK_INVALID_INPUT", "give exactly one of --uid or --card-id");
    const locks = parseLocks(o.locks);
    const u = await findUser(ref);
    const c = await api<CredentialView>("POST", `/api/v1/users/${u.id}/cards`, {
      ...(o.uid !== undefined ? { uid: o.uid } : {}),
      ...(o.cardId !== undefined ? { cardId: o.cardId } : {}),
      ...(locks ? { locks } : {}),
    });
    out(`Card ${safe(c.cardId)} enrolled for ${who(u)} (credential ${c.id}).`, c);
  });

program
  .command("fingerprint")
  .description("manage fingerprints")
  .command("add")
  .description("enrol the fingerprint template held in a sensor slot")
  .argument("<user>", "user id or name")
  .addOption(
    new Option("--slot <n>", "sensor slot holding the template (1–1000)")
      .makeOptionMandatory()
      .argParser(intArg(1, 1000)),
  )
  .option("--locks <ids>", '"all" or comma-separated lock ids')
  .action(async (ref: string, o: { slot: number; locks?: string }) => {
    const locks = parseLocks(o.locks);
    const u = await findUser(ref);
    const c = await api<CredentialView>("POST", `/api/v1/users/${u.id}/fingerprints`, {
      slot: o.slot,
      ...(locks ? { locks } : {}),
    });
    out(`Fingerprint slot ${o.slot} enrolled for ${who(u)} (credential ${c.id}).`, c);
  });

// ------------------------------------------------------------------ door

const lockOpt = () => new Option("--lock <id>", "which lock").default("front-door");

const FEEDBACK: Record<string, string> = {
  granted: "granted",
  denied: "denied",
  locked_out: "locked out",
  error: "error (the bolt jammed)",
};

program
  .command("keypad")
  .description("simulator: type digits then # on a lock's keypad")
  .argument("<digits>", "the keys pressed; spaces are ignored and a final # ends the entry")
  .addOption(lockOpt())
  .action(async (digits: string, o: { lock: string }) => {
    const r = await api<{ feedback: string; decision?: { outcome: string; reason?: string } | null }>(
      "POST",
      `/api/v1/locks/${enc(o.lock)}/simulator/keypad`,
      { digits: digits.replace(/\s+/g, "") },
    );
    // The keypad itself shows no reason (it would help a guesser); the owner driving the simulator sees it.
    const why = r.decision?.outcome === "deny" && r.decision.reason ? ` (${safe(r.decision.reason)})` : "";
    out(`keypad: ${FEEDBACK[r.feedback] ?? safe(r.feedback)}${why}`, r);
  });

program
  .command("tap")
  .description("simulator: present a card (ISO 14443 UID hex) to a lock's reader")
  .argument("<uid>")
  .addOption(lockOpt())
  .action(async (uid: string, o: { lock: string }) => {
    const r = await api<{ feedback: string }>("POST", `/api/v1/locks/${enc(o.lock)}/simulator/card`, { uid });
    out(`reader: ${FEEDBACK[r.feedback] ?? safe(r.feedback)}`, r);
  });

program
  .command("unlock")
  .description("unlock a lock (decided and audited like any attempt)")
  .addOption(lockOpt())
  .action(async (o: { lock: string }) => {
    const r = await api<{ result: string; status?: LockStatusView }>(
      "POST",
      `/api/v1/locks/${enc(o.lock)}/unlock`,
    );
    if (r.result !== "granted")
      throw new LatchkeyError(
        "LK_LOCK_BUSY",
        `${o.lock}: the bolt did not unlock (${r.result}): check the door`,
      );
    out(`${safe(o.lock)}: unlocked`, r);
  });

const LOCK_SETTINGS_FLAGS: Record<string, string> = {
  autoRelock: "autoRelockTime",
  wrongCodeLimit: "wrongCodeEntryLimit",
  disableTime: "userCodeTemporaryDisableTime",
  pinMinLength: "pinMinLength",
};

function settingsText(l: LockView): string {
  const s = l.settings;
  return [
    `auto-relock ${s.autoRelockTime ? `${s.autoRelockTime} s` : "off"}`,
    `wrong-code limit ${s.wrongCodeEntryLimit}`,
    `keypad disabled ${s.userCodeTemporaryDisableTime} s after that`,
    `PIN min length ${s.pinMinLength}`,
    `time zone ${safe(l.timeZone)}`,
  ].join(", ");
}

program
  .command("lock")
  .summary("lock a lock; lock add | list | set")
  .description(
    "lock a lock; `lock add --id ID` adds a simulated lock, `lock list` lists them, `lock set` changes settings",
  )
  .addArgument(
    new Argument("[action]", "add | list | set (none: lock the door)").choices(["add", "list", "set"]),
  )
  .addOption(lockOpt())
  .option("--id <id>", "add: the new lock's id")
  .option("--name <name>", "add, set: display name")
  .option("--tz <zone>", "add, set: IANA time zone")
  .addOption(
    new Option("--auto-relock <seconds>", "set: relock after this long (0 off)").argParser(intArg(0)),
  )
  .addOption(
    new Option("--wrong-code-limit <n>", "set: wrong codes before the keypad is disabled").argParser(
      intArg(1),
    ),
  )
  .addOption(
    new Option("--disable-time <seconds>", "set: how long the keypad is then disabled").argParser(intArg(1)),
  )
  .addOption(
    new Option("--pin-min-length <n>", "set: shortest PIN accepted for new PINs").argParser(intArg(1)),
  )
  .action(async (action: string | undefined, o: Record<string, unknown> & { lock: string }, cmd: Command) => {
    const given = (k: string) => cmd.getOptionValueSource(k) === "cli";
    const allowed: Record<string, string[]> = {
      none: ["lock"],
      add: ["id", "name", "tz"],
      list: [],
      set: ["lock", "name", "tz", ...Object.keys(LOCK_SETTINGS_FLAGS)],
    };
    const stray = cmd.options.find(
      (opt) => given(opt.attributeName()) && !allowed[action ?? "none"]!.includes(opt.attributeName()),
    );
    if (stray)
      throw new LatchkeyError(
        "LK_INVALID_INPUT",
        `${stray.long} does not apply to \`latchkey lock${action ? ` ${action}` : ""}\``,
      );
    if (action === undefined) {
      const r = await api<{ result: string }>("POST", `/api/v1/locks/${enc(o.lock)}/lock`);
      if (r.result !== "locked")
        throw new LatchkeyError(
          "LK_LOCK_BUSY",
          `${o.lock}: the bolt did not lock (${r.result}): check the door`,
        );
      out(`${safe(o.lock)}: locked`, r);
    } else if (action === "add") {
      if (!o.id) throw new LatchkeyError("LK_INVALID_INPUT", "lock add needs --id");
      const l = await api<{ id: string; name: string }>("POST", "/api/v1/locks", {
        id: o.id,
        ...(o.name ? { name: o.name } : {}),
        ...(o.tz ? { timeZone: o.tz } : {}),
      });
      out(`Added lock ${safe(l.id)} (${safe(l.name)}).`, l);
    } else if (action === "list") {
      const list = await api<LockView[]>("GET", "/api/v1/locks");
      out(
        table(
          ["ID", "NAME", "TIME ZONE", "MODE", "STATE", "AUTO-RELOCK"],
          list.map((l) => [
            l.id,
            l.name,
            l.timeZone,
            l.operatingMode,
            l.status?.lockState ?? "-",
            l.settings?.autoRelockTime ? `${l.settings.autoRelockTime} s` : "off",
          ]),
        ),
        list,
      );
    } else {
      const patch: Record<string, unknown> = {};
      if (o.name !== undefined) patch.name = o.name;
      if (o.tz !== undefined) patch.timeZone = o.tz;
      for (const [flag, field] of Object.entries(LOCK_SETTINGS_FLAGS))
        if (o[flag] !== undefined) patch[field] = o[flag];
      if (Object.keys(patch).length === 0)
        throw new LatchkeyError(
          "LK_INVALID_INPUT",
          "nothing to change: give --auto-relock, --wrong-code-limit, --disable-time, --pin-min-length, --name or --tz",
        );
      const l = await api<LockView>("PATCH", `/api/v1/locks/${enc(o.lock)}`, patch);
      out(`${safe(l.id)} (${safe(l.name)}): ${settingsText(l)}.`, l);
      if (o.tz !== undefined) {
        // Guest codes are wall-clock times of the lock's zone (docs/protocol/guest-codes.md § 2).
        warn(
          "guest codes already issued keep their wall-clock times, now in the new zone; every issuer " +
            "must run `latchkey code enrol` again so new codes and their messages use it",
        );
      }
    }
  });

const mode = program
  .command("mode")
  .description("show each lock's OperatingMode; `mode set MODE` changes it")
  .action(async () => {
    const list = await api<LockView[]>("GET", "/api/v1/locks");
    out(
      table(
        ["LOCK", "MODE", "MEANING"],
        list.map((l) => [l.id, l.operatingMode, modeMeaning(l.operatingMode)]),
      ),
      list.map((l) => ({ lockId: l.id, mode: l.operatingMode, meaning: modeMeaning(l.operatingMode) })),
    );
  });
mode
  .command("set")
  .description(`set a lock's OperatingMode: ${MODES.join(", ")}`)
  .addArgument(new Argument("<mode>", "the new mode").choices(MODES))
  .addOption(lockOpt())
  .action(async (m: string, o: { lock: string }) => {
    const l = await api<{ id: string; operatingMode: string }>("PUT", `/api/v1/locks/${enc(o.lock)}/mode`, {
      mode: m,
    });
    out(`${safe(l.id)}: mode ${safe(l.operatingMode)}: ${modeMeaning(l.operatingMode)}.`, l);
  });

program
  .command("clock")
  .description("the lock's trusted clock")
  .command("set")
  .description("set a lock's clock (owner); default: this machine's time now")
  .argument("[isoTime]", "ISO time with its offset, e.g. 2026-05-01T09:30:00+02:00")
  .addOption(lockOpt())
  .option("--force", "allow setting it behind the lock's time floor (audited)")
  .action(async (time: string | undefined, o: { lock: string; force?: boolean }) => {
    const iso = time === undefined ? new Date().toISOString() : parseInstant(time, "the time");
    const [s, l] = await Promise.all([
      api<LockStatusView>("PUT", `/api/v1/locks/${enc(o.lock)}/clock`, {
        time: iso,
        ...(o.force ? { force: true } : {}),
      }),
      api<LockView>("GET", `/api/v1/locks/${enc(o.lock)}`).catch(() => null),
    ]);
    const zone = l?.timeZone ?? hostZone();
    out(
      `${safe(o.lock)}: clock set to ${isoInZone(s.clock.now, zone)}, ${s.clock.trusted ? "trusted" : "still UNTRUSTED"}.`,
      s,
    );
  });

// ------------------------------------------------------------------ guest codes (guest-code-commands.ts)

registerCodeCommands(program, {
  options: opts,
  out,
  warn,
  userId: async (ref) => (await findUser(ref)).id,
});

// ------------------------------------------------------------------ phone keys (phone-commands.ts)

const phoneContext = {
  options: opts,
  out,
  warn,
  userId: async (ref: string) => (await findUser(ref)).id,
};
registerPhoneCommands(program, phoneContext);
registerCloudLink(registerCloudCommands(program), phoneContext);

// ------------------------------------------------------------------ API tokens

async function userOrMe(ref: string | undefined): Promise<User> {
  return ref === undefined ? api<User>("GET", "/api/v1/me") : findUser(ref);
}

const token = program.command("token").description("API tokens (for scripts and other tools)");
token
  .command("create")
  .description("issue an API token for yourself or (owner) another user; printed once")
  .argument("[user]", "user id or name (default: you)")
  .requiredOption("--label <label>", "what the token is for, e.g. home-assistant")
  .action(async (ref: string | undefined, o: { label: string }) => {
    const u = await userOrMe(ref);
    const r = await api<{ token: string; id: string }>("POST", `/api/v1/users/${u.id}/tokens`, {
      label: o.label,
    });
    const id = r.id;
    out(
      `${r.token}\nToken ${id} for ${who(u)}, label ${JSON.stringify(safe(o.label))}. It is shown only this once: store it now. It acts as ${safe(u.name)} (role ${u.role}); revoke it with latchkey token revoke ${id}.`,
      { ...r, userId: u.id, label: o.label },
    );
  });
token
  .command("list")
  .description("a user's API tokens (ids and labels; the secrets are not stored)")
  .argument("[user]", "user id or name (default: you)")
  .action(async (ref?: string) => {
    const u = await userOrMe(ref);
    const [list, locks] = await Promise.all([
      api<TokenView[]>("GET", `/api/v1/users/${u.id}/tokens`),
      api<LockView[]>("GET", "/api/v1/locks"),
    ]);
    const zone = siteZone(locks);
    out(
      list.length
        ? table(
            ["ID", "LABEL", "CREATED"],
            list.map((t) => [t.id, t.label, isoInZone(t.createdAt, zone)]),
          )
        : `${who(u)} has no API tokens.`,
      list,
    );
  });
token
  .command("revoke")
  .description("revoke an API token (your own, or as owner anyone's)")
  .argument("<tokenId>", "token id, e.g. tok_... (see token list)")
  .action(async (id: string) => {
    const r = await api<{ revoked: string }>("DELETE", `/api/v1/tokens/${enc(id)}`);
    out(`Revoked token ${safe(r.revoked)}.`, r);
  });

// ------------------------------------------------------------------ audit log

const log = program.command("log").description("read and verify the audit log");
log
  .command("tail")
  .description("the latest audit events, with user names and times in each lock's time zone")
  .addOption(new Option("-n, --lines <n>", "how many events (1–1000)").default(20).argParser(intArg(1, 1000)))
  .option("--lock <id>", "only this lock")
  .action(async (o: { lines: number; lock?: string }) => {
    const q = new URLSearchParams({ limit: String(o.lines), order: "desc" });
    if (o.lock) q.set("lockId", o.lock);
    const names = async (): Promise<Map<string, string>> => {
      try {
        return new Map((await api<User[]>("GET", "/api/v1/users")).map((u) => [u.id, u.name]));
      } catch (e) {
        if (!isLatchkeyError(e, "LK_FORBIDDEN")) throw e;
        const me = await api<User>("GET", "/api/v1/me");
        return new Map([[me.id, me.name]]);
      }
    };
    const [r, locks, users] = await Promise.all([
      api<{ events: AuditEvent[] }>("GET", `/api/v1/audit?${q}`),
      api<LockView[]>("GET", "/api/v1/locks"),
      names(),
    ]);
    const zones = new Map(locks.map((l) => [l.id, l.timeZone]));
    const site = siteZone(locks);
    const events = r.events.reverse();
    out(
      events
        .map((e) =>
          formatEvent(e, {
            zoneOf: (id) => (id !== null ? zones.get(id) : undefined) ?? site,
            nameOf: (id) => users.get(id),
          }),
        )
        .join("\n") || "(no events)",
      events,
    );
  });
log
  .command("verify")
  .description("verify the hash chain and the device-key signatures; exit status 3 when broken")
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
      v = await api<ChainVerification & { publicKey: string }>("GET", "/api/v1/audit/verify");
    }
    if (!v.ok) {
      if (jsonMode()) out("", v);
      throw new LatchkeyError(
        "LK_AUDIT_CHAIN_BROKEN",
        `audit log BROKEN at seq ${v.problem?.seq}: ${v.problem?.what ?? "does not verify"}`,
      );
    }
    out(
      `audit log OK: events ${v.firstSeq}–${v.lastSeq} (${v.eventsChecked} checked), ${v.checkpointsChecked} signed checkpoint${v.checkpointsChecked === 1 ? "" : "s"}, ${v.unsignedTail} events after the last checkpoint\ndevice public key ${safe(v.publicKey)}`,
      v,
    );
  });

/**
 * A passphrase for an encrypted export: the first line of `file` (its line break dropped); else, on a
 * terminal, asked with hidden input (twice when `confirm`); else the first line of standard input.
 * Never from the command line, where it would land in shell history and `ps`.
 */
async function readPassphrase(file: string | undefined, confirm: boolean): Promise<string> {
  let p: string;
  if (file !== undefined) {
    try {
      p = readFileSync(file, "utf8").split(/\r?\n/)[0] ?? "";
    } catch {
      throw new LatchkeyError("LK_INVALID_INPUT", `cannot read the passphrase file ${safe(file)}`);
    }
  } else if (process.stdin.isTTY) {
    p = await readHidden("Passphrase: ");
    if (confirm && (await readHidden("Repeat the passphrase: ")) !== p)
      throw new LatchkeyError("LK_INVALID_INPUT", "the two passphrases differ (nothing was changed)");
  } else {
    p = readFileSync(0, "utf8").split(/\r?\n/)[0] ?? "";
  }
  if (p === "") throw new LatchkeyError("LK_PASSPHRASE_WRONG", "no passphrase given (nothing was changed)");
  return p;
}

/** Write `text` to `file` with mode 0600 (an existing file's mode is tightened too). */
function writePrivate(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
}

program
  .command("export")
  .description(
    "export users, credentials and rules as JSON; with --secrets (owner) also PINs, authenticator and guest-code secrets, encrypted to a passphrase",
  )
  .option("-o, --out <file>", "write to a file (mode 0600) instead of standard output")
  .option("--secrets", "format version 2: include the secrets, sealed to a passphrase (asked twice)")
  .option("--passphrase-file <file>", "with --secrets: read the passphrase from the first line of this file")
  .action(async (o: { out?: string; secrets?: boolean; passphraseFile?: string }) => {
    if (o.passphraseFile !== undefined && !o.secrets)
      throw new LatchkeyError("LK_INVALID_INPUT", "--passphrase-file goes with --secrets");
    const data = o.secrets
      ? await api("POST", "/api/v1/export", { passphrase: await readPassphrase(o.passphraseFile, true) })
      : await api("GET", "/api/v1/export");
    const text = `${safeJson(data, 2)}\n`;
    if (o.out) {
      writePrivate(o.out, text);
      console.log(
        `Exported to ${safe(o.out)}${o.secrets ? " (version 2: secrets encrypted to the passphrase)" : ""}`,
      );
    } else {
      process.stdout.write(text);
    }
  });

const REENROL_WHY: Readonly<Record<string, string>> = {
  notExported: "secrets are not in a version-1 export",
  noPassphrase: "import with --secrets or --passphrase-file to restore it",
  pinKeyDiffers: "this hub has PINs of its own under another PIN key",
};

program
  .command("import")
  .description("import an export document (or with --csv a CSV file of users): checked in full first")
  .argument("<file>", "the export JSON, or CSV with a header: name,role,card,schedule")
  .option("--csv", "the file is CSV (columns name, role, card, schedule)")
  .option("--dry-run", "show what would change without changing anything")
  .option("--merge", "existing users and locks with other fields take the file's (default: refuse)")
  .option(
    "--secrets",
    "a version-2 export: ask for its passphrase and restore PINs, authenticator apps, issuers",
  )
  .option("--passphrase-file <file>", "like --secrets, the passphrase from the first line of this file")
  .action(
    async (
      file: string,
      o: { csv?: boolean; dryRun?: boolean; merge?: boolean; secrets?: boolean; passphraseFile?: string },
    ) => {
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch {
        throw new LatchkeyError("LK_INVALID_INPUT", `cannot read ${safe(file)}`);
      }
      const withSecrets = o.secrets === true || o.passphraseFile !== undefined;
      if (o.csv && withSecrets)
        throw new LatchkeyError("LK_INVALID_INPUT", "a CSV file has no secrets: leave out --secrets");
      let document: unknown;
      if (!o.csv) {
        try {
          document = JSON.parse(text);
        } catch {
          throw new LatchkeyError("LK_INVALID_INPUT", `${safe(file)} is not JSON (truncated or damaged?)`);
        }
      }
      const passphrase = withSecrets ? await readPassphrase(o.passphraseFile, false) : undefined;
      const r = await api<{
        dryRun: boolean;
        plan: {
          steps: { op: string }[];
          counts: Record<string, number>;
          reEnrol: { name: string; needs: string[]; reason?: string }[];
          notImported: Record<string, number>;
          secrets?: { sealed: boolean; opened: boolean };
        };
      }>("POST", "/api/v1/import", {
        ...(o.csv ? { csv: text } : { document }),
        dryRun: o.dryRun ?? false,
        mode: o.merge ? "merge" : "strict",
        ...(passphrase !== undefined ? { passphrase } : {}),
      });
      const c = r.plan.counts;
      const lines = [
        `${r.dryRun ? "Would import" : "Imported"}: ${c.usersAdded} users added, ${c.usersUpdated} updated, ${c.usersUnchanged} unchanged; ${c.credentialsAdded} cards/fingerprints added; ${c.locksAdded} locks added, ${c.locksUpdated} updated (${r.plan.steps.length} changes)`,
      ];
      if (r.plan.secrets?.opened)
        lines.push(
          `  secrets: ${c.credentialsRestored ?? 0} PINs/authenticator apps and ${c.issuersRestored ?? 0} guest-code issuers restored`,
        );
      else if (r.plan.secrets?.sealed)
        lines.push("  secrets: this export carries encrypted secrets; import with --secrets to restore them");
      lines.push(
        ...r.plan.reEnrol.map(
          (u) =>
            `  re-enrol: ${safe(u.name)} (${u.needs.join(", ")}: ${REENROL_WHY[u.reason ?? "notExported"] ?? "not restored"})`,
        ),
      );
      const skipped = Object.entries(r.plan.notImported).filter(([, n]) => n > 0);
      if (skipped.length > 0)
        lines.push(`  not imported: ${skipped.map(([k, n]) => `${n} ${k}`).join(", ")}`);
      out(lines.join("\n"), r);
    },
  );

// ------------------------------------------------------------------ encrypted audit export

const auditCmd = program
  .command("audit")
  .description("the audit log as an encrypted file (export) and reading one back (open)");
auditCmd
  .command("export")
  .description("seal audit events (with checkpoints and the chain verification) to a passphrase")
  .option(
    "--passphrase-file <file>",
    "read the passphrase from the first line of this file (else asked twice)",
  )
  .option("-o, --out <file>", "write to a file (mode 0600) instead of standard output")
  .addOption(new Option("--from <seq>", "first event seq").argParser(intArg(1, Number.MAX_SAFE_INTEGER)))
  .addOption(new Option("--to <seq>", "last event seq").argParser(intArg(1, Number.MAX_SAFE_INTEGER)))
  .action(async (o: { passphraseFile?: string; out?: string; from?: number; to?: number }) => {
    const passphrase = await readPassphrase(o.passphraseFile, true);
    const doc = await api("POST", "/api/v1/audit/export", {
      passphrase,
      ...(o.from !== undefined ? { fromSeq: o.from } : {}),
      ...(o.to !== undefined ? { toSeq: o.to } : {}),
    });
    const text = `${safeJson(doc, 2)}\n`;
    if (o.out) {
      writePrivate(o.out, text);
      console.log(`Audit log exported to ${safe(o.out)} (encrypted to the passphrase)`);
    } else {
      process.stdout.write(text);
    }
  });
auditCmd
  .command("open")
  .description("decrypt an audit export and check its events and checkpoints (no hub needed)")
  .argument("<file>", "a latchkey-audit-export file")
  .option("--passphrase-file <file>", "read the passphrase from the first line of this file (else asked)")
  .action(async (file: string, o: { passphraseFile?: string }) => {
    const { openAuditExport, verifyAuditSlice } = await import("../hub/export-audit.ts");
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      throw new LatchkeyError("LK_INVALID_INPUT", `cannot read ${safe(file)}`);
    }
    const p = await openAuditExport(text, await readPassphrase(o.passphraseFile, false));
    const slice = verifyAuditSlice(p);
    const first = p.events[0]?.seq;
    const last = p.events.at(-1)?.seq;
    const lines = [
      `Audit export of ${safe(p.hub.deviceId)} taken ${safe(p.exportedAt)}: ${p.events.length} events${first !== undefined ? ` (#${first}–#${last})` : ""}, ${p.checkpoints.length} signed checkpoints`,
      slice.ok
        ? `  this file: hashes and links OK, ${slice.checkpointsChecked} checkpoint signatures OK (device public key ${safe(p.hub.publicKey)})`
        : `  this file: BROKEN at seq ${slice.problem?.seq}: ${safe(slice.problem?.what ?? "")}`,
      p.verification.ok
        ? `  the hub's whole log verified OK when exported (events ${p.verification.firstSeq}–${p.verification.lastSeq})`
        : `  the hub's log did NOT verify when exported: ${safe(p.verification.problem?.what ?? "")}`,
      ...(p.next !== null ? [`  more events follow: export again with --from ${p.next}`] : []),
      ...p.events.map((e) => formatEvent(e, { zoneOf: () => "UTC", nameOf: () => undefined })),
    ];
    out(lines.join("\n"), { ...p, fileCheck: slice });
    if (!slice.ok)
      throw new LatchkeyError("LK_AUDIT_CHAIN_BROKEN", `audit export broken at seq ${slice.problem?.seq}`);
  });

// ------------------------------------------------------------------ errors

function usageHint(cmd: Command): string {
  const name = fullName(cmd);
  return `usage: ${name} ${cmd.usage()}   (more: ${name} --help)`;
}

function fail(e: unknown): never {
  let err: LatchkeyError;
  let usage: string | null = null;
  if (e instanceof UsageError) {
    err = new LatchkeyError("LK_INVALID_INPUT", e.message);
    usage = usageHint(e.command);
  } else if (isLatchkeyError(e)) {
    err = e;
  } else {
    if (process.env.LATCHKEY_DEBUG) console.error(e);
    err = new LatchkeyError("LK_INTERNAL", e instanceof Error ? e.message : String(e));
  }
  const code: ErrorCode = err.code;
  if (jsonMode()) {
    process.stderr.write(`${safeJson({ ok: false, error: { code, message: err.message } })}\n`);
  } else {
    process.stderr.write(`error ${code}: ${safe(err.detail)}\n`);
    if (usage) process.stderr.write(`${usage}\n`);
  }
  process.exit(code === "LK_AUDIT_CHAIN_BROKEN" ? 3 : err.fault === "caller" ? 2 : 1);
}

program.parseAsync(process.argv).catch(fail);
