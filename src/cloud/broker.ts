/**
 * The embedded MQTT broker: Aedes over TCP, the zero-setup default of `latchkey cloud` (MQTT 3.1.1 and 5,
 * in-memory persistence). It has no shared subscriptions, so one worker serves it; deployments with
 * several workers use Mosquitto or EMQX (docs/cloud.md).
 */
import { createServer, type Server } from "node:net";
import { Aedes } from "aedes";
import { LatchkeyError } from "../core/errors.ts";

/** A running embedded broker. */
export interface EmbeddedBroker {
  /** `mqtt://host:port` to connect to. */
  readonly url: string;
  /** The port bound (useful with `port: 0`). */
  readonly port: number;
  /** Disconnect every client and stop listening. Idempotent. */
  close(): Promise<void>;
}

/**
 * Start Aedes on `host:port` (host default 127.0.0.1: only this machine; port 0 picks a free one).
 *
 * @throws LatchkeyError `LK_CLOUD_UNAVAILABLE` when the port cannot be bound (in use, no permission).
 */
export async function startEmbeddedBroker(opts: { host?: string; port: number }): Promise<EmbeddedBroker> {
  const host = opts.host ?? "127.0.0.1";
  const aedes = await Aedes.createBroker();
  const server: Server = createServer(aedes.handle);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (e) {
    await new Promise<void>((r) => aedes.close(() => r()));
    throw new LatchkeyError(
      "LK_CLOUD_UNAVAILABLE",
      `cannot start the MQTT broker on ${host}:${opts.port}: ${(e as Error).message}`,
    );
  }
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : opts.port;
  let closed: Promise<void> | null = null;
  return {
    url: `mqtt://${host}:${port}`,
    port,
    close(): Promise<void> {
      closed ??= (async () => {
        await new Promise<void>((r) => aedes.close(() => r()));
        await new Promise<void>((r) => server.close(() => r()));
      })();
      return closed;
    },
  };
}
