/**
 * The console's only way to the network: requests to the hub that served the page (same origin), with the
 * API token as a bearer header. Every failure becomes an {@link ApiError} carrying the hub's error code
 * (`LK_...`) and message, which the pages show as they are.
 */
import type { AuditEvent } from "./types.ts";

const TOKEN_KEY = "latchkey.console.token";
/** The id of the token above, when the console knows it (it made it: claim, recover). */
const TOKEN_ID_KEY = "latchkey.console.tokenId";

/** An API error: the hub's `{ code, message }`, or a console-side code when the hub gave no answer. */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(code: string, message: string, status: number) {
    super(message);
    this.code = code;
    this.status = status;
  }
  /** The message without a leading repeat of the code (the hub often writes `LK_X: ...`). */
  get detail(): string {
    const prefix = `${this.code}: `;
    return this.message.startsWith(prefix) ? this.message.slice(prefix.length) : this.message;
  }
}

/** Console-side codes (never sent by the hub). */
export const CONSOLE_CODES = {
  /** The hub did not answer at all (stopped, restarting, or the network between is down). */
  unreachable: "CONSOLE_HUB_UNREACHABLE",
  /** The hub answered with something that is not the API's JSON envelope. */
  badResponse: "CONSOLE_BAD_RESPONSE",
} as const;

export function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof Error) return new ApiError(CONSOLE_CODES.badResponse, e.message, 0);
  return new ApiError(CONSOLE_CODES.badResponse, String(e), 0);
}

type Envelope<T> = { ok: true; data: T } | { ok: false; error: { code: string; message: string } };

export interface RequestOptions {
  readonly body?: unknown;
  readonly signal?: AbortSignal;
  /** Send the request without the token even when signed in (claim, recover). */
  readonly anonymous?: boolean;
  /** A refused token does not sign the console out through `onUnauthenticated` (sign-out itself). */
  readonly quiet?: boolean;
}

export class Api {
  #token: string | null;
  #tokenId: string | null;
  /** Called when the hub refuses the token (revoked, or a different hub): the app signs out. */
  onUnauthenticated: (() => void) | null = null;

  constructor() {
    this.#token = readStored(TOKEN_KEY);
    this.#tokenId = this.#token ? readStored(TOKEN_ID_KEY) : null;
  }

  get token(): string | null {
    return this.#token;
  }

  /** The id of the token in use, when known (a token pasted at sign-in does not say its id). */
  get tokenId(): string | null {
    return this.#tokenId;
  }

  setToken(token: string | null, tokenId: string | null = null): void {
    this.#token = token;
    this.#tokenId = token ? tokenId : null;
    try {
      if (token) localStorage.setItem(TOKEN_KEY, token);
      else localStorage.removeItem(TOKEN_KEY);
      if (token && tokenId) localStorage.setItem(TOKEN_ID_KEY, tokenId);
      else localStorage.removeItem(TOKEN_ID_KEY);
    } catch {
      // Storage disabled (private mode): the token lives until the page closes.
    }
  }

