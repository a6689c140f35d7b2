/**
 * `latchkey code ...`: offline guest codes (docs/protocol/guest-codes.md) from the admin's machine.
 *
 * `enrol` fetches this admin's issuer key from the hub once and keeps it in the issuer file
 * (src/cli/issuer-wallet.ts, `--config-dir`). `issue` and `list` need only that file: they never call the
 * hub, so codes are issued with the hub (or the internet) unreachable. `revoke CODE` sends an
 * issuer-authenticated revocation, or keeps it in the ledger as pending while the hub is unreachable
 * (`revoke --pending` sends it later). `revoke --issuer`, `revoke --all` and `issuers` are hub operations.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import {
  GUEST_CODE_RECURRING_HOURS,
  GUEST_CODE_USES,
  type GuestCodeRequest,
} from "../core/credentials/guest-code.ts";
import { groupDigits } from "../core/credentials/guest-code-text.ts";
import { isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import { assertDisplayName } from "../core/ids.ts";
import { localTimeIn } from "../core/schedule.ts";
import { EpochMs } from "../core/units.ts";
import { systemClock } from "../platform/system-clock.ts";
import { parseLocalDateTime } from "./args.ts";
import { type ClientOptions, call, resolveToken, resolveUrl } from "./client.ts";
import { isoInZone, safe, shellWord, table } from "./format.ts";
import {
  configDir,
  findEntry,
  IssuerFile,
  issueFromWallet,
  issuerFilePath,
  issuerLocks,
  type LedgerEntry,
  loadIssuer,
  markRevocation,
  parseDaySet,
  parseDuration,
  revocationFor,
  saveIssuer,
} from "./issuer-wallet.ts";

/** What the commands need from main.ts: the global options and the output helpers. */
export interface CodeCommandContext {
  /** Global options: data dir, URL, token, and the issuer files' directory (`--config-dir`). */
  readonly options: () => ClientOptions & { readonly configDir?: string };
  /** Print the human text (already escaped) or, with --json, the data. */
  readonly out: (human: string, data: unknown) => void;
  readonly warn: (message: string) => void;
  /** A user id from a user id or name (asks the hub). */
  readonly userId: (ref: string) => Promise<string>;
}

/** CLI kind names (kebab-case) and the format's. */
const KINDS = {
  window: "window",
  "one-time": "oneTime",
  uses: "uses",
  "first-use": "firstUse",
  recurring: "recurring",
} as const;
type CliKind = keyof typeof KINDS;
const CLI_KIND_OF: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(KINDS).map(([cli, core]) => [core, cli]),
);

/** Options each kind needs (attribute names); any other kind option is refused. */
const KIND_OPTIONS: Readonly<Record<CliKind, readonly string[]>> = {
  window: ["from", "to"],
  "one-time": ["from", "to"],
  uses: ["from", "to", "uses"],
  "first-use": ["from", "to", "duration"],
  recurring: ["days", "at", "hours", "fromDate", "toDate"],
};
const KIND_FLAGS: Readonly<Record<string, string>> = {
  from: "--from",
  to: "--to",
  uses: "--uses",
  duration: "--duration",
  days: "--days",
  at: "--at",
  hours: "--hours",
  fromDate: "--from-date",
  toDate: "--to-date",
};

interface IssueOptions {
  readonly name: string;
  readonly kind: CliKind;
  readonly lock?: string;
  readonly from?: string;
  readonly to?: string;
  readonly uses?: string;
  readonly duration?: string;
  readonly days?: string;
  readonly at?: number;
  readonly hours?: string;
  readonly fromDate?: string;
  readonly toDate?: string;
}

/** `--at`: an hour `9`, `09` or `09:00`. */
function hourArg(value: string): number {
  const m = /^\s*(\d{1,2})(?::00)?\s*$/.exec(value);
  const h = m ? Number(m[1]) : Number.NaN;
  if (!(h >= 0 && h <= 23)) throw new InvalidArgumentError("Expected an hour 0–23, e.g. 9 or 09:00.");
  return h;
}

