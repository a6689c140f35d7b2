/**
 * The guest-code issuer on an admin's machine (docs/protocol/guest-codes.md § 1): the issuer key the hub
 * handed out once (`latchkey code enrol`) plus a ledger of the codes issued with it. Issuing needs only
 * this file, so it works with the hub unreachable.
 *
 * Files: `<config-dir>/issuers/<lockId>.json`, mode 0600 in a 0700 directory, written atomically
 * (temp file + rename). `<config-dir>` is `--config-dir`, `LATCHKEY_CONFIG_DIR`, `$XDG_CONFIG_HOME/latchkey`
 * or `~/.config/latchkey`. The ledger never holds the digits of a code: only its id, name, kind and window.
 */
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import {
  dropAfterOf,
  formatLocalMinutes,
  GUEST_CODE_DAY_MASKS,
  type GuestCodeRequest,
  type GuestCodeRevocation,
  issueGuestCode,
  revocationMac,
} from "../core/credentials/guest-code.ts";
import { describeIssued, shareText } from "../core/credentials/guest-code-text.ts";
import { fromHex } from "../core/crypto.ts";
import { LatchkeyError } from "../core/errors.ts";
import { localTimeIn } from "../core/schedule.ts";
import type { EpochMs } from "../core/units.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";

export const ISSUER_FILE_FORMAT = "latchkey-issuer/1";

const LedgerEntry = z.object({
  codeId: z.string().regex(/^[0-9a-f]{16}$/),
  /** The issuer that issued it (absent in files written before it was recorded). */
  issuerId: z.string().min(1).max(64).optional(),
  name: z.string().max(200),
  kind: z.enum(["window", "oneTime", "uses", "firstUse", "recurring"]),
  epoch: z.number().int().min(0).max(0xffff),
  validFrom: z.string(),
  validTo: z.string(),
  exact: z.boolean(),
  dropAfter: z.number().int().min(0),
  issuedAt: z.string(),
  /** `pending`: revoked here, not yet delivered to the hub; `sent`: the hub applied it. */
  revocation: z.enum(["pending", "sent"]).optional(),
});
export type LedgerEntry = z.infer<typeof LedgerEntry>;

/** The issuer file, as `POST /api/v1/locks/{lockId}/guest-codes/issuers` returns it plus the ledger. */
export const IssuerFile = z.object({
  format: z.literal(ISSUER_FILE_FORMAT),
  lockId: z.string().min(1).max(64),
  lockName: z.string().max(200),
  timeZone: z.string().min(1).max(64),
  digits: z.number().int().min(10).max(15),
  driftMinutes: z.number().int().min(0).max(15),
  issuerId: z.string().min(1).max(64),
  epoch: z.number().int().min(0).max(0xffff),
  keyHex: z.string().regex(/^[0-9a-f]{64}$/),
  ledger: z.array(LedgerEntry).default([]),
});
export type IssuerFile = z.infer<typeof IssuerFile>;

/** The directory issuer files live in. */
export function configDir(explicit?: string): string {
  if (explicit) return explicit;
  if (process.env.LATCHKEY_CONFIG_DIR) return process.env.LATCHKEY_CONFIG_DIR;
  const xdg = process.env.XDG_CONFIG_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), ".config"), "latchkey");
}

function issuersDir(dir: string): string {
  return join(dir, "issuers");
}

function fileOf(dir: string, lockId: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(lockId)) {
    throw new LatchkeyError("LK_INVALID_INPUT", "a lock id is 1-64 letters, digits, '_' or '-'");
  }
  return join(issuersDir(dir), `${lockId}.json`);
}

