/**
 * Operations the owner signs with the root key on their own machine (docs/protocol/operations.md,
 * docs/protocol/sync.md § "Linking a hub to a cloud"):
 *
 * - `role.set` admin for the **hub's key**, so the hub may sign its local changes as operations (done
 *   at `latchkey claim` and `latchkey key setup`, and by `latchkey cloud link` for a hub set up earlier);
 * - `role.set` admin for the **cloud's key**, so changes made in the cloud are accepted by the hub
 *   (`latchkey cloud link`). The owner revokes either at any time with `role.set` null; the cloud is a
 *   delegate, never the authority.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { toHex } from "../core/crypto.ts";
import { type CoseAlg, signSign1External } from "../core/envelope/cose-sign1.ts";
import { LatchkeyError } from "../core/errors.ts";
import { keyId, type PublicKey } from "../core/keys/digital-key.ts";
import { hlc } from "../core/ops/hlc.ts";
import { encodeOperation, type OperationBody } from "../core/ops/operation.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";
import { FileKeyStore } from "../wallet/file-key-store.ts";
import { call } from "./client.ts";
import { safe } from "./format.ts";
import { configDir } from "./issuer-wallet.ts";
import type { PhoneCommandContext } from "./phone-commands.ts";
import { readHidden } from "./prompt.ts";

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64url");
const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, "base64url"));

/** The hub's identity as GET /api/v1/sync/identity gives it. */
export interface HubIdentity {
  siteId: string;
  devicePublicKey: string;
  sealPublicKey: string;
  genesis: { alg: number; publicKey: string }[];
  hubKey: { alg: number; key: string; keyId: string };
}

/** The root key file `latchkey claim` / `key setup` created for this site. */
export function rootKeyFile(dir: string, siteId: string): string {
  return join(dir, `owner-root-${siteId}.key`);
}

/**
 * Sign `role.set` admin grants for `keys` with the owner's root key (in `file`, opened with `pass`).
 * Returns the operations, base64url, for POST /api/v1/ops. Throws LK_KEYS_NOT_SET_UP when the file is
 * missing, LK_WALLET_* when the passphrase is wrong.
 */
export async function signAdminGrants(
  file: string,
  pass: string,
  siteId: string,
  keys: readonly PublicKey[],
): Promise<string[]> {
  if (!existsSync(file)) {
    throw new LatchkeyError(
      "LK_KEYS_NOT_SET_UP",
      `no owner root key at ${file}: run \`latchkey key setup\` (as the owner, on this machine) first`,
    );
  }
  const store = FileKeyStore.open(file, pass);
  const root = await store.publicKey("root");
  if (!root) throw new LatchkeyError("LK_KEYS_NOT_SET_UP", `${file} holds no root key`);
  const rootKid = keyId(nodeCrypto, root);
  const node = toHex(rootKid).slice(0, 16);
  const now = Date.now();
  const out: string[] = [];
  let i = 0;
  for (const k of keys) {
    const body = {
      hlc: hlc(now, i++, node),
      actor: toHex(rootKid),
      scope: { kind: "site", id: siteId },
      kind: "role.set",
      target: toHex(keyId(nodeCrypto, k)),
      payload: { role: "admin", key: k },
    } as OperationBody;
    const bytes = await signSign1External(
      { alg: root.alg as CoseAlg, kid: rootKid, sign: (d) => store.sign("root", d) },
      encodeOperation(nodeCrypto, body),
    );
    out.push(b64(bytes));
  }
  return out;
}

/** The hub's signing key as a PublicKey. */
export function hubKeyOf(id: HubIdentity): PublicKey {
  return { alg: id.hubKey.alg as CoseAlg, key: fromB64(id.hubKey.key) };
}

async function passphrase(): Promise<string> {
  const env = process.env.LATCHKEY_KEY_PASSPHRASE;
  if (env) return env;
  if (!process.stdin.isTTY) {
    throw new LatchkeyError("LK_INVALID_INPUT", "set LATCHKEY_KEY_PASSPHRASE (no terminal to ask on)");
  }
  return readHidden("owner root key passphrase: ");
}