  /** Remember which token is in use (found after the console was given it). */
  setTokenId(tokenId: string | null): void {
    if (this.#token) this.setToken(this.#token, tokenId);
  }

  /**
   * Sign out: the hub revokes the token (`POST /api/v1/signout`), then the console forgets it — even when
   * the hub refused or did not answer (then the token may still work: the error says why). A token the
   * hub no longer knows is signed out already, not an error.
   */
  async signOut(): Promise<ApiError | null> {
    if (!this.#token) return null;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 5000);
    try {
      await this.request("POST", "/api/v1/signout", { signal: ac.signal, quiet: true });
      return null;
    } catch (e) {
      const err = ac.signal.aborted
        ? new ApiError(CONSOLE_CODES.unreachable, "the hub did not answer the sign-out in 5 s", 0)
        : asApiError(e);
      return err.code === "LK_UNAUTHENTICATED" ? null : err;
    } finally {
      clearTimeout(timer);
      this.setToken(null);
    }
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>("GET", path, signal ? { signal } : {});
  }
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("POST", path, body === undefined ? {} : { body });
  }
  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PUT", path, { body });
  }
  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PATCH", path, { body });
  }
  del<T>(path: string): Promise<T> {
    return this.request<T>("DELETE", path, {});
  }

  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const res = await this.#fetch(method, path, o);
    let env: Envelope<T>;
    try {
      env = (await res.json()) as Envelope<T>;
    } catch {
      throw new ApiError(
        CONSOLE_CODES.badResponse,
        `the hub answered ${res.status} to ${method} ${path} without the API's JSON`,
        res.status,
      );
    }
    if (env.ok) return env.data;
    const err = new ApiError(env.error.code, env.error.message, res.status);
    if (err.code === "LK_UNAUTHENTICATED" && !o.anonymous && !o.quiet && this.#token)
      this.onUnauthenticated?.();
    throw err;
  }

  /**
   * POST that returns a document to save (the encrypted audit export): the envelope's data when the hub
   * wraps it, the JSON itself when it does not.
   */
  async postDocument(path: string, body: unknown): Promise<unknown> {
    const res = await this.#fetch("POST", path, { body });
    let json: unknown;
    try {
      json = await res.json();
    } catch {
      throw new ApiError(
        CONSOLE_CODES.badResponse,
        `the hub answered ${res.status} to POST ${path} without JSON`,
        res.status,
      );
    }
    if (typeof json === "object" && json !== null && "ok" in json) {
      const env = json as Envelope<unknown>;
      if (env.ok) return env.data;
      throw new ApiError(env.error.code, env.error.message, res.status);
    }
    if (!res.ok)
      throw new ApiError(CONSOLE_CODES.badResponse, `POST ${path} answered ${res.status}`, res.status);
    return json;
  }

  /** A non-JSON resource (the printable readiness report): its text, or the hub's error. */
  async text(path: string): Promise<string> {
    const res = await this.#fetch("GET", path, {});
    const type = res.headers.get("content-type") ?? "";
    if (!res.ok && type.includes("application/json")) {
      const env = (await res.json()) as Envelope<never>;
      if (!env.ok) throw new ApiError(env.error.code, env.error.message, res.status);
    }
    if (!res.ok)
      throw new ApiError(CONSOLE_CODES.badResponse, `GET ${path} answered ${res.status}`, res.status);
    return res.text();
  }

  async #fetch(method: string, path: string, o: RequestOptions): Promise<Response> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.#token && !o.anonymous) headers.authorization = `Bearer ${this.#token}`;
    if (o.body !== undefined) headers["content-type"] = "application/json";
    try {
      return await fetch(path, {
        method,
        headers,
        cache: "no-store",
        credentials: "omit",
        ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      });
    } catch (e) {
      if (o.signal?.aborted) throw e;
      throw new ApiError(
        CONSOLE_CODES.unreachable,
        `the hub did not answer ${method} ${path} (${(e as Error).message}); is it running?`,
        0,
      );
    }
  }

  /**
   * Follow the live audit stream (`GET /api/v1/audit/stream`, server-sent events). EventSource cannot
   * send a bearer header, so this reads the stream with fetch. `onOpen` runs once the hub has subscribed
   * the stream (before any event is read: fetch what happened before it then). Resolves when the stream
   * ends or `signal` aborts; throws an ApiError when the hub refuses it.
   */
  async followAudit(
    onEvent: (e: AuditEvent) => void,
    signal: AbortSignal,
    onOpen?: () => Promise<void>,
  ): Promise<void> {
    const res = await this.#fetch("GET", "/api/v1/audit/stream", { signal });
    if (!res.ok || !res.body) {
      let err = new ApiError(
        CONSOLE_CODES.badResponse,
        `the audit stream answered ${res.status}`,
        res.status,
      );
      try {
        const env = (await res.json()) as Envelope<never>;
        if (!env.ok) err = new ApiError(env.error.code, env.error.message, res.status);
      } catch {
        // keep the generic error
      }
      throw err;
    }
    await onOpen?.();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SseParser((event, data) => {
      if (event !== "audit") return;
      try {
        onEvent(JSON.parse(data) as AuditEvent);
      } catch {
        // a malformed event is skipped; the next page load shows the log as stored
      }
    });
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        parser.push(value);
      }
    } catch (e) {
      if (signal.aborted) return;
      throw e;
    } finally {
      reader.releaseLock();
    }
  }
}

/** A minimal server-sent-events parser (WHATWG HTML § 9.2.6): `event:` and `data:` fields. */
export class SseParser {
  #buffer = "";
  #event = "";
  #data: string[] = [];
  readonly #emit: (event: string, data: string) => void;

  constructor(emit: (event: string, data: string) => void) {
    this.#emit = emit;
  }

  push(chunk: string): void {
    this.#buffer += chunk;
    for (;;) {
      const nl = this.#buffer.search(/\r\n|\r|\n/);
      if (nl < 0) return;
      const line = this.#buffer.slice(0, nl);
      const skip = this.#buffer.startsWith("\r\n", nl) ? 2 : 1;
      this.#buffer = this.#buffer.slice(nl + skip);
      this.#line(line);
    }
  }

  #line(line: string): void {
    if (line === "") {
      if (this.#data.length > 0) this.#emit(this.#event || "message", this.#data.join("\n"));
      this.#event = "";
      this.#data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.#event = value;
    else if (field === "data") this.#data.push(value);
  }
}

function readStored(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

/** Percent-encode one path segment. */
export const seg = (s: string): string => encodeURIComponent(s);
