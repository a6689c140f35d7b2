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
        "no API token: run `latchkey claim` first, or pass --token / LATCHKEY_TOKEN",
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
    const detail = (json.error?.message ?? "").replace(/^LK_[A-Z_]+: /, "");
    throw new LatchkeyError(known, detail);
  }
  return json.data as T;
}
