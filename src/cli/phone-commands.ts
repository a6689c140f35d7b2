/**
 * `latchkey key ...` (the owner's root key and the hub's phone keys) and `latchkey phone ...` (a simulated
 * phone: the wallet of src/wallet/wallet.ts), docs/protocol/digital-keys.md and link.md.
 *
 * - `key setup`: the owner creates the root key on their machine (kept in an encrypted key file, never sent)
 *   and signs the link that lets the hub issue keys, lists and tickets; the hub registers both.
 * - `key issue --to <phone public key> --until ...`, `key list`, `key revoke`, `key events`: admins.
 * - `phone init | status | sync | add-key | unlock | lock`: the phone. `unlock` talks to the lock over the
 *   hub's TCP link bridge only: it works with the hub's API (and the internet) unreachable.
 */
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Command, Option } from "commander";
import { CoseAlg } from "../core/envelope/cose-sign1.ts";
import type { NumericDate } from "../core/envelope/cwt.ts";
import { LatchkeyError } from "../core/errors.ts";
import {
  ALL_KEY_RIGHTS,
  issueKeyExternal,
  type KeyWindow,
  type PublicKey,
} from "../core/keys/digital-key.ts";
import { MAX_FRAME_SIZE } from "../core/link/frames.ts";
import { encodeSelect, IntentKind } from "../core/link/messages.ts";
import { MessageLink } from "../link/message-link.ts";
import { connectTcpLink } from "../link/tcp-transport.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";
import { FileKeyStore } from "../wallet/file-key-store.ts";
import { formatPublicKeyText, keyText, parsePublicKeyText, Wallet } from "../wallet/wallet.ts";
import { parseDays, parseHm, parseInstant } from "./args.ts";
import { type ClientOptions, call, resolveUrl } from "./client.ts";
import { safe, table } from "./format.ts";
import { configDir } from "./issuer-wallet.ts";
import { type HubIdentity, hubKeyOf, signAdminGrants } from "./owner-ops.ts";
import { readHidden } from "./prompt.ts";

/** What the commands need from main.ts. */
export interface PhoneCommandContext {
  readonly options: () => ClientOptions & { readonly configDir?: string };
  readonly out: (human: string, data: unknown) => void;
  readonly warn: (message: string) => void;
  readonly userId: (ref: string) => Promise<string>;
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64url");
const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, "base64url"));

/** The hub link's validity: the hub may issue keys inside it only. */
const HUB_LINK_YEARS = 10;

/**
 * A passphrase: from the environment variable, else asked (hidden) on a terminal. Never a command-line
 * argument (shell history, `ps`). Throws LK_INVALID_INPUT when neither is possible.
 */
async function passphrase(envName: string, what: string, confirm: boolean): Promise<string> {
  const env = process.env[envName];
  if (env !== undefined && env.length > 0) return env;
  if (!process.stdin.isTTY) {
    throw new LatchkeyError(
      "LK_INVALID_INPUT",
      `set ${envName} (the ${what} passphrase): there is no terminal to ask on`,
    );
  }
  const a = await readHidden(`${what} passphrase: `);
  if (a.length < 8) throw new LatchkeyError("LK_INVALID_INPUT", "a passphrase has at least 8 characters");
  if (confirm && (await readHidden("again: ")) !== a)
    throw new LatchkeyError("LK_INVALID_INPUT", "the two entries differ");
  return a;
}

