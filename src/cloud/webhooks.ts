/**
 * Webhook delivery: notifications (alarms, hubs going offline; written by ingest) are POSTed as JSON to
 * the tenant's webhooks whose `kinds` match (or `["*"]`).
 *
 * Each tick of the dispatcher:
 * 1. **Fan out** (one SQL statement): every notification of the last {@link FANOUT_LOOKBACK_MS}, made
 *    after the webhook was added, gets one `webhook_deliveries` row per matching enabled webhook
 *    (`ON CONFLICT DO NOTHING`, so any number of dispatchers may run it).
 * 2. **Claim** due deliveries with one `UPDATE … RETURNING` over `FOR UPDATE SKIP LOCKED` rows: the claim
 *    counts the attempt and moves `next_at` a lease ahead ({@link LEASE_MS}), so another dispatcher (or
 *    this one after a restart) takes the delivery again only if this attempt never finished.
 * 3. **Send**: `POST url` with the JSON body, `Content-Type: application/json`,
 *    `Latchkey-Delivery: <id>` (the same on every retry of one delivery: receivers deduplicate on it) and
 *    `Latchkey-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256(secret, "<t>.<body>")>` (the secret is the
 *    UTF-8 of the string shown when the webhook was added). Timeout 5 s.
 * 4. **Record**: a 2xx marks it `delivered`; anything else retries with exponential backoff (1 s, 2 s,
 *    4 s … capped at 5 min) and after {@link MAX_ATTEMPTS} attempts marks it `failed`.
 *
 * Delivery is at least once: a dispatcher that dies between sending and recording sends again after the
 * lease. The secret, the URL's query and the response body are never logged.
 */
import { createHmac } from "node:crypto";
import type { SqlClient } from "./db/sql.ts";

/** Most attempts of one delivery before it is marked `failed`. */
export const MAX_ATTEMPTS = 8;
/** Timeout of one POST, ms. */
export const DELIVERY_TIMEOUT_MS = 5_000;
/** How long a claimed delivery is held before another dispatcher may take it again, ms (> the timeout). */
export const LEASE_MS = 60_000;
/** How far back a new notification is looked for when fanning out, ms (24 h). */
export const FANOUT_LOOKBACK_MS = 24 * 60 * 60 * 1000;
/** Backoff before retry n (n = 1, 2, …): base · 2^(n−1), at most the cap; ms. */
export const DEFAULT_BACKOFF = { baseMs: 1_000, capMs: 5 * 60_000 } as const;

