/**
 * Kill the hub with SIGKILL at random points during a stream of attempts, restart it, and check that
 * the chain verifies and that every attempt the hub acknowledged is in the log. Repeated over several
 * rounds on one data directory.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyDataDir } from "../../src/cli/verify-offline.ts";
import { startHubProcess, waitExit } from "../support/processes.ts";

const ROUNDS = 8;
let dir: string;
let token: string;

async function post(url: string, path: string, body?: unknown, signal?: AbortSignal) {
  const res = await fetch(url + path, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    ...(signal ? { signal } : {}),
  });
  // biome-ignore lint/suspicious/noExplicitAny: response bodies of many shapes; the assertions check them
  return (await res.json()) as { ok: boolean; data: Record<string, any> };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "latchkey-crash-"));
  const h = await startHubProcess(dir, ["--no-supervise"]);
  const code = readFileSync(join(dir, "setup-code"), "utf8").trim();
  const claim = await fetch(`${h.url}/api/v1/claim`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ setupCode: code, ownerName: "Olivia" }),
  });
  token = ((await claim.json()) as { data: { token: string } }).data.token;
  h.child.kill("SIGKILL");
  await waitExit(h.child);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("crash safety (SIGKILL at random points)", () => {
  it(`loses no acknowledged grant or denial over ${ROUNDS} kills`, async () => {
    const acknowledged = new Map<number, string>();
    let totalAcked = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const h = await startHubProcess(dir, ["--no-supervise"]);
      const stop = new AbortController();
      const loops = [0, 1, 2].map(async (n) => {
        for (let i = 0; !stop.signal.aborted; i++) {
          try {
            const r =
              n === 0
                ? await post(h.url, "/api/v1/locks/front-door/unlock", undefined, stop.signal)
                : await post(
                    h.url,
                    "/api/v1/locks/front-door/simulator/keypad",
                    { digits: `${n}${i}0${round}7`.padEnd(6, "3") },
                    stop.signal,
                  );
            if (r.ok && typeof r.data.seq === "number") {
              acknowledged.set(
                r.data.seq,
                n === 0
                  ? "access.granted"
                  : r.data.feedback === "locked_out" || r.data.feedback === "denied"
                    ? "access.denied"
                    : "access.granted",
              );
            }
          } catch {
            return;
          }
        }
      });
      // Let it run a random while, then pull the plug.
      await new Promise((r) => setTimeout(r, 150 + Math.floor(Math.random() * 600)));
      h.child.kill("SIGKILL");
      stop.abort();
      await Promise.all(loops);
      await waitExit(h.child);
      totalAcked = acknowledged.size;
    }
    expect(totalAcked).toBeGreaterThan(ROUNDS);

    const v = verifyDataDir(dir);
    expect(v.problem).toBeNull();
    expect(v.ok).toBe(true);
    // Every acknowledged attempt (grant or denial) is in the log with the same seq and kind.
    const { SqliteEdgeStore } = await import("../../src/store/sqlite/edge-store.ts");
    const { nodeCrypto } = await import("../../src/platform/node-crypto.ts");
    const store = new SqliteEdgeStore({ path: join(dir, "latchkey.db"), crypto: nodeCrypto });
    try {
      const bySeq = new Map([...store.iterate()].map((e) => [e.seq, e.kind]));
      for (const [seq, kind] of acknowledged) expect(bySeq.get(seq), `seq ${seq}`).toBe(kind);
      const denials = [...acknowledged.values()].filter((k) => k === "access.denied").length;
      const lockouts = [...bySeq.values()].filter((k) => k === "alarm.lockout").length;
      expect(denials).toBeGreaterThan(0);
      console.log(
        `crash test: ${ROUNDS} SIGKILLs; ${acknowledged.size} acknowledged attempts (${denials} denials) all present; ${lockouts} lockout alarms; ${bySeq.size} events verified`,
      );
    } finally {
      store.close();
    }
  });
});