/** `90m`, `12h`, `30d` from now, or an ISO instant with its offset; ms since the epoch. */
export function parseWhen(text: string, flag: string, now = Date.now()): number {
  const rel = /^(\d{1,5})([mhd])$/.exec(text.trim());
  if (rel)
    return now + Number(rel[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as "m" | "h" | "d"];
  try {
    return Date.parse(parseInstant(text, flag));
  } catch {
    throw new LatchkeyError(
      "LK_INVALID_INPUT",
      `${flag} must be like 90m, 12h, 30d, or an ISO time with its offset`,
    );
  }
}

/** `12h`/`90m`/`2d` as seconds. */
function parseSpan(text: string, flag: string): number {
  const m = /^(\d{1,5})([mhd])$/.exec(text.trim());
  if (!m) throw new LatchkeyError("LK_INVALID_INPUT", `${flag} must be like 90m, 12h or 2d`);
  return Number(m[1]) * { m: 60, h: 3600, d: 86_400 }[m[2] as "m" | "h" | "d"];
}

function algOf(text: string): CoseAlg {
  if (text === "es256") return CoseAlg.ES256;
  if (text === "eddsa") return CoseAlg.EdDSA;
  throw new LatchkeyError("LK_INVALID_INPUT", "--alg must be es256 or eddsa");
}

interface HubInfo {
  deviceId: string;
  keySigner: { alg: number; key: string };
  keysReady: boolean;
}

/**
 * Create (or load) the owner's root key in `<config-dir>/owner-root-<site>.key` and sign the hub link for
 * the hub's signing key. Returns the body of POST /api/v1/keys/authority (and of the claim's keyAuthority).
 */
export async function ownerAuthority(
  dir: string,
  hub: HubInfo,
  pass: string,
  alg: CoseAlg = CoseAlg.EdDSA,
  replace = false,
): Promise<{ root: { alg: -7 | -8; key: string }; hubLink: string; file: string }> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `owner-root-${hub.deviceId}.key`);
  if (replace && existsSync(file)) {
    // A new root: the old file is kept aside (it can still prove what it signed), never reused.
    renameSync(file, `${file}.replaced-${new Date().toISOString().replace(/[:.]/g, "")}`);
  }
  const store = FileKeyStore.open(file, pass);
  const root = (await store.publicKey("root")) ?? (await store.generate("root", alg));
  const nowS = Math.floor(Date.now() / 1000);
  const hubKey: PublicKey = { alg: hub.keySigner.alg as CoseAlg, key: fromB64(hub.keySigner.key) };
  const link = await issueKeyExternal(
    nodeCrypto,
    { alg: root.alg, publicKey: root.key, sign: (d) => store.sign("root", d) },
    {
      serial: nodeCrypto.randomBytes(16),
      holder: hubKey,
      scope: { kind: "site", id: hub.deviceId },
      nbf: (nowS - 300) as NumericDate,
      exp: (nowS + HUB_LINK_YEARS * 366 * 86_400) as NumericDate,
      rights: ALL_KEY_RIGHTS,
      schedule: null,
      leaseSeconds: null,
    },
  );
  return { root: { alg: root.alg as -7 | -8, key: b64(root.key) }, hubLink: b64(link), file };
}

function walletDir(o: { wallet?: string }, ctx: PhoneCommandContext): string {
  return resolve(
    o.wallet ?? process.env.LATCHKEY_WALLET ?? join(configDir(ctx.options().configDir), "phone"),
  );
}

async function openWallet(o: { wallet?: string }, ctx: PhoneCommandContext, create = false): Promise<Wallet> {
  const dir = walletDir(o, ctx);
  if (!create && !existsSync(join(dir, "holder-key")) && !existsSync(join(dir, "wallet.json"))) {
    throw new LatchkeyError("LK_NOT_FOUND", `no phone wallet in ${dir}: run latchkey phone init first`);
  }
  const pass = await passphrase("LATCHKEY_WALLET_PASSPHRASE", "phone wallet", create);
  return Wallet.open(dir, { passphrase: pass });
}

/** What a refusal code means for the person holding the phone. */
const REFUSALS: Partial<Record<string, string>> = {
  LK_LINK_REVOKED: "this key (or one it was delegated from) is revoked",
  LK_LINK_KEY_EXPIRED: "this key is expired or not valid yet",
  LK_LINK_WRONG_LOCK: "this key is not for this lock",
  LK_LINK_LEASE_STALE: "this lease key needs a fresh status from the hub: run latchkey phone sync",
  LK_LINK_KEY_INVALID: "the lock does not accept this key (another owner root, or a damaged key)",
  LK_LINK_TOO_LATE: "the answer came too late (a slow or relayed connection): try again next to the lock",
  LK_LINK_NO_INTENT: "the lock needs a fresh action from you",
  LK_ACCESS_DENIED:
    "not allowed now: outside the key's or your schedule, your user is disabled, or the key lacks the right",
  LK_MODE_FORBIDS: "the lock's mode forbids it (privacy or vacation)",
  LK_CLOCK_UNTRUSTED:
    "the lock's clock is not trusted: sync the phone with the hub for a time ticket, then try again",
  LK_KEYS_NOT_SET_UP: "phone keys are not set up on this hub (latchkey key setup)",
};