function localDate(text: string, flag: string): string {
  const t = text.trim();
  if (!/^\d{4}-\d{2}-\d{2}$/.test(t)) {
    throw new LatchkeyError("LK_INVALID_INPUT", `${flag} must be a date YYYY-MM-DD, e.g. 2026-12-01`);
  }
  return t;
}

/** The request the options describe, checked against the kind (what it needs, and nothing else). */
function requestOf(o: IssueOptions): GuestCodeRequest {
  const needed = KIND_OPTIONS[o.kind];
  const given = o as unknown as Record<string, unknown>;
  for (const k of Object.keys(KIND_FLAGS)) {
    if (given[k] !== undefined && !needed.includes(k)) {
      throw new LatchkeyError("LK_INVALID_INPUT", `${KIND_FLAGS[k]} does not apply to --kind ${o.kind}`);
    }
  }
  const missing = needed.filter((k) => given[k] === undefined);
  if (missing.length > 0) {
    throw new LatchkeyError(
      "LK_INVALID_INPUT",
      `--kind ${o.kind} needs ${needed.map((k) => KIND_FLAGS[k]).join(", ")}; missing: ${missing.map((k) => KIND_FLAGS[k]).join(", ")}`,
    );
  }
  const span = () => ({ from: parseLocalDateTime(o.from!, "--from"), to: parseLocalDateTime(o.to!, "--to") });
  switch (o.kind) {
    case "window":
      return { kind: "window", ...span() };
    case "one-time":
      return { kind: "oneTime", ...span() };
    case "uses":
      return { kind: "uses", ...span(), uses: Number(o.uses) };
    case "first-use":
      return { kind: "firstUse", ...span(), durationMinutes: parseDuration(o.duration!) };
    case "recurring":
      return {
        kind: "recurring",
        daysMask: parseDaySet(o.days!),
        startHour: o.at!,
        lengthHours: Number(o.hours),
        fromDate: localDate(o.fromDate!, "--from-date"),
        toDate: localDate(o.toDate!, "--to-date"),
      };
  }
}

/** What a request asked for, in the ledger's words, to compare with the window granted. */
function askedText(req: GuestCodeRequest): string {
  return req.kind === "recurring" ? `${req.fromDate} – ${req.toDate}` : `${req.from} – ${req.to}`;
}

/** The lock's local minute now, by this machine's clock. */
function localNow(f: IssuerFile): number {
  return localTimeIn(f.timeZone, systemClock.now()).localEpochMinutes;
}

/** A ledger entry's state: revoked (sent, pending, or with its epoch), expired, or issued. */
function stateOf(f: IssuerFile, e: LedgerEntry, nowLocal: number): string {
  if (e.epoch < f.epoch) return "revoked (epoch)";
  if (e.revocation === "sent") return "revoked";
  if (e.revocation === "pending") return "revoke pending";
  if (e.dropAfter <= nowLocal) return "expired";
  return "issued";
}

const enc = encodeURIComponent;
const gcPath = (lockId: string) => `/api/v1/locks/${enc(lockId)}/guest-codes`;