/** Write the issuer file atomically with mode 0600 (its key is a secret). */
export function saveIssuer(dir: string, f: IssuerFile): string {
  const d = issuersDir(dir);
  mkdirSync(d, { recursive: true, mode: 0o700 });
  chmodSync(d, 0o700);
  const path = fileOf(dir, f.lockId);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(f, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
  return path;
}

/** The locks this machine keeps an issuer file for, sorted. */
export function issuerLocks(dir: string): string[] {
  const d = issuersDir(dir);
  if (!existsSync(d)) return [];
  return readdirSync(d)
    .filter((n) => /^[A-Za-z0-9_-]{1,64}\.json$/.test(n))
    .map((n) => n.slice(0, -".json".length))
    .sort();
}

/** The path of a lock's issuer file (whether or not it exists). */
export function issuerFilePath(dir: string, lockId: string): string {
  return fileOf(dir, lockId);
}

/**
 * Load the issuer file of `lockId`, or the only one there is when `lockId` is not given.
 * @throws LatchkeyError `LK_NOT_FOUND` (no file: run `latchkey code enrol`), `LK_INVALID_INPUT` (several
 *   files and no lock named), `LK_DATA_DIR_INVALID` (unreadable or malformed file)
 */
export function loadIssuer(dir: string, lockId?: string): IssuerFile {
  let id = lockId;
  if (id === undefined) {
    const d = issuersDir(dir);
    const files = existsSync(d) ? readdirSync(d).filter((n) => n.endsWith(".json")) : [];
    if (files.length === 0) {
      throw new LatchkeyError(
        "LK_NOT_FOUND",
        "no guest-code issuer on this machine: run `latchkey code enrol`",
      );
    }
    if (files.length > 1) {
      throw new LatchkeyError(
        "LK_INVALID_INPUT",
        "several locks have issuer files here: name one with --lock",
      );
    }
    id = files[0]!.slice(0, -".json".length);
  }
  const path = fileOf(dir, id);
  if (!existsSync(path)) {
    throw new LatchkeyError(
      "LK_NOT_FOUND",
      `no issuer file for lock ${id}: run \`latchkey code enrol --lock ${id}\``,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    throw new LatchkeyError("LK_DATA_DIR_INVALID", `issuer file ${path} is not valid JSON`);
  }
  const r = IssuerFile.safeParse(parsed);
  if (!r.success) throw new LatchkeyError("LK_DATA_DIR_INVALID", `issuer file ${path} is malformed`);
  return r.data;
}

/**
 * Run `fn` holding `<issuer file>.lock` (created exclusively), so two `latchkey code` runs at once cannot
 * lose each other's ledger entries. Waits up to 5 s; a lock older than 30 s is taken over (a crashed run).
 */
export function withWalletLock<T>(dir: string, lockId: string, fn: () => T): T {
  const lockFile = `${fileOf(dir, lockId)}.lock`;
  mkdirSync(issuersDir(dir), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      closeSync(openSync(lockFile, "wx", 0o600));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      try {
        if (Date.now() - statSync(lockFile).mtimeMs > 30_000) rmSync(lockFile, { force: true });
      } catch {
        // gone meanwhile
      }
      if (Date.now() > deadline) {
        throw new LatchkeyError(
          "LK_CONFLICT",
          `the issuer file is in use by another latchkey run (${lockFile})`,
        );
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lockFile, { force: true });
  }
}

/** The lock's local minute now, by this machine's clock. */
function localNow(f: IssuerFile, now: EpochMs): number {
  return localTimeIn(f.timeZone, now).localEpochMinutes;
}

/** The result of issuing from the wallet. */
export interface WalletIssue {
  readonly code: string;
  readonly entry: LedgerEntry;
  readonly description: string;
  readonly shareText: string;
}

/**
 * Issue a code with the issuer file alone (no hub), record it in the ledger and return the digits (shown
 * once) and a message to send the guest.
 * @throws LatchkeyError `LK_GUESTCODE_INVALID` (bad request, or a window that is already over),
 *   `LK_CONFLICT` (an identical code was already issued)
 */
export function issueFromWallet(
  dir: string,
  f: IssuerFile,
  req: GuestCodeRequest,
  name: string,
  now: EpochMs,
): WalletIssue {
  return withWalletLock(dir, f.lockId, () => issueLocked(dir, loadIssuer(dir, f.lockId), req, name, now));
}

function issueLocked(
  dir: string,
  f: IssuerFile,
  req: GuestCodeRequest,
  name: string,
  now: EpochMs,
): WalletIssue {
  const avoid = new Set(f.ledger.filter((e) => e.epoch === f.epoch).map((e) => e.codeId));
  const issued = issueGuestCode(nodeCrypto, fromHex(f.keyHex), req, { digits: f.digits, avoid });
  const p = issued.plan.params;
  const dropAfter = dropAfterOf(p, f.driftMinutes);
  if (p.kind !== "firstUse" && dropAfter <= localNow(f, now)) {
    throw new LatchkeyError("LK_GUESTCODE_INVALID", "this window is already over on the lock's clock");
  }
  const entry: LedgerEntry = {
    codeId: issued.codeId,
    issuerId: f.issuerId,
    name,
    kind: p.kind,
    epoch: f.epoch,
    validFrom: formatLocalMinutes(p.from),
    validTo: formatLocalMinutes(p.to),
    exact: issued.plan.exact,
    // A first-use code may run D minutes past its activation window: keep its revocation that long.
    dropAfter: p.kind === "firstUse" ? dropAfterOf(p, f.driftMinutes, p.to) : dropAfter,
    issuedAt: new Date(now).toISOString(),
  };
  saveIssuer(dir, { ...f, ledger: [...f.ledger, entry] });
  return {
    code: issued.code,
    entry,
    description: describeIssued(issued),
    shareText: shareText(issued, name, f.lockName, f.timeZone),
  };
}

/** Find a ledger entry by code id (or a unique prefix of at least 4 hex digits) or by its exact name. */
export function findEntry(f: IssuerFile, ref: string): LedgerEntry {
  const byId = ref.length >= 4 ? f.ledger.filter((e) => e.codeId.startsWith(ref.toLowerCase())) : [];
  const hits = byId.length > 0 ? byId : f.ledger.filter((e) => e.name === ref);
  if (hits.length === 0)
    throw new LatchkeyError(
      "LK_NOT_FOUND",
      "no issued code with that id (or an id prefix of at least 4 hex digits) or name in the ledger",
    );
  if (hits.length > 1)
    throw new LatchkeyError("LK_CONFLICT", "several issued codes match: give more of the code id");
  return hits[0]!;
}

/** The issuer-authenticated revocation of a ledger entry (docs/protocol/guest-codes.md § 5). */
export function revocationFor(f: IssuerFile, e: LedgerEntry): GuestCodeRevocation & { mac: string } {
  if (e.issuerId !== undefined && e.issuerId !== f.issuerId) {
    throw new LatchkeyError(
      "LK_CONFLICT",
      `this code was issued by an earlier issuer (${e.issuerId}) of this machine: an owner or admin can revoke it through the hub`,
    );
  }
  const r = { issuerId: f.issuerId, epoch: e.epoch, codeId: e.codeId, dropAfter: e.dropAfter };
  // An entry of an older epoch was revoked with its epoch already; the key of that epoch is gone.
  if (e.epoch !== f.epoch)
    throw new LatchkeyError("LK_CONFLICT", "this code's epoch was already revoked as a whole");
  return { ...r, mac: revocationMac(nodeCrypto, fromHex(f.keyHex), r) };
}

/** Mark a ledger entry's revocation state and save. */
export function markRevocation(
  dir: string,
  f: IssuerFile,
  codeId: string,
  state: "pending" | "sent",
): IssuerFile {
  return withWalletLock(dir, f.lockId, () => {
    const cur = loadIssuer(dir, f.lockId);
    const next = {
      ...cur,
      ledger: cur.ledger.map((e) => (e.codeId === codeId ? { ...e, revocation: state } : e)),
    };
    saveIssuer(dir, next);
    return next;
  });
}

/** Day-set names accepted by `--days`, mapped to the LK-GC1 presets. */
export const DAY_SET_NAMES: Readonly<Record<string, number>> = {
  daily: 0x7f,
  "mon-fri": 0x3e,
  weekdays: 0x3e,
  weekends: 0x41,
  "sat-sun": 0x41,
  sun: 0x01,
  mon: 0x02,
  tue: 0x04,
  wed: 0x08,
  thu: 0x10,
  fri: 0x20,
  sat: 0x40,
  "mon,wed,fri": 0x2a,
  "tue,thu": 0x14,
  "mon-sat": 0x7e,
  "mon,thu": 0x12,
  "tue,fri": 0x24,
  "sun-thu": 0x1f,
};

/** `--days` text → DaysMaskMap of a preset. @throws LatchkeyError `LK_GUESTCODE_INVALID` */
export function parseDaySet(text: string): number {
  const mask = DAY_SET_NAMES[text.trim().toLowerCase().replace(/\s+/g, "")];
  if (mask === undefined || !(GUEST_CODE_DAY_MASKS as readonly number[]).includes(mask)) {
    throw new LatchkeyError(
      "LK_GUESTCODE_INVALID",
      `--days must be one of: ${Object.keys(DAY_SET_NAMES).join(", ")}`,
    );
  }
  return mask;
}

/** `--duration` text (`1h`, `4h`, `24h`, `1d`, `7d`) → minutes. @throws LatchkeyError `LK_GUESTCODE_INVALID` */
export function parseDuration(text: string): number {
  const m = /^(\d{1,3})([hd])$/.exec(text.trim());
  const minutes = m ? Number(m[1]) * (m[2] === "h" ? 60 : 1440) : Number.NaN;
  if (![60, 240, 1440, 10_080].includes(minutes)) {
    throw new LatchkeyError("LK_INVALID_INPUT", "--duration must be 1h, 4h, 24h (1d) or 7d");
  }
  return minutes;
}