/** The hub's link bridge: --link, LATCHKEY_LINK, or `<data-dir>/hub.link` of a running hub. */
function linkAddress(o: { link?: string }, ctx: PhoneCommandContext): { host: string; port: number } {
  let text = o.link ?? process.env.LATCHKEY_LINK;
  if (!text) {
    try {
      text = readFileSync(join(resolve(ctx.options().dataDir), "hub.link"), "utf8").trim();
    } catch {
      throw new LatchkeyError(
        "LK_HUB_UNREACHABLE",
        "no --link given and no running hub's hub.link file found",
      );
    }
  }
  const m = /^(?:tcp:\/\/)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) {
    throw new LatchkeyError(
      "LK_INVALID_INPUT",
      "the link bridge address (--link or LATCHKEY_LINK) must be tcp://HOST:PORT",
    );
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

function rightsOf(text: string): ("unlock" | "lock" | "manageUsers" | "issueKeys")[] {
  const names = {
    unlock: "unlock",
    lock: "lock",
    "manage-users": "manageUsers",
    "issue-keys": "issueKeys",
  } as const;
  return text.split(",").map((r) => {
    const n = names[r.trim() as keyof typeof names];
    if (!n) throw new LatchkeyError("LK_INVALID_INPUT", "--rights: unlock, lock, manage-users, issue-keys");
    return n;
  });
}

const date = (s: number) => new Date(s * 1000).toISOString().replace(".000Z", "Z");

/**
 * `--days` and `--hours FROM-TO` as key windows (local time of the lock). A window crossing midnight
 * (22:00-06:00) becomes two: the evening on the given days and the morning on the days after.
 */
export function keyWindows(days: string, hours: string): KeyWindow[] {
  const mask = parseDays(days);
  const [a, b, extra] = hours.split("-");
  if (a === undefined || b === undefined || extra !== undefined) {
    throw new LatchkeyError("LK_INVALID_INPUT", "--hours must be FROM-TO, e.g. 08:00-18:00 or 22:00-06:00");
  }
  const s = parseHm(a, "--hours");
  const e = parseHm(b, "--hours", true);
  const start = s.hour * 60 + s.minute;
  const end = e.hour * 60 + e.minute;
  if (start === end)
    throw new LatchkeyError("LK_INVALID_INPUT", "--hours: the window is empty (FROM equals TO)");
  if (end > start) return [{ daysMask: mask, startMinute: start, endMinute: end }];
  const next = ((mask << 1) | (mask >> 6)) & 0x7f; // each day's following day (Saturday → Sunday)
  const out: KeyWindow[] = [{ daysMask: mask, startMinute: start, endMinute: 1440 }];
  if (end > 0) out.push({ daysMask: next, startMinute: 0, endMinute: end });
  return out;
}

export function registerPhoneCommands(program: Command, ctx: PhoneCommandContext): void {
  const api = <T>(method: string, path: string, body?: unknown, auth = true) =>
    call<T>(ctx.options(), method, path, body, auth);

  // ---------------------------------------------------------------- key (owner and admins)
  const key = program.command("key").description("phone keys: the owner's root key, issuing and revoking");

  key
    .command("setup")
    .description(
      "create the owner's root key on this machine and register it (with the hub's link) at the hub",
    )
    .option("--alg <alg>", "root key algorithm: eddsa or es256", "eddsa")
    .option("--replace", "replace a registered root: every key issued so far stops working")
    .action(async (o: { alg: string; replace?: boolean }) => {
      const hub = await api<HubInfo>("GET", "/api/v1/hub", undefined, false);
      const pass = await passphrase("LATCHKEY_KEY_PASSPHRASE", "owner root key", true);
      const a = await ownerAuthority(
        configDir(ctx.options().configDir),
        hub,
        pass,
        algOf(o.alg),
        o.replace ?? false,
      );
      await api("POST", "/api/v1/keys/authority", {
        root: a.root,
        hubLink: a.hubLink,
        replace: o.replace ?? false,
      });
      // The hub signs its local changes as operations from now on (docs/protocol/operations.md).
      const id = await api<HubIdentity>("GET", "/api/v1/sync/identity");
      await api("POST", "/api/v1/ops", {
        ops: await signAdminGrants(a.file, pass, id.siteId, [hubKeyOf(id)]),
      });
      ctx.out(
        `Root key registered for site ${safe(hub.deviceId)}. Keep ${safe(a.file)} and its passphrase safe: it is the only way to re-delegate the hub.`,
        { siteId: hub.deviceId, root: a.root, file: a.file },
      );
    });

  key
    .command("issue")
    .description("issue a phone key to a phone's public key (from `latchkey phone init`)")
    .requiredOption("--to <public-key>", "the phone's public key (lkpk1....)")
    .requiredOption("--until <when>", "end: 90m, 12h, 30d or an ISO time with offset")
    .option("--name <name>", "what the key is called in lists", "phone key")
    .option("--user <user>", "the user the key is for (id or name): the audit log names them")
    .option("--lock <lockId>", "only this lock (default: every lock of the hub)")
    .option("--from <when>", "start (default now)")
    .option("--rights <list>", "unlock,lock,manage-users,issue-keys", "unlock,lock")
    .option("--lease <span>", "needs a status ticket from the hub no older than this (e.g. 2h)")
    .option("--days <days>", "week-day window: days, e.g. mon-fri")
    .option("--hours <from-to>", "week-day window: hours, e.g. 08:00-18:00")
    .action(
      async (o: {
        to: string;
        until: string;
        name: string;
        user?: string;
        lock?: string;
        from?: string;
        rights: string;
        lease?: string;
        days?: string;
        hours?: string;
      }) => {
        const holder = parsePublicKeyText(o.to);
        const schedule =
          o.days !== undefined || o.hours !== undefined
            ? keyWindows(o.days ?? "daily", o.hours ?? "00:00-24:00")
            : undefined;
        const body = {
          holder: { alg: holder.alg, key: b64(holder.key) },
          name: o.name,
          ...(o.user ? { userId: await ctx.userId(o.user) } : {}),
          ...(o.lock ? { lockId: o.lock } : {}),
          rights: rightsOf(o.rights),
          ...(o.from ? { from: parseWhen(o.from, "--from") } : {}),
          until: parseWhen(o.until, "--until"),
          ...(o.lease ? { leaseSeconds: parseSpan(o.lease, "--lease") } : {}),
          ...(schedule ? { schedule } : {}),
        };
        const r = await api<{
          key: { serial: string; scope: string; nbf: number; exp: number; rights: string[] };
          chain: string[];
        }>("POST", "/api/v1/keys", body);
        const text = keyText(r.chain.map(fromB64));
        ctx.out(
          [
            `Key ${safe(r.key.serial)} for ${safe(r.key.scope)}: ${safe(r.key.rights.join(", "))}, ${date(r.key.nbf)} to ${date(r.key.exp)}.`,
            "The phone gets it at its next `latchkey phone sync`, or import it there with:",
            `  latchkey phone add-key ${text}`,
          ].join("\n"),
          { ...r, text },
        );
      },
    );

  key
    .command("list")
    .description("phone keys issued by the hub")
    .action(async () => {
      const keys = await api<
        {
          serial: string;
          name: string;
          scope: string;
          rights: string[];
          exp: number;
          revokedAt: number | null;
          userId: string | null;
        }[]
      >("GET", "/api/v1/keys");
      ctx.out(
        keys.length === 0
          ? "No phone keys."
          : table(
              ["SERIAL", "NAME", "SCOPE", "RIGHTS", "UNTIL", "STATE"],
              keys.map((k) => [
                k.serial,
                k.name,
                k.scope,
                k.rights.join(","),
                date(k.exp),
                k.revokedAt !== null ? "revoked" : k.exp * 1000 < Date.now() ? "expired" : "active",
              ]),
            ),
        keys,
      );
    });

  key
    .command("revoke")
    .description("revoke a phone key: the hub's locks at once, other locks when a phone carries the list")
    .argument("<serial>", "the key's serial (key list)")
    .action(async (serial: string) => {
      const r = await api<{ serial: string; listVersion: number }>(
        "POST",
        `/api/v1/keys/${encodeURIComponent(serial)}/revoke`,
      );
      ctx.out(`Key ${safe(serial)} revoked (revocation list version ${r.listVersion}).`, r);
    });

  key
    .command("events")
    .description("what phones did while offline, as they synced it")
    .action(async () => {
      const ev = await api<
        {
          at: number;
          lockId: string;
          action: string;
          accepted: boolean;
          code: string | null;
          holderKeyId: string;
        }[]
      >("GET", "/api/v1/keys/events");
      ctx.out(
        ev.length === 0
          ? "No phone events."
          : table(
              ["AT (PHONE)", "LOCK", "ACTION", "RESULT", "PHONE"],
              ev.map((e) => [
                new Date(e.at).toISOString(),
                e.lockId,
                e.action,
                e.accepted ? "accepted" : (e.code ?? "refused"),
                e.holderKeyId.slice(0, 12),
              ]),
            ),
        ev,
      );
    });

  // ---------------------------------------------------------------- phone (a simulated phone's wallet)
  const phone = program
    .command("phone")
    .description("a simulated phone: its wallet, keys and unlocks over the link")
    .addOption(
      new Option("--wallet <dir>", "wallet directory (default <config-dir>/phone)").env("LATCHKEY_WALLET"),
    );
  const wopts = () => phone.opts() as { wallet?: string };

  phone
    .command("init")
    .description(
      "create the phone's holder key (once) and print its public key for `latchkey key issue --to`",
    )
    .option("--alg <alg>", "es256 (phone secure hardware) or eddsa", "es256")
    .action(async (o: { alg: string }) => {
      const w = await openWallet(wopts(), ctx, true);
      const pk = await w.init(algOf(o.alg));
      const text = formatPublicKeyText(pk);
      ctx.out(
        `Phone public key:\n  ${text}\nGive it to an admin: latchkey key issue --to ${text} --until 30d`,
        {
          publicKey: text,
          holderKeyId: w.holderKeyId(),
        },
      );
    });

  phone
    .command("sync")
    .description("fetch keys, revocation lists and tickets from the hub; upload queued events")
    .action(async () => {
      const w = await openWallet(wopts(), ctx);
      const r = await w.sync(resolveUrl(ctx.options()));
      ctx.out(
        `Synced with ${safe(r.siteId)}: ${r.keys} key(s) (${r.added} new, ${r.removed} dropped), ${r.lists} revocation list(s), ${r.eventsSent} event(s) sent${r.timeTickets > 0 ? `, ${r.timeTickets} time ticket(s) for locks that asked` : ""}.`,
        r,
      );
    });

  phone
    .command("add-key")
    .description("import a key handed over out of band (lkkey1....)")
    .argument("<key>", "the key text from `latchkey key issue`")
    .action(async (text: string) => {
      const w = await openWallet(wopts(), ctx);
      const k = w.addKey(text);
      ctx.out(`Key ${safe(k.serial)} added.`, k);
    });

  phone
    .command("delegate")
    .description(
      "offline: sign a key for another phone under one of this phone's keys with the issue-keys right",
    )
    .requiredOption("--key <serial>", "this phone's key to delegate from (phone status)")
    .requiredOption("--to <public-key>", "the other phone's public key (lkpk1....)")
    .requiredOption("--until <when>", "end: 90m, 12h, 30d or an ISO time with offset (inside the parent key)")
    .option("--lock <lockId>", "only this lock (default: the parent key's scope)")
    .option("--rights <list>", "unlock,lock (a subset of the parent key's)", "unlock")
    .action(async (o: { key: string; to: string; until: string; lock?: string; rights: string }) => {
      const w = await openWallet(wopts(), ctx);
      const bits = { unlock: 1, lock: 2, manageUsers: 4, issueKeys: 8 } as const;
      const rights = rightsOf(o.rights).reduce((a, r) => a | bits[r], 0);
      const chain = await w.delegate(o.key, {
        holder: parsePublicKeyText(o.to),
        rights,
        exp: Math.floor(parseWhen(o.until, "--until") / 1000),
        ...(o.lock ? { lockId: o.lock } : {}),
      });
      const text = keyText(chain);
      ctx.out(
        `Delegated key (${chain.length} links). On the other phone:\n  latchkey phone add-key ${text}`,
        {
          text,
          links: chain.length,
        },
      );
    });

  phone
    .command("status")
    .description("keys, offline status, queued events")
    .action(async () => {
      const w = await openWallet(wopts(), ctx);
      const s = w.status();
      const age = (ms: number | null) => (ms === null ? "none" : `${Math.round(ms / 60_000)} min old`);
      const lines = [
        `Phone ${safe(s.holderKeyId ?? "(no holder key yet: latchkey phone init)")}`,
        `${s.online ? "online" : "OFFLINE"}: last sync ${s.lastSyncAt === null ? "never" : new Date(s.lastSyncAt).toISOString()}${s.lastSyncError ? ` (last attempt failed: ${safe(s.lastSyncError)})` : ""}`,
        `queued events: ${s.queuedEvents}; revocation list carried: ${age(s.revocationListAge)}`,
      ];
      if (s.keys.length > 0) {
        lines.push(
          table(
            ["SERIAL", "NAME", "SCOPE", "UNTIL", "STATE"],
            s.keys.map((k) => [
              k.serial,
              k.name,
              k.scope,
              date(k.exp),
              k.revoked
                ? "revoked"
                : k.expired
                  ? "expired"
                  : k.leaseStaleInMs === 0
                    ? "lease stale: sync"
                    : "usable",
            ]),
          ),
        );
      } else lines.push("No keys yet: ask an admin for one, then latchkey phone sync.");
      ctx.out(lines.join("\n"), s);
    });

  for (const action of ["unlock", "lock"] as const) {
    phone
      .command(action)
      .description(`${action} a lock with the phone key, over the hub's link bridge (no API, no internet)`)
      .argument("<lockId>", "the lock, e.g. front-door")
      .option("--link <address>", "the link bridge, tcp://HOST:PORT (default: the running hub's hub.link)")
      .option("--no-retry", "do not fetch a time ticket and retry when the lock's clock is untrusted")
      .action(async (lockId: string, o: { link?: string; retry: boolean }) => {
        const w = await openWallet(wopts(), ctx);
        const { host, port } = linkAddress(o, ctx);
        const attempt = async () => {
          const t = await connectTcpLink(port, { host, frameSize: MAX_FRAME_SIZE }).catch((e: unknown) => {
            throw new LatchkeyError(
              "LK_HUB_UNREACHABLE",
              `cannot reach the link bridge at tcp://${host}:${port} (${(e as Error).message})`,
            );
          });
          try {
            const link = new MessageLink(t, { limits: { maxMessageBytes: 16 * 1024 } });
            link.send(encodeSelect(lockId));
            return await w
              .unlock(link, { lockId, action, intent: { kind: IntentKind.UserAction, ageMs: 0 as never } })
              .catch((e: unknown) => {
                if (
                  e instanceof LatchkeyError &&
                  e.code === "LK_NOT_FOUND" &&
                  /before the handshake/.test(e.detail)
                )
                  throw new LatchkeyError(
                    "LK_NOT_FOUND",
                    `no lock "${safe(lockId)}" behind this link bridge`,
                  );
                throw e;
              });
          } finally {
            t.close();
          }
        };
        let r = await attempt();
        if (!r.accepted && r.needsTimeTicket && o.retry) {
          try {
            await w.sync(resolveUrl(ctx.options()));
          } catch (e) {
            throw new LatchkeyError(
              "LK_CLOCK_UNTRUSTED",
              `${safe(lockId)}'s clock is not trusted, and no time ticket could be fetched (${(e as Error).message})`,
            );
          }
          r = await attempt();
        }
        if (r.accepted) ctx.out(`${action === "unlock" ? "Unlocked" : "Locked"} ${safe(lockId)}.`, r);
        else {
          const code = r.code ?? "LK_ACCESS_DENIED";
          throw new LatchkeyError(code, `${safe(lockId)} refused: ${REFUSALS[code] ?? code}`);
        }
      });
  }
}