export function registerCodeCommands(program: Command, ctx: CodeCommandContext): void {
  const dir = () => configDir(ctx.options().configDir);
  const api = <T>(method: string, path: string, body?: unknown) => call<T>(ctx.options(), method, path, body);
  /** `--lock` for hub operations: given, else the only lock with an issuer file here, else front-door. */
  const lockOf = (given: string | undefined): string => {
    if (given !== undefined) return given;
    const here = issuerLocks(dir());
    return here.length === 1 ? here[0]! : "front-door";
  };
  const lockOption = () =>
    new Option("--lock <id>", "which lock (default: the only one with an issuer file here, else front-door)");

  /**
   * Send an issuer-authenticated revocation. The API token goes along when there is one (the audit log then
   * names its user); if the hub refuses that token, the issuer's MAC alone is enough.
   */
  async function sendRevocation(
    f: IssuerFile,
    rev: ReturnType<typeof revocationFor>,
  ): Promise<{ status: "revoked" | "alreadyRevoked" }> {
    const path = `${gcPath(f.lockId)}/revocations`;
    const withToken = resolveToken(ctx.options()) !== null;
    try {
      return await call(ctx.options(), "POST", path, rev, withToken);
    } catch (e) {
      if (withToken && (isLatchkeyError(e, "LK_UNAUTHENTICATED") || isLatchkeyError(e, "LK_FORBIDDEN"))) {
        return call(ctx.options(), "POST", path, rev, false);
      }
      throw e;
    }
  }

  /** Warn when this machine's issuer file was just made stale by an epoch raise. */
  function warnIfStale(lockId: string, raised: readonly { issuerId: string; epoch: number }[]): void {
    if (!existsSync(issuerFilePath(dir(), lockId))) return;
    const f = loadIssuer(dir(), lockId);
    const mine = raised.find((r) => r.issuerId === f.issuerId);
    if (mine && mine.epoch > f.epoch) {
      ctx.warn(
        `this machine's issuer file for ${safe(lockId)} is at epoch ${f.epoch}: codes issued with it no longer open. Run \`latchkey code enrol --lock ${safe(shellWord(lockId))}\` before issuing again.`,
      );
    }
  }

  const code = program
    .command("code")
    .description("offline guest codes: enrol an issuer, issue codes without the hub, list and revoke them");

  code
    .command("enrol")
    .description(
      "make you (or, as owner, --user) a guest-code issuer on a lock and save the issuer file (a secret) on this machine",
    )
    .addOption(lockOption())
    .option("--user <user>", "enrol this owner or admin instead of you (owners only; user id or name)")
    .action(async (o: { lock?: string; user?: string }) => {
      const lockId = lockOf(o.lock);
      const path = issuerFilePath(dir(), lockId);
      // Read an existing file first: a malformed one is reported, never overwritten.
      const existing = existsSync(path) ? loadIssuer(dir(), lockId) : null;
      const body = o.user !== undefined ? { userId: await ctx.userId(o.user) } : {};
      const view = await api<unknown>("POST", `${gcPath(lockId)}/issuers`, body);
      const parsed = IssuerFile.safeParse({ ...(view as object), ledger: [] });
      if (!parsed.success || parsed.data.lockId !== lockId) {
        throw new LatchkeyError("LK_INTERNAL", "the hub's issuer file does not have the expected shape");
      }
      const fresh = parsed.data;
      const ledger = existing?.ledger ?? [];
      if (existing && existing.issuerId !== fresh.issuerId) {
        // Another issuer's file: keep it unless that issuer is gone from the hub (its codes are dead).
        const issuers = await api<{ issuerId: string }[]>("GET", `${gcPath(lockId)}/issuers`);
        if (issuers.some((i) => i.issuerId === existing.issuerId)) {
          throw new LatchkeyError(
            "LK_CONFLICT",
            `${path} holds the file of issuer ${existing.issuerId}, which is still active on ${lockId}: keep another issuer's file elsewhere with --config-dir`,
          );
        }
        ctx.warn(
          `replacing the file of removed issuer ${safe(existing.issuerId)}: the ${existing.ledger.length} code(s) in its ledger no longer open`,
        );
      }
      const saved = resolve(saveIssuer(dir(), { ...fresh, ledger }));
      const changed =
        existing && existing.issuerId === fresh.issuerId && existing.epoch !== fresh.epoch
          ? ` (was epoch ${existing.epoch}: codes issued with the old key no longer open)`
          : "";
      ctx.out(
        [
          `Issuer ${safe(fresh.issuerId)} on ${safe(fresh.lockId)} (${safe(fresh.lockName)}), epoch ${fresh.epoch}${changed}, ${fresh.digits}-digit codes.`,
          `Saved to ${safe(saved)} (mode 0600)${ledger.length ? `, keeping its ledger of ${ledger.length} code(s)` : ""}.`,
          `This file is a secret: whoever has it can make codes that open ${safe(fresh.lockName)}. Do not share, sync or back it up in the clear.`,
          "Issue codes with it, even with the hub unreachable: latchkey code issue --name NAME --kind window --from YYYY-MM-DDTHH:MM --to YYYY-MM-DDTHH:MM",
        ].join("\n"),
        {
          lockId: fresh.lockId,
          lockName: fresh.lockName,
          issuerId: fresh.issuerId,
          epoch: fresh.epoch,
          digits: fresh.digits,
          driftMinutes: fresh.driftMinutes,
          timeZone: fresh.timeZone,
          path: saved,
          ledgerKept: ledger.length,
        },
      );
    });

  code
    .command("issue")
    .description("issue a guest code from this machine's issuer file (never calls the hub); prints it once")
    .requiredOption("--name <name>", "who the code is for (kept in the ledger and shown in the message)")
    .addOption(
      new Option("--kind <kind>", "what the code allows").choices(Object.keys(KINDS)).makeOptionMandatory(),
    )
    .option("--from <local>", "window start, YYYY-MM-DDTHH:MM in the lock's time zone")
    .option("--to <local>", "window end (exclusive), YYYY-MM-DDTHH:MM")
    .addOption(new Option("--uses <n>", "uses: grants in the window").choices(GUEST_CODE_USES.map(String)))
    .option("--duration <d>", "first-use: valid this long after the first use: 1h, 4h, 24h or 7d")
    .option(
      "--days <set>",
      "recurring: daily, mon-fri, weekends, mon, ..., mon,wed,fri, tue,thu, mon-sat, ...",
    )
    .addOption(new Option("--at <hour>", "recurring: start hour, 0-23").argParser(hourArg))
    .addOption(
      new Option("--hours <n>", "recurring: occurrence length").choices(
        GUEST_CODE_RECURRING_HOURS.map(String),
      ),
    )
    .option("--from-date <date>", "recurring: first day, YYYY-MM-DD (widened to whole months)")
    .option("--to-date <date>", "recurring: last day, YYYY-MM-DD")
    .option("--lock <id>", "which lock's issuer file (default: the only one here)")
    .action((o: IssueOptions) => {
      assertDisplayName(o.name, "--name");
      const req = requestOf(o);
      const f = loadIssuer(dir(), o.lock);
      const r = issueFromWallet(dir(), f, req, o.name.trim(), EpochMs(systemClock.now()));
      const e = r.entry;
      if (!e.exact) {
        ctx.warn(
          `the window was widened to fit the code format: asked ${safe(askedText(req))}, granted ${e.validFrom} – ${e.validTo} (lock time)`,
        );
      }
      ctx.out(
        [
          `Guest code for ${safe(e.name)} at ${safe(f.lockName)} (${safe(f.lockId)}):`,
          "",
          `    ${groupDigits(r.code)}`,
          "",
          `Code id:  ${e.codeId}   (issuer ${safe(f.issuerId)}, epoch ${e.epoch}; revoke with latchkey code revoke ${e.codeId.slice(0, 8)})`,
          `Kind:     ${CLI_KIND_OF[e.kind] ?? safe(e.kind)}`,
          `Valid:    ${e.validFrom} – ${e.validTo} (${safe(f.timeZone)}): ${safe(r.description)}`,
          "",
          "Send the guest:",
          safe(r.shareText),
          "",
          "The digits are shown only now: the ledger keeps the code id, never the code.",
        ].join("\n"),
        {
          code: r.code,
          codeId: e.codeId,
          name: e.name,
          kind: e.kind,
          lockId: f.lockId,
          issuerId: f.issuerId,
          epoch: e.epoch,
          validFrom: e.validFrom,
          validTo: e.validTo,
          timeZone: f.timeZone,
          exact: e.exact,
          dropAfter: e.dropAfter,
          description: r.description,
          shareText: r.shareText,
        },
      );
    });

  code
    .command("list")
    .description(
      "the codes issued from this machine (the local ledger: no digits) and whether each is revoked",
    )
    .option("--lock <id>", "which lock's issuer file (default: the only one here)")
    .action((o: { lock?: string }) => {
      const f = loadIssuer(dir(), o.lock);
      const now = localNow(f);
      const rows = f.ledger.map((e) => ({ ...e, state: stateOf(f, e, now) }));
      const head = `Issuer ${safe(f.issuerId)} on ${safe(f.lockId)} (${safe(f.lockName)}), epoch ${f.epoch}; times are the lock's (${safe(f.timeZone)}).`;
      ctx.out(
        rows.length
          ? `${head}\n${table(
              ["ID", "NAME", "KIND", "FROM", "TO", "STATE"],
              rows.map((e) => [
                e.codeId,
                e.name,
                CLI_KIND_OF[e.kind] ?? e.kind,
                e.validFrom,
                e.validTo,
                e.state,
              ]),
            )}`
          : `${head}\n(no codes issued from this machine yet)`,
        { lockId: f.lockId, issuerId: f.issuerId, epoch: f.epoch, timeZone: f.timeZone, codes: rows },
      );
    });

  code
    .command("revoke")
    .summary("revoke one code (offline-safe), --pending ones, every code of an --issuer, or --all")
    .description(
      "revoke one code by id (or a unique prefix of 4+ hex digits) or exact name, with the issuer's MAC; while the hub is unreachable it is kept as pending (exit 0) until `revoke --pending`. --issuer ID and --all raise epochs at the hub",
    )
    .argument("[code]", "code id, id prefix or name from `latchkey code list`")
    .option("--pending", "send every revocation kept as pending")
    .option("--issuer <issuerId>", "revoke every code this issuer has issued so far (raise its epoch)")
    .option("--all", "revoke every code issued on the lock so far, by every issuer")
    .option("--lock <id>", "which lock (default: the only one with an issuer file here, else front-door)")
    .action(
      async (
        ref: string | undefined,
        o: { pending?: boolean; issuer?: string; all?: boolean; lock?: string },
      ) => {
        const modes = [ref !== undefined, o.pending === true, o.issuer !== undefined, o.all === true];
        if (modes.filter(Boolean).length !== 1) {
          throw new LatchkeyError(
            "LK_INVALID_INPUT",
            "give exactly one of: a code, --pending, --issuer ID, --all",
          );
        }
        if (o.issuer !== undefined) {
          const lockId = lockOf(o.lock);
          const r = await api<{ issuerId: string; epoch: number }>(
            "POST",
            `${gcPath(lockId)}/issuers/${enc(o.issuer)}/epoch`,
          );
          ctx.out(
            `Issuer ${safe(r.issuerId)} on ${safe(lockId)} is now at epoch ${r.epoch}: every code it issued before no longer opens.`,
            { lockId, ...r },
          );
          warnIfStale(lockId, [r]);
          return;
        }
        if (o.all) {
          const lockId = lockOf(o.lock);
          const r = await api<{ issuerId: string; epoch: number }[]>("POST", `${gcPath(lockId)}/revoke-all`);
          ctx.out(
            [
              `Every guest code issued on ${safe(lockId)} so far no longer opens (${r.length} issuer(s)):`,
              ...r.map((i) => `  ${safe(i.issuerId)} now at epoch ${i.epoch}`),
            ].join("\n"),
            { lockId, issuers: r },
          );
          warnIfStale(lockId, r);
          return;
        }
        if (o.pending) {
          await sendPending(o.lock);
          return;
        }
        const f = loadIssuer(dir(), o.lock);
        const e = findEntry(f, ref!);
        const rev = revocationFor(f, e);
        let r: { status: "revoked" | "alreadyRevoked" };
        try {
          r = await sendRevocation(f, rev);
        } catch (err) {
          if (!isLatchkeyError(err, "LK_HUB_UNREACHABLE")) throw err;
          markRevocation(dir(), f, e.codeId, "pending");
          ctx.out(
            `PENDING: the hub at ${safe(resolveUrl(ctx.options()))} is unreachable, so code ${e.codeId} (${safe(e.name)}) STILL OPENS ${safe(f.lockId)}. The revocation is kept in the ledger: send it with \`latchkey code revoke --pending\` once the hub is reachable.`,
            { status: "pending", lockId: f.lockId, codeId: e.codeId, name: e.name },
          );
          return;
        }
        markRevocation(dir(), f, e.codeId, "sent");
        ctx.out(
          r.status === "revoked"
            ? `Revoked code ${e.codeId} (${safe(e.name)}): it no longer opens ${safe(f.lockId)}.`
            : `Code ${e.codeId} (${safe(e.name)}) was already revoked.`,
          { status: r.status, lockId: f.lockId, codeId: e.codeId, name: e.name },
        );
      },
    );

  /** Send every pending revocation (of one lock, or of every issuer file here). */
  async function sendPending(lock: string | undefined): Promise<void> {
    const locks = lock !== undefined ? [lock] : issuerLocks(dir());
    const lines: string[] = [];
    const results: { lockId: string; codeId: string; name: string; status: string }[] = [];
    let firstError: LatchkeyError | null = null;
    for (const lockId of locks) {
      let f = loadIssuer(dir(), lockId);
      for (const e of f.ledger.filter((x) => x.revocation === "pending")) {
        const label = `${e.codeId} (${safe(e.name)}) on ${safe(lockId)}`;
        if (e.epoch !== f.epoch) {
          // Its whole epoch was revoked since: nothing left to send.
          f = markRevocation(dir(), f, e.codeId, "sent");
          lines.push(`${label}: revoked with its epoch`);
          results.push({ lockId, codeId: e.codeId, name: e.name, status: "alreadyRevoked" });
          continue;
        }
        try {
          const r = await sendRevocation(f, revocationFor(f, e));
          f = markRevocation(dir(), f, e.codeId, "sent");
          lines.push(`${label}: ${r.status === "revoked" ? "revoked" : "already revoked"}`);
          results.push({ lockId, codeId: e.codeId, name: e.name, status: r.status });
        } catch (err) {
          // Unreachable: stop here; everything not sent stays pending.
          if (isLatchkeyError(err, "LK_HUB_UNREACHABLE")) throw err;
          if (!isLatchkeyError(err)) throw err;
          firstError ??= err;
          lines.push(`${label}: NOT revoked: ${safe(err.message)}`);
          results.push({ lockId, codeId: e.codeId, name: e.name, status: `error ${err.code}` });
        }
      }
    }
    ctx.out(lines.length ? lines.join("\n") : "No pending revocations.", results);
    if (firstError) throw firstError;
  }

  code
    .command("issuers")
    .description("the guest-code issuers of a lock and their epochs (from the hub; admins)")
    .addOption(lockOption())
    .action(async (o: { lock?: string }) => {
      const lockId = lockOf(o.lock);
      const [list, lock] = await Promise.all([
        api<
          {
            issuerId: string;
            userId: string;
            name: string;
            epoch: number;
            active: boolean;
            createdAt: number;
          }[]
        >("GET", `${gcPath(lockId)}/issuers`),
        api<{ timeZone: string }>("GET", `/api/v1/locks/${enc(lockId)}`),
      ]);
      const here = existsSync(issuerFilePath(dir(), lockId)) ? loadIssuer(dir(), lockId).issuerId : null;
      ctx.out(
        list.length
          ? table(
              ["ID", "NAME", "USER", "EPOCH", "ACTIVE", "CREATED", "HERE"],
              list.map((i) => [
                i.issuerId,
                i.name,
                i.userId,
                i.epoch,
                i.active ? "yes" : "no",
                isoInZone(i.createdAt, lock.timeZone),
                i.issuerId === here ? "this machine" : "-",
              ]),
            )
          : `${safe(lockId)} has no guest-code issuers: latchkey code enrol --lock ${safe(shellWord(lockId))}`,
        list,
      );
    });
}
