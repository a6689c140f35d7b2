/**
 * Export format version 2 (docs/formats/export.md § "Version 2: with secrets"): the version-1 document
 * plus a `secrets` member, a passphrase box (src/hub/passphrase-box.ts) of kind
 * `latchkey-export-secrets` holding what a hub needs to restore credentials without re-enrolment:
 *
 * - the PIN key (`secrets/pin-secret`) and every PIN credential's digest HMAC-SHA-256(pinKey, PIN): PINs
 *   themselves are never stored anywhere, so digests and their key are all a hub can carry over;
 * - authenticator (RFC 6238 TOTP) secrets, opened from their seal under `secrets/totp-seal-key` and
 *   sealed again by the importing hub under its own, with the last accepted time step (no replay);
 * - the guest-code secret (`secrets/guest-code-secret`, the IKM every issuer key derives from,
 *   docs/protocol/guest-codes.md § 1) and the per-code rows (used, revoked) of issuers' current epochs;
 * - `documentSha256`, the digest of the rest of the document, so that with the passphrase any change to
 *   the plain part is detected (LK_EXPORT_MODIFIED).
 *
 * Never the device key, the hub's signing or seal keys, API tokens, or a PIN in clear.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { canonicalJson, type JsonValue } from "../core/audit/canonical.ts";
import type { GuestCodeUsage } from "../core/credentials/guest-code.ts";
import { toHex, utf8 } from "../core/crypto.ts";
import { LatchkeyError } from "../core/errors.ts";
import { type PinCredential, Role, type TotpCredential } from "../core/model.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";
import type { GuestCodeIssuerRecord, GuestCodeLedgerRecord } from "../store/sqlite/edge-store.ts";
import type { DataDir } from "./data-dir.ts";
import type { Actor, Hub } from "./hub.ts";
import { type BoxOptions, openWithPassphrase, sealWithPassphrase } from "./passphrase-box.ts";

/** The `kind` of the box in a version-2 export's `secrets` (bound into the box's AAD). */
export const EXPORT_SECRETS_KIND = "latchkey-export-secrets";

/** Domain of {@link exportDigest}. */
const DIGEST_DOMAIN = "LK-EXPORT-v2\n";