/** `latchkey cloud link`: register this hub at a cloud tenant and delegate the cloud (owner only). */
export function registerCloudLink(cloud: Command, ctx: PhoneCommandContext): void {
  cloud
    .command("link")
    .description(
      "connect this hub to a Latchkey cloud: register the site there and grant the cloud's key the admin role (owner, with the root key)",
    )
    .requiredOption("--cloud-api <url>", "the cloud's REST API, e.g. http://127.0.0.1:8788")
    .option(
      "--cloud-token <token>",
      "a cloud API token of your tenant (admin or owner; env LATCHKEY_CLOUD_TOKEN)",
    )
    .option("--name <name>", "the site's name in the cloud", "Home")
    .action(async (o: { cloudApi: string; cloudToken?: string; name: string }) => {
      const token = o.cloudToken ?? process.env.LATCHKEY_CLOUD_TOKEN;
      if (!token)
        throw new LatchkeyError("LK_UNAUTHENTICATED", "give --cloud-token or set LATCHKEY_CLOUD_TOKEN");
      let base: URL;
      try {
        base = new URL(o.cloudApi);
      } catch {
        throw new LatchkeyError(
          "LK_INVALID_INPUT",
          "--cloud-api must be a URL such as http://127.0.0.1:8788",
        );
      }
      if (base.protocol !== "http:" && base.protocol !== "https:") {
        throw new LatchkeyError(
          "LK_INVALID_INPUT",
          "--cloud-api is the cloud's REST API, an http:// or https:// URL (the mqtt:// URL goes to `latchkey start --cloud`)",
        );
      }
      const cloudCall = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
        let res: Response;
        try {
          res = await fetch(new URL(path, base), {
            method,
            headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
            ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
            signal: AbortSignal.timeout(10_000),
          });
        } catch {
          throw new LatchkeyError("LK_CLOUD_UNAVAILABLE", `the cloud at ${base.origin} is unreachable`);
        }
        const j = (await res.json().catch(() => ({}))) as {
          error?: { code?: string; message?: string };
          data: T;
        };
        if (!res.ok) {
          const code = j.error?.code;
          throw new LatchkeyError(
            code && /^LK_[A-Z_]+$/.test(code) ? (code as "LK_INVALID_INPUT") : "LK_INVALID_INPUT",
            `cloud: ${(j.error?.message ?? `HTTP ${res.status}`).replace(/^LK_[A-Z_]+: /, "")}`,
          );
        }
        return j.data;
      };
      const id = await call<HubIdentity>(ctx.options(), "GET", "/api/v1/sync/identity");
      if (id.genesis.length === 0) {
        throw new LatchkeyError(
          "LK_KEYS_NOT_SET_UP",
          "this hub has no owner root key: run `latchkey key setup` (as the owner) first",
        );
      }
      const cloudId = await cloudCall<{ alg: string; algId: number; publicKey: string; keyId: string }>(
        "GET",
        "/api/v1/cloud/identity",
      );
      const cloudKey: PublicKey = {
        alg: (cloudId.algId ?? -8) as CoseAlg,
        key: new Uint8Array(Buffer.from(cloudId.publicKey, "hex")),
      };
      const pass = await passphrase();
      const ops = await signAdminGrants(
        rootKeyFile(configDir(ctx.options().configDir), id.siteId),
        pass,
        id.siteId,
        [hubKeyOf(id), cloudKey],
      );
      const applied = await call<{ refused: { index: number; code: string }[] }>(
        ctx.options(),
        "POST",
        "/api/v1/ops",
        { ops },
      );
      if (applied.refused.length > 0) {
        throw new LatchkeyError(
          "LK_INVALID_INPUT",
          `the hub refused the grants: ${applied.refused.map((r) => r.code).join(", ")}`,
        );
      }
      let registered = true;
      try {
        await cloudCall("POST", "/api/v1/sites", {
          siteId: id.siteId,
          name: o.name,
          devicePublicKey: id.devicePublicKey,
          sealPublicKey: id.sealPublicKey,
          genesis: id.genesis,
        });
      } catch (e) {
        if (!(e instanceof LatchkeyError && e.code === "LK_CONFLICT")) throw e;
        registered = false;
      }
      ctx.out(
        `${registered ? "Registered" : "Already registered:"} site ${safe(id.siteId)} at ${safe(base.origin)}; the cloud's key ${safe(cloudId.keyId)} may now make changes (revoke with a role.set null). Start the hub with --cloud <the cloud's MQTT URL> to sync.`,
        { siteId: id.siteId, cloudKeyId: cloudId.keyId, hubKeyId: id.hubKey.keyId, registered },
      );
    });
}
