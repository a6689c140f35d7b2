/** A small client for the hub API, used by the CLI. Finds the hub URL and token the way the README says. */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type ErrorCode, ErrorCodes, LatchkeyError } from "../core/errors.ts";

export interface ClientOptions {
  readonly dataDir: string;
  readonly url?: string;
  readonly token?: string;
}

function readTrim(file: string): string | null {
  return existsSync(file) ? readFileSync(file, "utf8").trim() || null : null;
}

/** The hub URL: --url, LATCHKEY_URL, the running hub's `<data-dir>/hub.url`, else http://127.0.0.1:8080. */
export function resolveUrl(o: ClientOptions): string {
  return (
    o.url ??
    process.env.LATCHKEY_URL ??
    readTrim(join(resolve(o.dataDir), "hub.url")) ??
    "http://127.0.0.1:8080"
  );
}

/** The API token: --token, LATCHKEY_TOKEN, or `<data-dir>/cli-token` saved by `latchkey claim`. */
export function resolveToken(o: ClientOptions): string | null {
  return o.token ?? process.env.LATCHKEY_TOKEN ?? readTrim(join(resolve(o.dataDir), "cli-token"));
}

/**
 * API field names and the CLI flags that set them, so a hub message such as "give exactly one of uid
 * or cardId" reads "give exactly one of --uid or --card-id" at the command line.
 */
const FLAG_OF_FIELD: Readonly<Record<string, string>> = {
  uid: "--uid",
  cardId: "--card-id",
  autoRelockTime: "--auto-relock",
  wrongCodeEntryLimit: "--wrong-code-limit",
  userCodeTemporaryDisableTime: "--disable-time",
  pinMinLength: "--pin-min-length",
  timeZone: "--tz",
  userType: "--type",
  ownerName: "--name",
  setupCode: "--code",
  daysMask: "--days",
  startHour: "--from",
  startMinute: "--from",
  endHour: "--to",
  endMinute: "--to",
  force: "--force",
};
/** Plain words translated only where they name a field in a validation issue (`body: slot: ...`). */
const FLAG_OF_ISSUE_FIELD: Readonly<Record<string, string>> = {
  name: "--name",
  role: "--role",
  label: "--label",
  slot: "--slot",
  locks: "--locks",
  time: "ISO_TIME",
  lines: "-n",
  limit: "-n",
};

/** `detail` from the hub with API field names replaced by the CLI's flag names where that is unambiguous. */
export function toCliWording(detail: string): string {
  return detail
    .replace(/(^|: |; )(?:\w+\.)*(\w+)(?=: )/g, (all, pre: string, field: string) => {
      const flag = FLAG_OF_ISSUE_FIELD[field] ?? FLAG_OF_FIELD[field];
      return flag ? `${pre}${flag}` : all;
    })
    .replace(/(?<![\w-])[A-Za-z]+\b/g, (w) => FLAG_OF_FIELD[w] ?? w);
}

/** Call the API. Returns `data`; throws the hub's LatchkeyError (same code) on `{ ok: false }`. */
export async function call<T = unknown>(
  o: ClientOptions,
  method: string,
  path: string,
  body?: unknown,
  auth = true,
): Promise<T> {
  const url = resolveUrl(o) + path;
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (auth) {
    const token = resolveToken(o);
    if (!token) {
      throw new LatchkeyError(
        "LK_UNAUTHENTICATED",
        "no API token: run `latchkey claim` on a new hub; if you claimed in the console, create a token there (People → you → API tokens) and save it to <data-dir>/cli-token, or pass --token / LATCHKEY_TOKEN",
      );
    }
    headers.authorization = `Bearer ${token}`;
  }
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch {
    throw new LatchkeyError(
      "LK_HUB_UNREACHABLE",
      `cannot reach the hub at ${resolveUrl(o)}: is it running (npm start)? Use --url to point elsewhere`,
    );
  }
  const json = (await res.json().catch(() => null)) as {
    ok: boolean;
    data?: T;
    error?: { code: string; message: string };
  } | null;
  if (!json) throw new LatchkeyError("LK_INTERNAL", `the hub answered ${res.status} with no JSON`);
  if (!json.ok) {
    const code = (json.error?.code ?? "LK_INTERNAL") as ErrorCode;
    const known = code in ErrorCodes ? code : "LK_INTERNAL";
    const detail = toCliWording((json.error?.message ?? "").replace(/^LK_[A-Z_]+: /, ""));
    throw new LatchkeyError(known, detail || `the hub answered ${res.status}`);
  }
  return json.data as T;
}