/** Options of {@link startWebhookDispatcher}. */
export interface WebhookDispatcherOptions {
  readonly db: SqlClient;
  /** Wall clock, ms since the Unix epoch (stamps, backoff, the signature's `t`). */
  readonly clock: () => number;
  /** HTTP client; default the global `fetch`. */
  readonly fetch?: typeof globalThis.fetch;
  /** Pause between ticks, ms. 0: no timer (call {@link WebhookDispatcher.runOnce} yourself). */
  readonly intervalMs: number;
  /** Where delivery failures are reported (webhook id and status only). */
  readonly log: (message: string) => void;
  /** Deliveries claimed per tick; default 50. */
  readonly batch?: number;
  /** Retry backoff, ms; default {@link DEFAULT_BACKOFF}. */
  readonly backoff?: { readonly baseMs: number; readonly capMs: number };
  /** Per-POST timeout, ms; default {@link DELIVERY_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
}

/** A running dispatcher. */
export interface WebhookDispatcher {
  /** One tick now (fan out, claim, send, record); resolves with how many deliveries it attempted. */
  runOnce(): Promise<number>;
  /** Stop the timer and wait for the tick in progress. Idempotent. */
  close(): Promise<void>;
}

/** The body a webhook receives. Times in ms since the epoch. */
export interface WebhookPayload {
  readonly deliveryId: string;
  readonly notificationId: number;
  readonly kind: string;
  readonly siteId: string;
  readonly lockId: string | null;
  readonly seq: number | null;
  readonly data: unknown;
  readonly createdAt: number;
}

/**
 * The `Latchkey-Signature` header value for `body` sent at `unixSeconds` with `secret`:
 * `t=<unixSeconds>,v1=<hex HMAC-SHA-256(utf8(secret), "<t>.<body>")>`. Receivers recompute it and
 * compare in constant time, and refuse a `t` too far from their clock (replay).
 */
export function webhookSignature(secret: string, unixSeconds: number, body: string): string {
  const mac = createHmac("sha256", Buffer.from(secret, "utf8"))
    .update(`${unixSeconds}.${body}`)
    .digest("hex");
  return `t=${unixSeconds},v1=${mac}`;
}

/** The id of the delivery of notification `notificationId` to webhook `webhookId` (stable across retries). */
export function deliveryId(webhookId: string, notificationId: number): string {
  return `${webhookId}.${notificationId}`;
}

interface Claimed {
  webhook_id: string;
  notification_id: number;
  attempts: number;
}

interface Job extends Claimed {
  url: string;
  secret: string;
  kind: string;
  site_id: string;
  lock_id: string | null;
  seq: number | null;
  data: unknown;
  created_at: number;
}

/**
 * Start delivering notifications to webhooks (see the module doc). Ticks every `intervalMs` (after the
 * previous tick finished); a failing tick is logged and the next one runs. Safe to run in several
 * processes on one database.
 *
 * @returns the dispatcher; `close()` it on shutdown.
 */
export function startWebhookDispatcher(opts: WebhookDispatcherOptions): WebhookDispatcher {
  const { db, clock, log } = opts;
  const doFetch = opts.fetch ?? globalThis.fetch;
  const batch = opts.batch ?? 50;
  const backoff = opts.backoff ?? DEFAULT_BACKOFF;
  const timeoutMs = opts.timeoutMs ?? DELIVERY_TIMEOUT_MS;
  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<number> | null = null;

  async function fanOut(now: number): Promise<void> {
    await db.query(
      `INSERT INTO webhook_deliveries (webhook_id, notification_id, status, attempts, next_at, updated_at)
       SELECT w.id, n.id, 'pending', 0, $1, $1
         FROM webhooks w
         JOIN notifications n ON n.tenant_id = w.tenant_id
        WHERE w.disabled_at IS NULL
          AND n.created_at >= w.created_at
          AND n.created_at >= $2
          AND (w.kinds ? '*' OR w.kinds ? n.kind)
          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.notification_id = n.id)
       ON CONFLICT DO NOTHING`,
      [now, now - FANOUT_LOOKBACK_MS],
    );
  }

  async function claim(now: number): Promise<Job[]> {
    const claimed = await db.query<Claimed>(
      `UPDATE webhook_deliveries d
          SET attempts = d.attempts + 1, next_at = $2, updated_at = $1
        WHERE (d.webhook_id, d.notification_id) IN (
              SELECT webhook_id, notification_id FROM webhook_deliveries
               WHERE status = 'pending' AND next_at <= $1
               ORDER BY next_at, notification_id
               LIMIT $3
               FOR UPDATE SKIP LOCKED)
        RETURNING d.webhook_id, d.notification_id, d.attempts`,
      [now, now + LEASE_MS, batch],
    );
    if (claimed.rows.length === 0) return [];
    const jobs: Job[] = [];
    for (const cl of claimed.rows) {
      const r = await db.query<Omit<Job, keyof Claimed>>(
        `SELECT w.url, w.secret, n.kind, n.site_id, n.lock_id, n.seq, n.data, n.created_at
           FROM webhooks w JOIN notifications n ON n.id = $2 AND n.tenant_id = w.tenant_id
          WHERE w.id = $1`,
        [cl.webhook_id, cl.notification_id],
      );
      const row = r.rows[0];
      if (row) jobs.push({ ...cl, ...row });
    }
    return jobs;
  }

  async function send(job: Job): Promise<{ ok: boolean; status: number | null; error: string | null }> {
    const id = deliveryId(job.webhook_id, Number(job.notification_id));
    const payload: WebhookPayload = {
      deliveryId: id,
      notificationId: Number(job.notification_id),
      kind: job.kind,
      siteId: job.site_id,
      lockId: job.lock_id,
      seq: job.seq === null ? null : Number(job.seq),
      data: job.data,
      createdAt: Number(job.created_at),
    };
    const body = JSON.stringify(payload);
    const t = Math.floor(clock() / 1000);
    const ctl = new AbortController();
    const timeout = setTimeout(() => ctl.abort(), timeoutMs);
    try {
      const res = await doFetch(job.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": "latchkey-cloud-webhooks/1",
          "latchkey-delivery": id,
          "latchkey-signature": webhookSignature(job.secret, t, body),
        },
        body,
        signal: ctl.signal,
        redirect: "manual",
      });
      // The body is not read beyond discarding it: it is the receiver's, and never logged.
      await res.body?.cancel().catch(() => undefined);
      const ok = res.status >= 200 && res.status < 300;
      return { ok, status: res.status, error: ok ? null : `HTTP ${res.status}` };
    } catch (e) {
      const aborted = ctl.signal.aborted;
      return {
        ok: false,
        status: null,
        error: aborted
          ? `timeout after ${timeoutMs} ms`
          : `network error (${e instanceof Error ? e.name : "unknown"})`,
      };
    } finally {
      clearTimeout(timeout);
    }
  }

  async function record(
    job: Job,
    r: { ok: boolean; status: number | null; error: string | null },
  ): Promise<void> {
    const now = clock();
    const attempts = Number(job.attempts);
    if (r.ok) {
      await db.query(
        `UPDATE webhook_deliveries SET status = 'delivered', response_status = $3, last_error = NULL, updated_at = $4
          WHERE webhook_id = $1 AND notification_id = $2`,
        [job.webhook_id, job.notification_id, r.status, now],
      );
      return;
    }
    const failed = attempts >= MAX_ATTEMPTS;
    const delay = Math.min(backoff.baseMs * 2 ** Math.max(0, attempts - 1), backoff.capMs);
    await db.query(
      `UPDATE webhook_deliveries
          SET status = $3, next_at = $4, response_status = $5, last_error = $6, updated_at = $7
        WHERE webhook_id = $1 AND notification_id = $2 AND status = 'pending'`,
      [
        job.webhook_id,
        job.notification_id,
        failed ? "failed" : "pending",
        now + delay,
        r.status,
        r.error,
        now,
      ],
    );
    log(
      `latchkey cloud: webhook ${job.webhook_id} delivery ${deliveryId(job.webhook_id, Number(job.notification_id))} attempt ${attempts} failed (${r.error})${failed ? "; giving up" : ""}`,
    );
  }

  async function tick(): Promise<number> {
    const now = clock();
    await fanOut(now);
    const jobs = await claim(now);
    await Promise.all(jobs.map(async (j) => record(j, await send(j))));
    return jobs.length;
  }

  function runOnce(): Promise<number> {
    const p = (running ?? Promise.resolve(0)).then(
      () => tick(),
      () => tick(),
    );
    running = p;
    return p;
  }

  function schedule(): void {
    if (closed || opts.intervalMs <= 0) return;
    timer = setTimeout(() => {
      timer = null;
      runOnce()
        .catch((e: unknown) =>
          log(
            `latchkey cloud: webhook dispatcher tick failed: ${e instanceof Error ? e.message : String(e)}`,
          ),
        )
        .finally(schedule);
    }, opts.intervalMs);
    timer.unref?.();
  }
  schedule();

  return {
    runOnce,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running?.catch(() => undefined);
    },
  };
}
