/**
 * The scale bench (bench/cloud-scale.ts, `cloud.scale_drain`) in small: 100 sites × 200 events, each
 * returning from an outage with its backlog, in 2 child processes with the hub's sender logic (hello, batches
 * after the last acknowledgement, at most 4 out, resume from each ack, resend on stall), every site on its own
 * MQTT connection, through Mosquitto and 2 sync worker processes on one shared subscription into PostgreSQL
 * (a fresh schema, dropped afterwards). Nothing may be lost or stored twice, and every chain must verify.
 *
 * Needs the machine's Mosquitto and PostgreSQL: skipped without them outside CI, a failure in CI.
 */
import { describe, expect, it } from "vitest";
import { runCloudScale } from "../../bench/cloud-scale.ts";
import { MOSQUITTO_URL, PG_URL, serviceAvailable } from "./cloud-fixtures.ts";

const pgUp = await serviceAvailable("PostgreSQL", PG_URL);
const mosquittoUp = await serviceAvailable("Mosquitto", MOSQUITTO_URL);

describe.skipIf(!pgUp || !mosquittoUp)("cloud scale (small): a fleet drains its backlog", () => {
  it("100 sites × 200 events: 0 lost, 0 duplicated, every chain verifies", async () => {
    const r = await runCloudScale({
      sites: 100,
      perSite: 200,
      processes: 2,
      workers: 2,
      pgUrl: PG_URL,
      mqttUrl: MOSQUITTO_URL,
      verifySites: 100,
      drainTimeoutMs: 60_000,
    });
    console.log(
      `cloud scale (small): ${r.sites} sites × ${r.perSite} = ${r.events} events drained in ${r.drainSeconds} s ` +
        `(${r.eventsPerSecond} events/s); stored ${r.stored}, lost ${r.lost}, duplicated ${r.duplicated}; ` +
        `sent ${r.sent} (stall rewinds ${r.stallRewinds}), delivered to ingest ${r.delivered}, ` +
        `skipped by ingest as already held ${r.redundant}; chain problems ${r.chainProblems}; ` +
        `chains verified ${r.verifiedSites}`,
    );
    expect(r.stored).toBe(20_000);
    expect(r.lost).toBe(0);
    expect(r.duplicated).toBe(0);
    expect(r.badSites).toBe(0);
    expect(r.chainProblems).toBe(0);
    expect(r.verifiedSites).toBe(100);
    expect(r.workerStats.failed).toBe(0);
    expect(r.workerStats.malformed).toBe(0);
  }, 90_000);
});
