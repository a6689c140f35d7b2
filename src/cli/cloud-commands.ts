/**
 * `latchkey cloud ...`: the optional cloud service (src/cloud/service.ts).
 *
 * - `cloud start`: database (PostgreSQL at `--database-url`/`DATABASE_URL`, else the embedded PGlite in
 *   the data directory), MQTT broker (an external one at `--mqtt`/`MQTT_URL`, else the embedded one on
 *   `--mqtt-port`), sync workers and the REST API (`--port`, default 8788). Prints the two URLs.
 * - `cloud tenant create NAME`: creates a tenant and prints its first owner token, once. It is the only
 *   way to get a tenant's first token: the cloud has no default password.
 *
 * The data directory is the global `--data-dir` when given (or `LATCHKEY_DATA_DIR`), else
 * `./latchkey-cloud` (not the hub's `./latchkey-data`). Errors reach main.ts's handler: one line
 * `error LK_CODE: message` on standard error, exit 2 for the caller's fault and 1 otherwise.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Command, Option } from "commander";
import { LatchkeyError } from "../core/errors.ts";
import { intArg } from "./args.ts";
import { safe, safeJson } from "./format.ts";

/** The cloud's data directory when `--data-dir` is not given. */
export const DEFAULT_CLOUD_DATA_DIR = "./latchkey-cloud";
/** Default port of the cloud's REST API. */
export const DEFAULT_CLOUD_API_PORT = 8788;

interface GlobalOptions {
  readonly dataDir?: string;
  readonly json?: boolean;
}

/** The cloud's data directory: `--data-dir` / `LATCHKEY_DATA_DIR` when set, else {@link DEFAULT_CLOUD_DATA_DIR}. */
function cloudDataDir(cmd: Command): string {
  let root: Command = cmd;
  while (root.parent) root = root.parent;
  const source = root.getOptionValueSource("dataDir");
  const given = (cmd.optsWithGlobals() as GlobalOptions).dataDir;
  return resolve(
    given !== undefined && source !== undefined && source !== "default" ? given : DEFAULT_CLOUD_DATA_DIR,
  );
}

function json(cmd: Command): boolean {
  return Boolean((cmd.optsWithGlobals() as GlobalOptions).json) || process.argv.slice(2).includes("--json");
}

function port(v: string | number, flag: string, min = 0): number {
  if (typeof v === "number") return v;
  try {
    return intArg(min, 65535)(v);
  } catch {
    throw new LatchkeyError("LK_INVALID_INPUT", `${flag} must be a port number from ${min} to 65535`);
  }
}