/** What {@link Hub.exportSecretMaterial} hands to the exporter. Bytes; never logged. */
export interface ExportSecretMaterial {
  /** `secrets/pin-secret`: the HMAC-SHA-256 key of PIN digests (32 bytes). */
  readonly pinKey: Uint8Array;
  /** `secrets/guest-code-secret`: the IKM of every guest-code issuer key (32 bytes). */
  readonly guestCodeKey: Uint8Array;
  readonly pins: readonly { readonly credentialId: string; readonly digest: string }[];
  readonly totp: readonly {
    readonly credentialId: string;
    readonly secret: Uint8Array;
    readonly lastStep: number | null;
  }[];
  /** Guest-code rows (uses, revoked) of each issuer's current epoch. */
  readonly guestCodeState: readonly (GuestCodeUsage & { readonly lockId: string })[];
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64url");
const B64 = (min: number, max: number) =>
  z
    .string()
    .regex(/^[A-Za-z0-9_-]*$/)
    .refine((s) => {
      const b = Buffer.from(s, "base64url");
      return b.toString("base64url") === s && b.length >= min && b.length <= max;
    }, `base64url of ${min}–${max} bytes`);

/** The plaintext of the `secrets` box (UTF-8 JSON), version 1. */
export const ExportSecretsPayloadSchema = z.strictObject({
  format: z.literal(EXPORT_SECRETS_KIND),
  version: z.literal(1),
  documentSha256: z.string().regex(/^[0-9a-f]{64}$/),
  pinKey: B64(32, 32),
  pins: z
    .array(
      z.strictObject({ credentialId: z.string().min(1).max(64), digest: z.string().regex(/^[0-9a-f]{64}$/) }),
    )
    .max(50_000),
  totp: z
    .array(
      z.strictObject({
        credentialId: z.string().min(1).max(64),
        secret: B64(16, 64),
        lastStep: z.number().int().min(0).nullable(),
      }),
    )
    .max(50_000),
  guestCodeKey: B64(32, 32),
  guestCodeState: z
    .array(
      z.strictObject({
        lockId: z.string().min(1).max(40),
        issuerId: z.string().min(1).max(64),
        epoch: z.number().int().min(0).max(0xffff),
        codeId: z.string().min(1).max(64),
        revoked: z.boolean(),
        uses: z.number().int().min(0),
        firstUsedAt: z.number().int().min(0).nullable(),
        dropAfter: z.number().int(),
      }),
    )
    .max(100_000),
});

/** The opened `secrets` of a version-2 export, as the importer uses them. */
export interface ExportSecrets {
  readonly documentSha256: string;
  readonly pinKey: Uint8Array;
  /** Document credential id → PIN digest (hex). */
  readonly pins: ReadonlyMap<string, string>;
  /** Document credential id → authenticator secret and last accepted step. */
  readonly totp: ReadonlyMap<string, { readonly secret: Uint8Array; readonly lastStep: number | null }>;
  readonly guestCodeKey: Uint8Array;
  readonly guestCodeState: readonly (GuestCodeUsage & { readonly lockId: string })[];
}

/**
 * The digest that binds a version-2 document to its secrets: lowercase hex of
 * SHA-256("LK-EXPORT-v2\n" || canonicalJson(document without `secrets`)). Throws LK_INVALID_INPUT for a
 * value that is not JSON.
 */
export function exportDigest(doc: Readonly<Record<string, unknown>>): string {
  const { secrets: _s, ...rest } = doc;
  return toHex(nodeCrypto.sha256(utf8(`${DIGEST_DOMAIN}${canonicalJson(rest)}`)));
}

const NOTE_V2 =
  "Version 2: `secrets` is a passphrase box (scrypt + AES-256-GCM) holding the PIN key and PIN digests, " +
  "authenticator (TOTP) secrets and the guest-code secret, so an import with the passphrase restores them " +
  "without re-enrolment. Without the passphrase this imports like version 1. PINs are never stored in " +
  "clear anywhere. Phone keys are listed without their signed chains; the hub's device, signing and seal " +
  "keys are not exported.";

/**
 * Export version 2 (docs/formats/export.md § "Version 2"): `exportData` with `version: 2`,
 * `secretsIncluded: true` and `secrets`, a box of {@link EXPORT_SECRETS_KIND} sealed to `passphrase`.
 * Owner only (the secrets open every PIN-protected door). `opts` is for tests (a low scrypt cost).
 * Throws LK_FORBIDDEN, LK_PASSPHRASE_WEAK (checked before anything is read).
 */
export async function exportWithSecrets(
  hub: Hub,
  actor: Actor,
  passphrase: string,
  opts: BoxOptions = {},
): Promise<Record<string, JsonValue>> {
  hub.requireRole(actor, Role.Owner);
  // Both read synchronously, so they describe the same moment.
  const v1 = hub.exportData(actor);
  const m = hub.exportSecretMaterial(actor);
  const doc: Record<string, JsonValue> = { ...v1, version: 2, secretsIncluded: true, note: NOTE_V2 };
  const payload: z.infer<typeof ExportSecretsPayloadSchema> = {
    format: EXPORT_SECRETS_KIND,
    version: 1,
    documentSha256: exportDigest(doc),
    pinKey: b64(m.pinKey),
    pins: m.pins.map((p) => ({ credentialId: p.credentialId, digest: p.digest })),
    totp: m.totp.map((t) => ({ credentialId: t.credentialId, secret: b64(t.secret), lastStep: t.lastStep })),
    guestCodeKey: b64(m.guestCodeKey),
    guestCodeState: m.guestCodeState.map((u) => ({ ...u })),
  };
  const plain = Buffer.from(JSON.stringify(payload), "utf8");
  try {
    const box = await sealWithPassphrase(EXPORT_SECRETS_KIND, plain, passphrase, opts);
    return { ...doc, secrets: box as unknown as JsonValue };
  } finally {
    plain.fill(0);
  }
}

/**
 * Open the `secrets` of a version-2 document (a parsed value or its JSON text) with `passphrase`, check
 * the payload and that the document is the one it was sealed with. Changes nothing.
 * Throws LK_INVALID_INPUT (not JSON, not a version-2 export), LK_PASSPHRASE_BOX_MALFORMED,
 * LK_PASSPHRASE_WRONG (wrong passphrase or a modified box), LK_EXPORT_MODIFIED (the plain part changed).
 */
export async function openExportSecrets(
  doc: unknown,
  passphrase: string,
  opts: BoxOptions = {},
): Promise<ExportSecrets> {
  let value = doc;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      throw new LatchkeyError("LK_INVALID_INPUT", "$: not JSON (truncated or damaged file?)", { path: "$" });
    }
  }
  const d = value as Record<string, unknown> | null;
  if (typeof d !== "object" || d === null || Array.isArray(d) || d.format !== "latchkey-export") {
    throw new LatchkeyError("LK_INVALID_INPUT", "$: not a latchkey-export document", { path: "$" });
  }
  if (d.version !== 2 || d.secrets === undefined) {
    throw new LatchkeyError(
      "LK_INVALID_INPUT",
      "$.secrets: this export carries no secrets (version 1): import it without a passphrase",
      { path: "$.secrets" },
    );
  }
  const plain = await openWithPassphrase(EXPORT_SECRETS_KIND, d.secrets, passphrase, opts);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(plain).toString("utf8"));
  } catch {
    parsed = undefined;
  } finally {
    plain.fill(0);
  }
  const r = ExportSecretsPayloadSchema.safeParse(parsed);
  if (!r.success) {
    throw new LatchkeyError(
      "LK_PASSPHRASE_BOX_MALFORMED",
      "the secrets box opened but does not hold latchkey-export-secrets version 1",
    );
  }
  const p = r.data;
  let digest: string;
  try {
    digest = exportDigest(d);
  } catch {
    digest = "";
  }
  if (digest !== p.documentSha256) {
    throw new LatchkeyError(
      "LK_EXPORT_MODIFIED",
      "the export was modified after it was exported (its content does not match the digest sealed in secrets); nothing was changed",
    );
  }
  const bytes = (s: string) => new Uint8Array(Buffer.from(s, "base64url"));
  return {
    documentSha256: p.documentSha256,
    pinKey: bytes(p.pinKey),
    pins: new Map(p.pins.map((x) => [x.credentialId, x.digest])),
    totp: new Map(p.totp.map((x) => [x.credentialId, { secret: bytes(x.secret), lastStep: x.lastStep }])),
    guestCodeKey: bytes(p.guestCodeKey),
    guestCodeState: p.guestCodeState.map((u) => ({
      ...u,
      firstUsedAt: u.firstUsedAt as GuestCodeUsage["firstUsedAt"],
    })),
  };
}

/** The data-directory files a restore may replace. */
export type RestorableKey = "pin" | "guestCode";

const KEY_FILES: Readonly<Record<RestorableKey, { file: string; field: "pinSecret" | "guestCodeSecret" }>> = {
  pin: { file: "pin-secret", field: "pinSecret" },
  guestCode: { file: "guest-code-secret", field: "guestCodeSecret" },
};

/**
 * Replace one of the data directory's 32-byte secrets (`secrets/pin-secret` or
 * `secrets/guest-code-secret`) with `next`: written to a new file (mode 0600) and renamed over the old
 * one, then copied **in place** into the `DataDir`'s array, which the hub and its lock runtimes hold, so
 * they use the new key at once. Returns a function that puts the old key back the same way. Only for
 * a restore while nothing depends on the current key (the hub checks). Throws LK_DATA_DIR_INVALID.
 */
export function replaceDataDirSecret(dataDir: DataDir, which: RestorableKey, next: Uint8Array): () => void {
  const { file, field } = KEY_FILES[which];
  const target = dataDir[field];
  if (next.length !== 32 || target.length !== 32)
    throw new LatchkeyError("LK_INTERNAL", "a data-directory secret is 32 bytes");
  const path = join(dataDir.path, "secrets", file);
  const write = (bytes: Uint8Array) => {
    const tmp = `${path}.new`;
    try {
      rmSync(tmp, { force: true }); // a leftover could carry another mode
      writeFileSync(tmp, bytes, { mode: 0o600, flush: true });
      renameSync(tmp, path);
      // The rename itself made durable (POSIX: fsync the directory).
      const dir = openSync(join(dataDir.path, "secrets"), "r");
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
    } catch (e) {
      throw new LatchkeyError("LK_DATA_DIR_INVALID", `cannot write ${path}: ${(e as Error).message}`);
    }
    target.set(bytes);
  };
  const old = new Uint8Array(target);
  write(next);
  return () => write(old);
}

/** A PIN or authenticator credential to restore: the credential's fields without id and creation time. */
export type RestoredCredential = (
  | Omit<PinCredential, "id" | "createdAt">
  | Omit<TotpCredential, "id" | "createdAt">
) & {
  /** Its id in the document (recorded as `restoredFrom`, so a later removal here also kills that id). */
  readonly from: string;
};

/** A guest-code issuer to restore, with its ledger and the codes used or revoked at the exporting hub. */
export interface RestoredIssuer {
  readonly record: GuestCodeIssuerRecord;
  readonly ledger: readonly GuestCodeLedgerRecord[];
  /** Codes of the issuer's current epoch used or revoked at the exporting hub: revoked here. */
  readonly spent: readonly { readonly codeId: string; readonly dropAfter: number }[];
}

/** What {@link Hub.restoreSecrets} restores (built by src/hub/import.ts from a plan). */
export interface SecretRestore {
  /** Adopt this PIN key (null: keep this hub's, which must then be the document's). */
  readonly pinKey: Uint8Array | null;
  /** Adopt this guest-code secret (null: keep this hub's). */
  readonly guestCodeKey: Uint8Array | null;
  readonly credentials: readonly RestoredCredential[];
  readonly issuers: readonly RestoredIssuer[];
}