/** Is the process named in `<dataDir>/cloud.json` still running? (The embedded database is then in use.) */
function runningCloudPid(dataDir: string): number | null {
  const path = join(dataDir, "cloud.json");
  if (!existsSync(path)) return null;
  try {
    const { pid } = JSON.parse(readFileSync(path, "utf8")) as { pid?: unknown };
    if (typeof pid !== "number" || !Number.isInteger(pid) || pid <= 0 || pid === process.pid) return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

/**
 * Register `latchkey cloud start` and `latchkey cloud tenant create` on `program` (main.ts's root
 * command; its global `--data-dir` and `--json` apply). Throws nothing itself; the actions throw
 * LatchkeyErrors for main.ts to report.
 */
export function registerCloudCommands(program: Command): Command {
  const cloud = program
    .command("cloud")
    .description("the optional cloud service: fleet view, remote management, webhooks (never the authority)");

  cloud
    .command("start")
    .description(
      `run the cloud: database, MQTT broker, sync workers and the REST API (data in --data-dir, default ${DEFAULT_CLOUD_DATA_DIR})`,
    )
    .addOption(
      new Option(
        "--database-url <url>",
        "PostgreSQL URL (default: the embedded database in the data directory)",
      ).env("DATABASE_URL"),
    )
    .addOption(
      new Option("--mqtt <url>", "an external MQTT 5 broker (default: the embedded one)").env("MQTT_URL"),
    )
    .option("--mqtt-port <n>", "port of the embedded MQTT broker", "1883")
    .option("--port <n>", "port of the REST API", String(DEFAULT_CLOUD_API_PORT))
    .option("--host <addr>", "address to bind the API and the embedded broker", "127.0.0.1")
    .option("--workers <n>", "sync workers (several need an external broker with shared subscriptions)", "1")
    .action(
      async (
        o: {
          databaseUrl?: string;
          mqtt?: string;
          mqttPort: string;
          port: string;
          host: string;
          workers: string;
        },
        cmd: Command,
      ) => {
        const apiPort = port(o.port, "--port");
        const mqttPort = port(o.mqttPort, "--mqtt-port");
        let workers: number;
        try {
          workers = intArg(1, 64)(o.workers);
        } catch {
          throw new LatchkeyError("LK_INVALID_INPUT", "--workers must be a whole number from 1 to 64");
        }
        if (!["127.0.0.1", "::1", "localhost"].includes(o.host)) {
          process.stderr.write(
            `warning: binding to ${safe(o.host)}: the API is plain HTTP, so API tokens cross the network unencrypted. Put a TLS proxy in front of it.\n`,
          );
        }
        const { startCloud } = await import("../cloud/service.ts");
        const running = await startCloud({
          dataDir: cloudDataDir(cmd),
          apiPort,
          mqttPort,
          host: o.host,
          workers,
          ...(o.databaseUrl ? { databaseUrl: o.databaseUrl } : {}),
          ...(o.mqtt ? { mqttUrl: o.mqtt } : {}),
        });
        if (json(cmd)) {
          console.log(safeJson({ apiUrl: running.apiUrl, mqttUrl: running.mqttUrl }));
        } else {
          console.log(`Cloud API:   ${safe(running.apiUrl)}/api/v1 (OpenAPI: /api/v1/openapi.json)`);
          console.log(`MQTT broker: ${safe(redactUrl(running.mqttUrl))}`);
        }
        let stopping: Promise<void> | null = null;
        const stop = () => {
          stopping ??= running.close().then(() => process.exit(0));
          return stopping;
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      },
    );

  const tenant = cloud.command("tenant").description("cloud tenants (customer accounts)");
  tenant
    .command("create")
    .description("create a tenant and print its first owner token (shown once)")
    .argument("<name>", "the tenant's display name")
    .addOption(
      new Option(
        "--database-url <url>",
        "PostgreSQL URL (default: the embedded database in the data directory)",
      ).env("DATABASE_URL"),
    )
    .action(async (name: string, o: { databaseUrl?: string }, cmd: Command) => {
      const dataDir = cloudDataDir(cmd);
      const { migrateCloud } = await import("../cloud/db/migrate.ts");
      const { createTenant } = await import("../cloud/tenants.ts");
      const { nodeCrypto } = await import("../platform/node-crypto.ts");
      let db: import("../cloud/db/sql.ts").SqlClient;
      if (o.databaseUrl) {
        const { openPg } = await import("../cloud/db/pg.ts");
        db = await openPg(o.databaseUrl, { max: 1 });
      } else {
        const pid = runningCloudPid(dataDir);
        if (pid !== null) {
          throw new LatchkeyError(
            "LK_DATA_DIR_LOCKED",
            `the cloud (pid ${pid}) is running on ${safe(dataDir)} with the embedded database: stop it first, or use PostgreSQL (--database-url)`,
          );
        }
        const { openPglite } = await import("../cloud/db/pglite.ts");
        db = await openPglite(join(dataDir, "pgdata"));
      }
      try {
        await migrateCloud(db, Date.now());
        const { tenant: t, ownerToken } = await createTenant(db, nodeCrypto, name);
        if (json(cmd)) {
          console.log(safeJson({ tenant: t, ownerToken }, 2));
        } else {
          console.log(`Tenant ${safe(t.name)} (${t.id}) created.`);
          console.log("Owner token (shown this once; store it in a password manager):");
          console.log(ownerToken);
        }
      } finally {
        await db.close();
      }
    });
  return cloud;
}

/** A URL without its password (for printing). */
function redactUrl(u: string): string {
  try {
    const url = new URL(u);
    if (url.password) url.password = "***";
    return url.toString().replace(/\/$/, "");
  } catch {
    return u;
  }
}
